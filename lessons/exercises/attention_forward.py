"""Exercise (lesson 05): the forward of scaled dot-product attention.

Run it:  python lessons/05_attention_by_hand.py --exercise
"""
import math

import numpy as np


def attention_forward(self, q, k, v, mask=None):
    """out = softmax(Q Kᵀ / √d_k) V: the body of ScaledDotProductAttention.forward.

    self: the ScaledDotProductAttention layer. Set ``self.weights`` to W below: the lesson reads it.
    q: [..., T_q, d_k]   k: [..., T_k, d_k]   v: [..., T_k, d_v]   (any leading axes, e.g. [B, h])
    mask: None, or a boolean array broadcasting against [..., T_q, T_k], True where query i may
          attend to key j.
    Returns out [..., T_q, d_v].

        S = Q Kᵀ / √d_k            [..., T_q, T_k]   (np.swapaxes(k, -1, -2) transposes the last two axes)
        S[~mask] = −∞              disallowed keys get weight exactly 0
        W = softmax(S)             along the last axis (the keys), each row sums to 1
        out = W V                  [..., T_q, d_v]

    You may call tinytransformer.masked_softmax, or write the softmax (the exercise of lesson 07).
    The lesson compares your W and out with its own loops, and checks that a masked edge gets weight 0.
    """
    # TODO: your code here (about 5 lines).
    raise NotImplementedError
