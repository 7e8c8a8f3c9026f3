"""Exercise (lesson 11): the backward of GELU.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import math

import numpy as np


def gelu_backward(self, dy):
    """dx = dy ⊙ GELU'(x), element-wise: the body of GELU.backward.

    self: the GELU layer after its forward, which kept self.x (its input, any shape) and
          self.t = tanh(u) (same shape), with u = √(2/π) (x + 0.044715 x³).
    dy: the shape of x. Returns dx, the shape of x.

        y  = ½ x (1 + tanh u)
        y' = ½ (1 + tanh u) + ½ x (1 − tanh² u) · √(2/π) (1 + 3·0.044715 x²)

    (Product rule, then the chain rule through tanh and u.) Lesson 11 checks it against finite
    differences in float64.
    """
    # TODO: your code here (about 3 lines).
    raise NotImplementedError
