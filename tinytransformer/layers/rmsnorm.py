"""RMS normalisation over the feature axis: LayerNorm without the centring (LLaMA, Mistral, Gemma)."""
from __future__ import annotations

from .. import backend
from ..backend import xp
from ..module import Module, Parameter, check_last_dim
from .reductions import row_mean


class RMSNorm(Module):
    """y = γ ⊙ x̂,  x̂ = x / √(mean(x²) + eps): each row scaled to a root mean square of 1, never shifted.

    LayerNorm subtracts the mean and divides by the standard deviation; RMSNorm only divides by the root
    mean square, so it has no β and one reduction fewer. (As Hugging Face's LlamaRMSNorm: eps inside the
    square root, the mean over D features.)

    Backward, per row of D features, with g = dy ⊙ γ and r = 1/√(mean(x²) + eps):
        dγ += Σ_rows dy ⊙ x̂
        dx = r · (g − x̂ ⊙ mean(g ⊙ x̂))
    LayerNorm's dx has one more term, − mean(g), which came from the centring that RMSNorm leaves out.
    """

    def __init__(self, d_model: int, eps: float = 1e-5):
        self.d_model, self.eps = d_model, eps
        self.weight = Parameter(xp.ones(d_model, dtype=backend.default_dtype()))   # γ
        self.xhat = None   # normalised input x̂ [..., D]
        self.rstd = None   # 1/√(mean(x²) + eps) [..., 1]

    def forward(self, x):
        check_last_dim(x, self.d_model, "RMSNorm", "d_model")
        self.rstd = 1.0 / xp.sqrt(row_mean(x, x) + self.eps)                    # [..., 1]
        self.xhat = x * self.rstd                                                # [..., D]
        return self.xhat * self.weight.data                                      # [..., D]

    def backward(self, dy):
        xhat, rstd = self.xhat, self.rstd
        dy2, xhat2 = dy.reshape(-1, self.d_model), xhat.reshape(-1, self.d_model)  # [N, D]: rows
        self.weight.grad += xp.einsum("nd,nd->d", dy2, xhat2)                    # [D]: Σ_rows dy ⊙ x̂
        g = dy * self.weight.data                                                # [..., D]: dL/dx̂
        return rstd * (g - xhat * row_mean(g, xhat))                             # [..., D]
