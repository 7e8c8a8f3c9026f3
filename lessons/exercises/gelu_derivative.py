"""Exercise (lesson 11): the derivative of GELU, which its backward multiplies by.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import math

import numpy as np


def gelu_derivative(self, x, t):
    """GELU'(x), element-wise: the body of GELU.derivative, which the forward calls.

    x: GELU's input, any shape. t = tanh(u), the same shape, with u = √(2/π) (x + 0.044715 x³).
    Returns y'(x), the shape of x; the layer's backward is then dx = dy ⊙ y'(x). Leave x and t as
    they are (no in-place operations on them): the forward goes on to compute y from t.

        y = ½ x (1 + tanh u),   u = √(2/π) (x + 0.044715 x³)

    Differentiate it: the product rule, then the chain rule through tanh and u (lesson 11, step "GELU",
    shows the result). Lesson 11 checks the layer's backward against finite differences in float64.
    """
    # TODO: your code here (about 3 lines).
    raise NotImplementedError
