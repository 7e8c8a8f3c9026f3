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

    computed as x times a sigmoid, since ½ (1 + tanh(u)) = σ(2u) with σ(z) = 1 / (1 + e^−z):

        y = x·s,   s = σ(2u) = 1 / (1 + e^(−2u))
        dy/dx = s + x·s (1 − s)·2 du/dx = s (1 + 2x·du/dx·(1 − s)),   du/dx = √(2/π) (1 + 3·0.044715 x²)

    (σ' = σ (1 − σ); lessons/11 derives the same derivative in the tanh form.) The sigmoid needs one exp
    where the tanh form needs one tanh, and NumPy's float32 exp is the cheaper of the two on some CPUs:
    1.3 against 2.6 ns an element on an AMD EPYC (AVX2). It also keeps GELU's small negative values: at
    x = −5, 1 + tanh(u) ≈ 1e-7 is a difference of two numbers near 1 and keeps no correct digit in float32,
    while s is computed to full precision. The tanh form is used because NumPy has no erf (the exact GELU
    needs it); the two differ by < 1e-3.

    An element-wise function's backward is dy times its local derivative, dx = dy ⊙ y'(x). So the forward
    computes y'(x) while x and s are at hand (``derivative``) and keeps only it: the backward is one
    multiplication, and the layer holds one array where it would otherwise hold two (x and s): a GPT block
    then saves about a fifth less for its backward. The backward writes dx over y'(x), so one forward
    serves one backward. In evaluation mode (``eval()``) there is no backward to prepare for, and the
    forward skips the derivative.

    Two ways to evaluate the same formulas, chosen by the backend:
    - on a GPU (CuPy, and the stand-in that imitates it), ``gelu_formula`` and ``gelu_derivative_formula``
      below, each fused into one kernel by ``backend.fuse``;
    - on NumPy, ``forward`` and ``derivative`` evaluate them with in-place operations (fewer temporary
      arrays): y and GELU'(x) of a [6, 64, 512] float32 array took 0.74 ms, the two formulas operation by
      operation 1.32 ms (AMD EPYC, one thread; the tanh form took 1.02 ms in place).
    Both do the same floating-point operations in the same order, so on the CPU they agree bit for bit
    (tests/test_activations.py).
    """

    C = math.sqrt(2.0 / math.pi)
    A = 0.044715
    TWO_C = 2 * C           # 2u = x·(TWO_C + TWO_CA·x²)
    TWO_CA = 2 * C * A
    TWO_CA3 = 6 * C * A     # 2·du/dx = TWO_C + TWO_CA3·x² = 2C·(1 + 3·0.044715·x²)

    def __init__(self):
        self.dydx = None  # GELU'(x), kept by a training-mode forward for the backward

    def forward(self, x):
        if backend.is_gpu():
            self.dydx = gelu_derivative_formula(x) if self.training else None   # one fused kernel each
            return gelu_formula(x)
        s = x * x                                   # the same math, computed in place to save memory passes:
        s *= -self.TWO_CA                           #   −2C·0.044715·x²
        s -= self.TWO_C                             #   −2C·(1 + 0.044715·x²)
        s *= x                                      #   −2u
        with xp.errstate(over="ignore"):            # e^(−2u) is inf below x ≈ −10: s = 1/inf = 0, y = −0,
            xp.exp(s, out=s)                        #   which is GELU's limit there, not an error
        s += 1.0                                    #   1 + e^(−2u)
        s = xp.reciprocal(s, out=s)                 # s = σ(2u)
        self.dydx = self.derivative(x, s) if self.training else None
        y = s                                       # y in s's memory (the derivative has read s):
        y *= x                                      #   x·s
        return y

    def derivative(self, x, s):
        """GELU'(x) = s (1 + 2x·du/dx·(1 − s)), from x and s = σ(2u) (both the shape of x).

        Computed in place, as the forward, in two new arrays; x and s are left as they are."""
        dydx = x * x                                # 2x·du/dx = 2C·(x + 3·0.044715·x³)
        dydx *= self.TWO_CA3
        dydx += self.TWO_C
        dydx *= x
        dydx *= xp.subtract(1.0, s)                 # ·(1 − s)
        dydx += 1.0
        dydx *= s                                   # s·(1 + 2x·du/dx·(1 − s))
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
    """GELU (tanh form) as the formula reads: x·σ(2u) = ½ x (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)."""
    s = 1.0 / (1.0 + xp.exp(x * (x * x * -GELU.TWO_CA - GELU.TWO_C)))   # σ(2u) = 1/(1 + e^(−2u))
    return x * s


@backend.fuse
def gelu_derivative_formula(x):
    """GELU'(x) as the formula reads: s (1 + 2x·du/dx·(1 − s)), s = σ(2u)."""
    s = 1.0 / (1.0 + xp.exp(x * (x * x * -GELU.TWO_CA - GELU.TWO_C)))   # σ(2u)
    return s * (1.0 + x * (x * x * GELU.TWO_CA3 + GELU.TWO_C) * (1.0 - s))


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
