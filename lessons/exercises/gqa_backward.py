"""Exercise (lesson 26): the backward of grouped-query attention's repeat_kv.

Run it:  python lessons/26_grouped_query_attention.py --exercise
"""
import numpy as np


def gqa_backward(self, grad):
    """The gradient of the K/V heads from the gradient of their repeated copies: the body of
    MultiHeadAttention.sum_kv, which the layer's backward calls for dK and for dV.

    self: the MultiHeadAttention layer: self.n_head query heads, self.n_kv_head key/value heads,
          self.groups = n_head / n_kv_head query heads per K/V head (1 for ordinary multi-head attention).
    grad: [B, n_head, T, d_k], the gradient of the keys (or values) as attention saw them, after repeat_kv.
    Returns [B, n_kv_head, T, d_k], the gradient of the keys (or values) before repeat_kv.

    The forward (lesson 26, step 1) is repeat_kv:
        [B, n_kv_head, T, d_k] -> [B, n_head, T, d_k]:  query head h sees K/V head h // groups,
        so K/V head j is copied to query heads j·groups, j·groups + 1, ..., j·groups + groups − 1.
    (np.repeat(kv, self.groups, axis=1) is that forward.)

    What does K/V head j receive from its copies? Lesson 26, step 3, derives it. Step 3 checks your
    function against the group sums of a loop, and whole GQA layers (groups 2, 3 and 6) against finite
    differences in float64; then the lesson trains with it.
    """
    # TODO: your code here (a line or two).
    raise NotImplementedError
