"""Exercise (lesson 11): the backward of multi-head attention, through the heads' reshapes.

Run it:  python lessons/11_backprop_by_hand.py --exercise
"""
import numpy as np


def multi_head_backward(self, dy):
    """dx from dy = ∂L/∂y [B, T_q, d_model]: the body of MultiHeadAttention.backward.

    self: the MultiHeadAttention layer after its forward (self.n_head, self.d_k, self.d_model =
          n_head · d_k); its sub-layers kept what their own backwards need: self.out_proj, self.attention
          (ScaledDotProductAttention), self.q_proj, self.k_proj, self.v_proj.
          self.cross: whether the forward was cross-attention (forward(x, context)).
          self.fused: whether the forward projected Q, K and V in one product (self-attention only);
          then the three projections' backward is one call, self._project_qkv_backward(dq, dk, dv),
          which takes dq, dk, dv [B, n_head, T, d_k] and returns dx [B, T, d_model] itself.
    Returns dx [B, T_q, d_model] for self-attention, (dx, dcontext) for cross-attention.

    The forward (lessons 08 and 11, step 7), with c = x for self-attention, the context for cross:
        Q, K, V = x W_q, c W_k, c W_v                         [B, T, d_model]
        split:  [B, T, d_model] -> [B, T, n_head, d_k] -> [B, n_head, T, d_k]   (head h: columns
                h·d_k .. (h+1)·d_k of each row)
        heads = softmax(Q_h K_hᵀ / √d_k) V_h, every head at once   [B, n_head, T_q, d_k]
        merge:  [B, n_head, T_q, d_k] -> [B, T_q, n_head, d_k] -> [B, T_q, d_model]
        y = merged W_o (+ b_o)

    Go through it in reverse, calling each sub-layer's own backward (each returns the gradient of its
    input and adds into its parameters' .grad). Reshapes and transposes only move numbers: write the
    reverse of each one here with .reshape and .transpose (not self.split_heads / self.merge_heads), and
    make sure every number of a head's gradient goes back to the column it came from. x that feeds more
    than one projection receives the sum of their gradients. Lesson 11, step 7, checks dx and all eight
    parameters' gradients against finite differences in float64, with n_head ≥ 2 and d_k ≠ T.
    """
    # TODO: your code here (about 12 lines).
    raise NotImplementedError
