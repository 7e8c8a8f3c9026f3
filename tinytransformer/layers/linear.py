"""Linear (fully connected) layer."""
from __future__ import annotations

import math

from .. import backend
from ..module import Module, Parameter, check_last_dim


class Linear(Module):
    """y = x W + b, applied to the last axis.

    Shapes: x [..., in_features], W [in_features, out_features], b [out_features], y [..., out_features].

    Backward, with every leading axis flattened into N rows (x2 [N, in], dy2 [N, out]):
        dW += x2ᵀ dy2        db += Σ_rows dy2        dx = dy Wᵀ

    W is stored [in, out] so that the forward reads as the math, ``x @ W``; PyTorch's nn.Linear stores
    the transpose. Initialisation: uniform(±1/√in), as PyTorch.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = rng if rng is not None else backend.host_rng()
        self.weight = Parameter(backend.asarray(rng.uniform(-bound, bound, (in_features, out_features)),
                                                dtype=backend.default_dtype()))
        self.bias = (Parameter(backend.asarray(rng.uniform(-bound, bound, out_features),
                                               dtype=backend.default_dtype())) if bias else None)
        self.x = None  # the input, kept for dW = xᵀ dy

    def forward(self, x):
        check_last_dim(x, self.in_features, "Linear", "in_features")
        self.x = x
        # One [N, in] @ [in, out] product: for a 3-D x NumPy's matmul would loop over the first axis.
        x2 = x.reshape(-1, self.in_features)                        # [N, in], N = all leading axes
        y = x2 @ self.weight.data                                   # [N, in] @ [in, out] -> [N, out]
        if self.bias is not None:
            y += self.bias.data                                     # [N, out] + [out]
        return y.reshape(*x.shape[:-1], self.out_features)          # [..., out]

    def backward(self, dy):
        x2 = self.x.reshape(-1, self.in_features)                   # [N, in]
        dy2 = dy.reshape(-1, self.out_features)                     # [N, out]
        self.weight.grad += x2.T @ dy2                              # [in, N] @ [N, out] -> [in, out]
        if self.bias is not None:
            self.bias.grad += dy2.sum(axis=0)                       # [out]
        dx2 = dy2 @ self.weight.data.T                              # [N, out] @ [out, in] -> [N, in]
        return dx2.reshape(self.x.shape)                            # [..., in]
