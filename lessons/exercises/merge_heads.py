"""Exercise (lesson 08): merging the attention heads back into one row per position.

Run it:  python lessons/08_multi_head.py --exercise
"""
import numpy as np


def merge_heads(self, x):
    """[B, n_head, T, d_k] -> [B, T, d_model]: the body of MultiHeadAttention.merge_heads.

    self: the MultiHeadAttention layer (self.n_head, self.d_k, self.d_model = n_head · d_k).
    The inverse of split_heads: head h's d_k features go back to columns h·d_k .. (h+1)·d_k of each
    position's row, so merge_heads(split_heads(x)) == x exactly. The order of the axes matters before
    the reshape: the heads of one position must be next to each other.
    """
    # TODO: your code here (one or two lines).
    raise NotImplementedError
