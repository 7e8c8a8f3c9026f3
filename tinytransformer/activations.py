"""Element-wise non-linearities: what lets stacked layers compute more than one linear map."""
from __future__ import annotations

import math

from .backend import xp
from .module import Module


class ReLU(Module):
    """y = max(0, x);  dx = dy where x > 0, else 0."""

    def __init__(self):
        self.positive = None  # where x > 0: the only places the gradient passes

    def forward(self, x):
        self.positive = x > 0
        return xp.where(self.positive, x, 0.0)

    def backward(self, dy):
        return xp.where(self.positive, dy, 0.0)


class GELU(Module):
    """GELU in its tanh form (GPT-2; PyTorch's ``gelu(x, approximate="tanh")``):

        y = ½ x (1 + tanh(u)),   u = √(2/π) (x + 0.044715 x³)
        dy/dx = ½ (1 + tanh(u)) + ½ x (1 − tanh²(u)) √(2/π) (1 + 3·0.044715 x²)

    The tanh form is used because NumPy has no erf (the exact GELU needs it); the two differ by < 1e-3.
    """

    C = math.sqrt(2.0 / math.pi)

    def __init__(self):
        self.x = None
        self.t = None  # tanh(u), shared by forward and backward

    def forward(self, x):
        self.x = x
        self.t = xp.tanh(self.C * (x + 0.044715 * x * x * x))
        return 0.5 * x * (1.0 + self.t)

    def backward(self, dy):
        x, t = self.x, self.t
        du_dx = self.C * (1.0 + 3 * 0.044715 * x * x)
        return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


def make_activation(name: str) -> Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()
