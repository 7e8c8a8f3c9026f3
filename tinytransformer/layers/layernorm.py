"""Layer normalisation over the feature axis."""
from __future__ import annotations

from .. import backend
from ..backend import xp
from ..module import Module, Parameter, check_last_dim
from .reductions import row_mean


class LayerNorm(Module):
    """y = γ ⊙ x̂ + β,  x̂ = (x − μ) / √(σ² + eps), with μ, σ² the mean and biased variance of each row.

    As PyTorch's nn.LayerNorm: eps inside the square root, variance divided by D (not D − 1).

    Backward, per row of D features, with g = dy ⊙ γ and r = 1/√(σ² + eps):
        dγ += Σ_rows dy ⊙ x̂      dβ += Σ_rows dy
        dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))
    (derived in lessons/11, step 4). Forward keeps x̂ and r: the two things the backward needs, instead of x.
    ``bias=False`` drops β (y = γ ⊙ x̂), as nanoGPT's models without biases do.

    The per-row means are taken by ``row_mean`` (``row_mean(a, b)`` is the mean of a ⊙ b), which is
    ``mean(axis=-1, keepdims=True)`` computed faster on short rows.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, bias: bool = True):
        self.d_model, self.eps = d_model, eps
        self.weight = Parameter(xp.ones(d_model, dtype=backend.default_dtype()))   # γ
        self.bias = Parameter(xp.zeros(d_model, dtype=backend.default_dtype())) if bias else None  # β
        self.xhat = None   # normalised input x̂ [..., D]
        self.rstd = None   # 1/√(σ² + eps) [..., 1]

    def forward(self, x):
        check_last_dim(x, self.d_model, "LayerNorm", "d_model")
        mean = row_mean(x)                                                       # [..., 1]
        centered = x - mean                                                      # [..., D]
        var = row_mean(centered, centered)                                       # [..., 1], biased
        self.rstd = 1.0 / xp.sqrt(var + self.eps)                                # [..., 1]
        centered *= self.rstd                                                    # in place: x̂ [..., D]
        self.xhat = centered
        y = self.xhat * self.weight.data                                         # [..., D]
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        xhat, rstd = self.xhat, self.rstd
        dy2, xhat2 = dy.reshape(-1, self.d_model), xhat.reshape(-1, self.d_model)  # [N, D]: rows
        self.weight.grad += xp.einsum("nd,nd->d", dy2, xhat2)                    # [D]: Σ_rows dy ⊙ x̂
        if self.bias is not None:
            self.bias.grad += dy2.sum(axis=0)                                    # [D]: Σ_rows dy
        g = dy * self.weight.data                                                # [..., D]: dL/dx̂
        mean_g, mean_g_xhat = row_mean(g), row_mean(g, xhat)                     # [..., 1] each
        if backend.is_gpu():
            return layernorm_dx(g, xhat, rstd, mean_g, mean_g_xhat)             # one fused kernel
        # The same formula in place, in g's memory (a new array of this layer's): one new array, not four.
        along_xhat = xhat * mean_g_xhat
        g -= mean_g
        g -= along_xhat
        g *= rstd
        return g                                                                 # [..., D]: dx


@backend.fuse
def layernorm_dx(g, xhat, rstd, mean_g, mean_g_xhat):
    """dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), given the two row means ([..., 1]).

    The row means are reductions and stay outside; the rest is element-wise, one fused kernel on a GPU
    instead of four (backend.fuse). On NumPy, LayerNorm.backward computes the same operations in the
    same order in place; tests/test_layernorm.py holds the two equal bit for bit.
    """
    return rstd * (g - mean_g - xhat * mean_g_xhat)
