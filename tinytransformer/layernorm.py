"""Layer normalisation over the feature axis."""
from __future__ import annotations

from . import backend
from .backend import xp
from .module import Module, Parameter, check_last_dim


class LayerNorm(Module):
    """y = γ ⊙ x̂ + β,  x̂ = (x − μ) / √(σ² + eps), with μ, σ² the mean and biased variance of each row.

    As PyTorch's nn.LayerNorm: eps inside the square root, variance divided by D (not D − 1).

    Backward, per row of D features, with g = dy ⊙ γ and r = 1/√(σ² + eps):
        dγ += Σ_rows dy ⊙ x̂      dβ += Σ_rows dy
        dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))
    (derived in lessons/10). Forward keeps x̂ and r: the two things the backward needs, instead of x.
    ``bias=False`` drops β (y = γ ⊙ x̂), as nanoGPT's models without biases do.
    """

    def __init__(self, d_model: int, eps: float = 1e-5, bias: bool = True):
        self.d_model, self.eps = d_model, eps
        self.weight = Parameter(xp.ones(d_model, dtype=backend.default_dtype()))   # γ
        self.bias = Parameter(xp.zeros(d_model, dtype=backend.default_dtype())) if bias else None  # β
        self.xhat = None   # normalised input x̂ [..., D]
        self.rstd = None   # 1/√(σ² + eps) [..., 1]

    def forward(self, x):
        check_last_dim(x, self.d_model, "LayerNorm", "d_model")
        mean = x.mean(axis=-1, keepdims=True)                                    # [..., 1]
        centered = x - mean                                                      # [..., D]
        var = (centered * centered).mean(axis=-1, keepdims=True)                 # [..., 1], biased
        self.rstd = 1.0 / xp.sqrt(var + self.eps)                                # [..., 1]
        self.xhat = centered * self.rstd                                         # [..., D]
        y = self.xhat * self.weight.data                                         # [..., D]
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        xhat, rstd = self.xhat, self.rstd
        leading = tuple(range(dy.ndim - 1))
        self.weight.grad += (dy * xhat).sum(axis=leading)                        # [D]
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=leading)                               # [D]
        g = dy * self.weight.data                                                # [..., D]: dL/dx̂
        return rstd * (g - g.mean(axis=-1, keepdims=True)
                       - xhat * (g * xhat).mean(axis=-1, keepdims=True))         # [..., D]
