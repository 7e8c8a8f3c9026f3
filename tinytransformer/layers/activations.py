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
              = ½ (1 + t) (1 + x·du/dx·(1 − t)),   t = tanh(u),  du/dx = √(2/π) (1 + 3·0.044715 x²)

    The tanh form is used because NumPy has no erf (the exact GELU needs it); the two differ by < 1e-3.

    An element-wise function's backward is dy times its local derivative, dx = dy ⊙ y'(x). So the forward
    computes y'(x) while x and tanh(u) are at hand (``derivative``) and keeps only it: the backward is one
    multiplication, and the layer holds one array where it would otherwise hold two (x and tanh(u)): a
    GPT block then saves about a fifth less for its backward. The backward writes dx over y'(x), so one
    forward serves one backward. In evaluation mode (``eval()``) there is no backward to prepare for,
    and the forward skips the derivative.

    Two ways to evaluate the same formulas, chosen by the backend:
    - on a GPU (CuPy, and the stand-in that imitates it), ``gelu_formula`` and ``gelu_derivative_formula``
      below, each fused into one kernel by ``backend.fuse``;
    - on NumPy, ``forward`` and ``derivative`` evaluate them with in-place operations (fewer temporary
      arrays): y and GELU'(x) of a [6, 64, 512] float32 array took 0.65 ms, the two formulas operation by
      operation 2.07 ms (Intel Xeon).
    Both do the same floating-point operations in the same order, so on the CPU they agree bit for bit
    (tests/test_activations.py).
    """

    C = math.sqrt(2.0 / math.pi)
    A = 0.044715
    CA = C * A          # u = x·(C + CA·x²)
    CA3 = 3 * C * A     # du/dx = C + CA3·x²

    def __init__(self):
        self.dydx = None  # GELU'(x), kept by a training-mode forward for the backward

    def forward(self, x):
        if backend.is_gpu():
            self.dydx = gelu_derivative_formula(x) if self.training else None   # one fused kernel each
            return gelu_formula(x)
        u = x * x                                   # the same math, computed in place to save memory passes:
        u *= self.CA                                #   C·0.044715·x²
        u += self.C                                 #   C·(1 + 0.044715·x²)
        u *= x                                      #   u = C·(x + 0.044715·x³)
        t = xp.tanh(u, out=u)                       # t = tanh(u)
        self.dydx = self.derivative(x, t) if self.training else None
        y = t                                       # y in t's memory (the derivative has read t):
        y += 1.0                                    #   1 + t
        y *= x
        y *= 0.5                                    #   ½·x·(1 + t)
        return y

    def derivative(self, x, t):
        """GELU'(x) = ½ (1 + t) (1 + x·du/dx·(1 − t)), from x and t = tanh(u) (both the shape of x).

        Computed in place, as the forward, in two new arrays; x and t are left as they are."""
        dydx = x * x                                # du/dx = C·(1 + 3·0.044715·x²)
        dydx *= self.CA3
        dydx += self.C
        dydx *= x                                   # x·du/dx
        factor = xp.subtract(1.0, t)                # 1 − t
        dydx *= factor
        dydx += 1.0                                 # 1 + x·du/dx·(1 − t)
        factor = xp.add(t, 1.0, out=factor)         # 1 + t, in the same memory
        dydx *= factor
        dydx *= 0.5                                 # ½·(1 + t)·(1 + x·du/dx·(1 − t))
        return dydx

    def backward(self, dy):
        if self.dydx is None:
            raise RuntimeError("GELU.backward needs a forward in training mode, which keeps GELU'(x) for one "
                               "backward; this layer's last forward ran in evaluation mode (after .eval()), "
                               "none ran, or its backward has already run. Call .train() on the model before "
                               "the forward whose gradients you need, and one backward after each forward.")
        # dx = dy ⊙ GELU'(x), written over GELU'(x), which only this backward needs: a [..., 4·d_model]
        # array is not taken a second time at the moment the step's memory peaks (its backward).
        dx = xp.multiply(dy, self.dydx, out=self.dydx)
        self.dydx = None
        return dx


@backend.fuse
def gelu_formula(x):
    """GELU (tanh form) as the formula reads: ½ x (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)."""
    t = xp.tanh(x * (GELU.C + x * x * GELU.CA))                         # tanh(u)
    return 0.5 * x * (1.0 + t)


@backend.fuse
def gelu_derivative_formula(x):
    """GELU'(x) as the formula reads: ½ (1 + t) (1 + x·du/dx·(1 − t))."""
    t = xp.tanh(x * (GELU.C + x * x * GELU.CA))                         # tanh(u)
    du_dx = GELU.C + x * x * GELU.CA3                                   # √(2/π)(1 + 3·0.044715 x²)
    return 0.5 * (1.0 + t) * (1.0 + x * du_dx * (1.0 - t))


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
