"""The position-wise feed-forward network of a Transformer block: GPT's (GELU) and LLaMA's (SwiGLU)."""
from __future__ import annotations

from .activations import SiLU, make_activation
from .dropout import Dropout
from .linear import Linear
from ..module import Module


class FeedForward(Module):
    """y = act(x W₁ + b₁) W₂ + b₂ (then dropout), applied to every position on its own.

    Hidden size 4·d_model by default, as in the 2017 paper and GPT. ``activation`` is "relu" or "gelu".
    Backward is the three pieces reversed: dropout, W₂, the activation, W₁.
    """

    def __init__(self, d_model: int, d_hidden: int | None = None, activation: str = "gelu",
                 dropout: float = 0.0, bias: bool = True, seed=None, rng=None):
        self.d_model = d_model
        self.d_hidden = d_hidden if d_hidden is not None else 4 * d_model
        self.fc1 = Linear(d_model, self.d_hidden, bias=bias, rng=rng)
        self.act = make_activation(activation)
        self.fc2 = Linear(self.d_hidden, d_model, bias=bias, rng=rng)
        self.dropout = Dropout(dropout, seed=seed) if dropout > 0 else None

    def forward(self, x):
        h = self.act(self.fc1(x))                       # [..., d_model] -> [..., d_hidden]
        y = self.fc2(h)                                 # [..., d_hidden] -> [..., d_model]
        return self.dropout(y) if self.dropout is not None else y

    def backward(self, dy):
        if self.dropout is not None:
            dy = self.dropout.backward(dy)
        dh = self.fc2.backward(dy)                      # [..., d_hidden]
        dh = self.act.backward(dh)                      # (fc2's dx is let go before fc1's backward)
        return self.fc1.backward(dh)                    # [..., d_model]


def swiglu_hidden(d_model: int, multiple_of: int = 256) -> int:
    """LLaMA's hidden width: 2/3 of 4·d_model (three matrices instead of two, the same parameters),
    rounded up to a multiple of ``multiple_of``. E.g. d_model 4096 -> 11008 (LLaMA-7B)."""
    hidden = int(2 * 4 * d_model / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class SwiGLUFeedForward(Module):
    """y = (SiLU(x W_gate) ⊙ (x W_up)) W_down, applied to every position on its own (LLaMA, Mistral).

    A gated MLP: x W_up is the value, SiLU(x W_gate) a learned gate in (−0.28, ∞) multiplying it feature
    by feature; SiLU(a) = a·σ(a). Three matrices and no biases, as LLaMA has them; the hidden width is
    ``swiglu_hidden(d_model)`` unless given.

    Backward, with a = x W_gate, b = x W_up, s = SiLU(a), dh = dy W_downᵀ:
        db = dh ⊙ s        da = (dh ⊙ b) ⊙ SiLU'(a)
        dx = da W_gateᵀ + db W_upᵀ     (x fed two products, so its gradient is the sum)
    """

    def __init__(self, d_model: int, d_hidden: int | None = None, bias: bool = False, rng=None):
        self.d_model = d_model
        self.d_hidden = d_hidden if d_hidden is not None else swiglu_hidden(d_model)
        self.gate_proj = Linear(d_model, self.d_hidden, bias=bias, rng=rng)
        self.up_proj = Linear(d_model, self.d_hidden, bias=bias, rng=rng)
        self.act = SiLU()
        self.down_proj = Linear(self.d_hidden, d_model, bias=bias, rng=rng)
        self.s = self.b = None

    def forward(self, x):
        self.s = self.act(self.gate_proj(x))            # [..., d_hidden]: the gate
        self.b = self.up_proj(x)                        # [..., d_hidden]: the value
        return self.down_proj(self.s * self.b)          # [..., d_model]

    def backward(self, dy):
        dh = self.down_proj.backward(dy)                # [..., d_hidden]
        da = self.act.backward(dh * self.b)             # through the gate
        return self.gate_proj.backward(da) + self.up_proj.backward(dh * self.s)
