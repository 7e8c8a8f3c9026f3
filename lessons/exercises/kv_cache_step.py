"""Exercise (lesson 17): one decoding step of self-attention with a KV cache.

Run it:  python lessons/17_sampling.py --exercise
"""
import numpy as np


def kv_cache_step(self, x, cache):
    """Causal self-attention of the new positions x over the cached ones and themselves: the body of
    MultiHeadAttention's cached forward (forward(x, cache=cache)), which generate(..., use_cache=True)
    calls in every block, first with the whole prompt, then with one new token per step.

    self: the MultiHeadAttention layer (self.n_head, self.d_k, self.d_model; self.q_proj, self.k_proj,
          self.v_proj, self.out_proj; self.attention, a ScaledDotProductAttention: self.attention(q, k,
          v, mask) with q [B, n_head, T_q, d_k], k and v [B, n_head, T_k, d_k], mask [T_q, T_k]).
    x: [B, T_new, d_model], the new positions only (T_new = 1 in a decoding step).
    cache: a dict, this block's own; empty ({}) or cache["k"] is None before the first call, then
           cache["k"] and cache["v"]: the keys and values of the `past` earlier positions,
           [B, n_head, past, d_k] each.
    Returns [B, T_new, d_model], what forward(x_all, mask=causal_mask(T_all)) gives at the new positions.

    The new positions' q, k, v are projected and split into heads as in the forward (lesson 08). Their
    keys and values join the cache, which must hold, after the call, the keys and values of all
    past + T_new positions in order (it grows by one position per decoding step). The new queries attend
    to every cached position and to the new ones up to themselves: new position i (of T_new) is position
    past + i of the sequence (causal_mask(T_new, past) from tinytransformer, lesson 07, is that mask).
    Then merge the heads and apply the output projection, as the forward does.
    Lesson 17, step 10, checks how the cache grows; step 11 generates greedily in float64 with and without
    the cache: the tokens must be the same; step 12 counts the attention scores each path computes, through
    self.attention (so call it, rather than computing the scores yourself).
    """
    # TODO: your code here (about 10 lines).
    raise NotImplementedError
