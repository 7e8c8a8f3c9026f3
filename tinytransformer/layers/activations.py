"""Element-wise non-linearities: what lets stacked layers compute more than one linear map."""
from __future__ import annotations

import math

from .. import backend
from ..backend import xp
from ..module import Module


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

    Two ways to evaluate the same formulas, chosen by the backend:
    - on a GPU (CuPy, and the stand-in that imitates it), ``gelu_formula`` and ``gelu_backward_formula``
      below, each fused into one kernel by ``backend.fuse``; the backward recomputes tanh(u), which is
      cheaper on a GPU than storing it and reading it back;
    - on NumPy, ``forward`` and ``backward`` evaluate them with in-place operations, which saves about a
      third of the time (fewer temporary arrays), and keep tanh(u) for the backward.
    Both do the same floating-point operations in the same order, so on the CPU they agree bit for bit
    (tests/test_activations.py).
    """

    C = math.sqrt(2.0 / math.pi)
    A = 0.044715
    CA = C * A          # u = x·(C + CA·x²)
    CA3 = 3 * C * A     # du/dx = C + CA3·x²

    def __init__(self):
        self.x = None
        self.t = None  # tanh(u), kept by the NumPy path for its backward

    def forward(self, x):
        self.x = x
        if backend.is_gpu():
            return gelu_formula(x)                  # one fused kernel
        u = x * x                                   # the same math, computed in place to save memory passes:
        u *= self.CA                                #   C·0.044715·x²
        u += self.C                                 #   C·(1 + 0.044715·x²)
        u *= x                                      #   u = C·(x + 0.044715·x³)
        self.t = xp.tanh(u, out=u)                  # t = tanh(u)
        y = self.t + 1.0                            # 1 + t
        y *= x
        y *= 0.5                                    # ½·x·(1 + t)
        return y

    def backward(self, dy):
        if backend.is_gpu():
            return gelu_backward_formula(self.x, dy)  # one fused kernel
        x, t = self.x, self.t
        du_dx = x * x                               # du/dx = C·(1 + 3·0.044715·x²)
        du_dx *= self.CA3
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


@backend.fuse
def gelu_formula(x):
    """GELU (tanh form) as the formula reads: ½ x (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)."""
    t = xp.tanh(x * (GELU.C + x * x * GELU.CA))                         # tanh(u)
    return 0.5 * x * (1.0 + t)


@backend.fuse
def gelu_backward_formula(x, dy):
    """dy ⊙ GELU'(x) as the formula reads: dy·(½(1 + t) + ½·x·(1 − t²)·du/dx)."""
    t = xp.tanh(x * (GELU.C + x * x * GELU.CA))                         # tanh(u)
    du_dx = GELU.C + x * x * GELU.CA3                                   # √(2/π)(1 + 3·0.044715 x²)
    return 0.5 * ((1.0 - t * t) * x * du_dx + t + 1.0) * dy


class SiLU(Module):
    """y = x·σ(x) (also called swish), the gate of LLaMA's SwiGLU feed-forward.

        dy/dx = σ(x) + x·σ(x)(1 − σ(x)) = σ(x)·(1 + x·(1 − σ(x)))
    σ(x) is computed as ½(1 + tanh(x/2)), which never overflows for large |x| (1/(1 + e^−x) would).
    """

    def __init__(self):
        self.x = self.sig = None

    def forward(self, x):
        self.x = x
        self.sig = 0.5 * (1.0 + xp.tanh(0.5 * x))     # σ(x)
        return x * self.sig

    def backward(self, dy):
        x, sig = self.x, self.sig
        return dy * sig * (1.0 + x * (1.0 - sig))


ACTIVATIONS = {"relu": ReLU, "gelu": GELU}   # (SiLU is SwiGLU's gate: layers/feedforward.py)


def make_activation(name: str) -> Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()
