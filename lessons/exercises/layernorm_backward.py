"""Exercise (lesson 11): the backward of LayerNorm.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import numpy as np


def layernorm_backward(self, dy):
    """dx from dy = ∂L/∂y, and the gradients of γ and β: the body of LayerNorm.backward.

    self: the LayerNorm layer after its forward, which kept
          self.xhat = x̂ [..., D] and self.rstd = r = 1/√(σ² + eps) [..., 1];
          γ is self.weight.data [D], β is self.bias.data [D] (self.bias may be None).
    dy: [..., D]. Returns dx [..., D].

    Gradients accumulate: ADD into the parameters' .grad, summing over every row (all leading axes):
        self.weight.grad += Σ_rows dy ⊙ x̂          self.bias.grad += Σ_rows dy
    For x, with g = dy ⊙ γ (the gradient reaching x̂), per row of D features:
        dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂))
    The two subtracted terms are the paths through μ and σ (x̂ depends on the whole row); lesson 11
    (step 4) derives them. Its finite-difference check in float64 finds a missing term.
    """
    # TODO: your code here (about 6 lines).
    raise NotImplementedError
