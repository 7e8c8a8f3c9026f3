"""The position-wise feed-forward network of a Transformer block."""
from __future__ import annotations

from .activations import make_activation
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
        return self.fc1.backward(self.act.backward(dh)) # [..., d_model]
