"""Dropout: randomly zero activations while training, so the network cannot rely on any one of them."""
from __future__ import annotations

from .. import backend
from ..module import Module


class Dropout(Module):
    """Inverted dropout with drop probability p.

    Training:  m_i ~ Bernoulli(1 − p),  y = x ⊙ m / (1 − p),  dx = dy ⊙ m / (1 − p)
    Evaluation: y = x, dx = dy.

    Dividing by 1 − p while training ("inverted" dropout) keeps E[y] = x, so nothing needs rescaling at
    evaluation time. The mask comes from a generator of its own, seeded, on the arrays' device.
    """

    def __init__(self, p: float, seed=None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}.")
        self.p = p
        self.rng = backend.DeviceRNG(seed)
        self.mask = None  # m / (1 − p) of the last training forward; None when dropout did nothing

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, x.dtype) >= self.p                    # [...] bool
        self.mask = keep.astype(x.dtype) * (1.0 / (1.0 - self.p))             # [...]
        return x * self.mask

    def backward(self, dy):
        return dy if self.mask is None else dy * self.mask


def dropout_states(model: Module) -> dict:
    """{module name: generator state} of every Dropout in a model: what a checkpoint needs to resume
    training exactly (each Dropout draws its masks from a generator of its own)."""
    return {name: m.rng.get_state() for name, m in model.named_modules() if isinstance(m, Dropout)}


def set_dropout_states(model: Module, states: dict) -> None:
    """Put back the generator states saved by ``dropout_states``."""
    dropouts = {name: m for name, m in model.named_modules() if isinstance(m, Dropout)}
    if sorted(dropouts) != sorted(states):
        raise ValueError(f"The saved dropout states {sorted(states)} are not this model's dropouts "
                         f"{sorted(dropouts)}: the model configs differ.")
    for name, state in states.items():
        dropouts[name].rng.set_state(state)
