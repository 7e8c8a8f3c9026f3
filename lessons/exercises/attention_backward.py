"""Exercise (lesson 11): the backward of scaled dot-product attention.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import math

import numpy as np


def attention_backward(self, dout):
    """(dq, dk, dv) from dout = ∂L/∂out: the body of ScaledDotProductAttention.backward.

    self: the attention layer after its forward, which kept its inputs
          self.q [..., T_q, d_k], self.k [..., T_k, d_k], self.v [..., T_k, d_v]
          and self.weights = W [..., T_q, T_k], the attention weights (masked entries exactly 0).
          Lesson 11 runs it without dropout (self.dropout is None), so the W that multiplied V is
          self.weights itself.
    dout: [..., T_q, d_v]. Returns (dq, dk, dv), the shapes of q, k and v. Any leading axes
          (batch, heads) are batch axes: np.swapaxes(a, -1, -2) transposes the last two.

    The forward (lesson 5; the mask is lesson 7's, and the backward needs no mask of its own):
        S = Q Kᵀ / √d_k               scores [..., T_q, T_k]
        W = softmax(S), row by row    masked scores get W = 0
        out = W V                     [..., T_q, d_v]

    Go back through the three lines in reverse, one rule each: the matrix product (as Linear's, lesson
    11 step 2), the softmax's backward along a row (derive it yourself from ∂W_i/∂S_j; lesson 11 step 5
    works it out; no T_k × T_k Jacobian is needed), and the product with a constant 1/√d_k.
    Lesson 11 checks dq, dk and dv against finite differences in float64 under a causal mask, and
    that a key masked for every query (padding) gets a gradient of exactly 0.
    """
    # TODO: your code here (about 7 lines).
    raise NotImplementedError
