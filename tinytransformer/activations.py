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

    ``forward`` and ``backward`` evaluate these formulas with in-place operations, which saves about a
    third of the time (fewer temporary arrays); ``gelu_plain`` and ``gelu_plain_backward`` below are the
    same formulas written out directly, and tests/test_activations.py holds the two equal.
    """

    C = math.sqrt(2.0 / math.pi)
    A = 0.044715

    def __init__(self):
        self.x = None
        self.t = None  # tanh(u), shared by forward and backward

    def forward(self, x):
        self.x = x
        u = x * x                                   # the same math, computed in place to save memory passes:
        u *= self.A * self.C                        #   C·0.044715·x²
        u += self.C                                 #   C·(1 + 0.044715·x²)
        u *= x                                      #   u = C·(x + 0.044715·x³)
        self.t = xp.tanh(u, out=u)                  # t = tanh(u)
        y = self.t + 1.0                            # 1 + t
        y *= x
        y *= 0.5                                    # ½·x·(1 + t)
        return y

    def backward(self, dy):
        x, t = self.x, self.t
        du_dx = x * x                               # du/dx = C·(1 + 3·0.044715·x²)
        du_dx *= 3 * self.A * self.C
        du_dx += self.C
        sech2 = t * t                               # 1 − tanh²(u)
        xp.subtract(1.0, sech2, out=sech2)
        grad = sech2 * x                            # x·(1 − t²)·du/dx
        grad *= du_dx
        grad += t                                   # + t  (+1 follows): then ½·(...)
        grad += 1.0
        grad *= 0.5                                 # dy/dx = ½(1 + t) + ½·x·(1 − t²)·du/dx
        grad *= dy
        return grad


def gelu_plain(x):
    """GELU (tanh form) as the formula reads: ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return 0.5 * x * (1.0 + xp.tanh(GELU.C * (x + GELU.A * x ** 3)))


def gelu_plain_backward(x, dy):
    """dy ⊙ GELU'(x) as the formula reads."""
    t = xp.tanh(GELU.C * (x + GELU.A * x ** 3))
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU.C * (1.0 + 3 * GELU.A * x * x))


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


def make_activation(name: str) -> Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()
