"""Exercise (lesson 11): the derivative of GELU, which its backward multiplies by.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import math

import numpy as np


def gelu_derivative(self, x, s):
    """GELU'(x), element-wise: the body of GELU.derivative, which the forward calls.

    x: GELU's input, any shape. s = σ(2u), the same shape, with σ(z) = 1 / (1 + e^−z) and
    u = √(2/π) (x + 0.044715 x³). Returns y'(x), the shape of x; the layer's backward is then
    dx = dy ⊙ y'(x). Leave x and s as they are (no in-place operations on them): the forward goes on
    to compute y from s.

        y = ½ x (1 + tanh u) = x·σ(2u) = x·s          (½ (1 + tanh u) = σ(2u))

    Differentiate it: the product rule, then the chain rule through σ and u (lesson 11, step "GELU",
    shows the result). Lesson 11 checks the layer's backward against finite differences in float64.
    """
    # TODO: your code here (about 3 lines).
    raise NotImplementedError
