"""Exercise (lesson 10): the forward of LayerNorm.

Run it:  python lessons/10_residuals_and_layernorm.py --exercise
"""
import numpy as np


def layernorm_forward(self, x):
    """y = γ ⊙ x̂ + β over the last axis: the body of LayerNorm.forward.

    self: the LayerNorm layer. self.weight.data is γ [D], self.bias.data is β [D] (self.bias is None
          when the layer has no bias: then y = γ ⊙ x̂), self.eps the small number below.
    x: [..., D], one row of D features per position. Returns y [..., D].

    Per row:  μ = mean(x)   σ² = mean((x − μ)²)   (divide by D, not D − 1)
              r = 1/√(σ² + eps)   x̂ = (x − μ) r   y = γ ⊙ x̂ + β

    Keep for the backward (the library's LayerNorm.backward reads them, and the lesson runs it):
        self.xhat = x̂ [..., D]     self.rstd = r [..., 1]   (keepdims=True: one number per row)
    """
    # TODO: your code here (about 7 lines).
    raise NotImplementedError
