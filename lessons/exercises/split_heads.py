"""Exercise (lesson 08): splitting Q (or K, V) into attention heads.

Run it:  python lessons/08_multi_head.py --exercise
"""
import numpy as np


def split_heads(self, x):
    """[B, T, d_model] -> [B, n_head, T, d_k]: the body of MultiHeadAttention.split_heads.

    self: the MultiHeadAttention layer; self.n_head heads of self.d_k = d_model / n_head features.
    Head h gets columns h·d_k .. (h+1)·d_k of each row of x: cut every row into n_head consecutive
    pieces (a reshape to [B, T, n_head, d_k]), then move the head axis in front of T (a transpose), so
    that one batched matmul runs all heads. No number changes, they are only regrouped.
    """
    # TODO: your code here (one or two lines).
    raise NotImplementedError
