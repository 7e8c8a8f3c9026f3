"""Scaled dot-product attention and multi-head attention.

Masks are boolean and say where attention is *allowed*: ``mask[..., i, j]`` is True when query i may
look at key j (the convention of ``torch.nn.functional.scaled_dot_product_attention``). A mask only has
to broadcast against the scores ``[..., T_q, T_k]``: a causal mask is ``[T, T]``, a padding mask for
multi-head attention is ``[B, 1, 1, T_k]``.

Both layers check a mask before using it (``check_mask``): a boolean array that broadcasts to the
scores without enlarging them. MultiHeadAttention also refuses the shapes that NumPy would broadcast
the wrong way: a ``[B, T_k]`` padding mask reads as ``[T_q, T_k]`` when B = T_q, a ``[B, T_q, T_k]``
mask as ``[n_head, T_q, T_k]`` when B = n_head. So it takes four axes, or two that are ``[T_q, T_k]``:
when B = T_q, a two-axis mask must be one that ``causal_mask`` made (``mask[None, None]`` otherwise).
"""
from __future__ import annotations

import math

from .. import backend
from ..backend import xp
from .blockwise_attention import blockwise_attention, blockwise_attention_backward
from .dropout import Dropout
from .linear import Linear
from ..module import Module, check_input_dtype, check_last_dim
from .reductions import row_max, row_sum
from .rotary import RotaryEmbedding


_causal_masks = {}  # (backend, T, past, window) -> mask: a training run asks for the same mask every step


def causal_mask(length: int, past: int = 0, window: int | None = None):
    """[T, past + T]: query t (at position past + t) may attend to keys 0 .. past + t, never the future.

    With past = 0 this is the square lower-triangular mask of training; past > 0 is the mask of new
    queries that also see ``past`` cached keys (generation with a KV cache). With ``window`` W (local,
    sliding-window attention, as Mistral's) a query also stops looking W positions back: it sees keys
    i − W + 1 .. i, a band of W under the diagonal. Masks are cached and shared: do not modify one.
    """
    key = (backend.name(), length, past, window)
    if key not in _causal_masks:
        mask = xp.tril(xp.ones((length, past + length), dtype=bool), k=past)
        if window is not None:
            mask &= ~xp.tril(xp.ones((length, past + length), dtype=bool), k=past - window)
        _causal_masks[key] = mask
    return _causal_masks[key]


def is_causal_mask(mask) -> bool:
    """Whether ``mask`` is one of the masks ``causal_mask`` returned: known to be [T_q, T_k]."""
    return any(made is mask for made in _causal_masks.values())


def padding_mask(is_pad):
    """[B, T_k] True-where-padding -> [B, 1, 1, T_k] True-where-attention-is-allowed (for B, heads, T_q)."""
    return ~is_pad[:, None, None, :]


def _broadcasts_to(mask_shape, shape) -> bool:
    """Whether an array of mask_shape broadcasts to shape without enlarging it (axes aligned from the right)."""
    return len(mask_shape) <= len(shape) and all(m in (1, n) for m, n in zip(mask_shape[::-1], shape[::-1]))


MASK_HINT = ("Build masks with causal_mask(T) ([T, T]) and padding_mask(is_pad) ([B, T_k], True at "
             "padding -> [B, 1, 1, T_k]); combine them with &.")


def check_mask(mask, scores_shape, layer: str, expected: str = "") -> None:
    """A mask must be boolean (True = may attend) and broadcast to the scores [..., T_q, T_k] as they are.

    Python-level checks of dtype and shape only: nothing reads the mask's contents. ``expected`` says
    which shapes the layer takes, for the message.
    """
    if not hasattr(mask, "dtype") or mask.dtype.kind != "b":
        got = f"dtype {mask.dtype}" if hasattr(mask, "dtype") else f"a {type(mask).__name__}"
        raise TypeError(f"{layer}: a mask must be a boolean array, True where query i may attend to key j; "
                        f"got {got}. Convert a 0/1 mask of allowed positions with (mask == 1), an "
                        f"additive mask of 0 and -inf with (mask == 0). {MASK_HINT}")
    if not _broadcasts_to(tuple(mask.shape), tuple(scores_shape)):
        expected = expected or ("Aligned from the right, each of its axes must be 1 or the size of the "
                                "scores' axis.")
        raise ValueError(f"{layer}: a mask of shape {tuple(mask.shape)} does not broadcast to the attention "
                         f"scores {tuple(scores_shape)} ([..., T_q, T_k]). {expected} {MASK_HINT}")


def masked_softmax(scores, mask=None):
    """softmax over the last axis, with disallowed positions getting weight exactly 0.

    The row maximum is subtracted before ``exp`` so that exp never overflows (softmax is unchanged by a
    shift). A row whose every position is masked has no valid distribution: it gets all zeros, not NaN.
    """
    if mask is not None:
        scores = xp.where(mask, scores, -xp.inf)                       # masked -> exp(-inf) = 0
    largest = scores.max(axis=-1, keepdims=True)                        # [..., T_q, 1]
    if mask is not None:
        largest = xp.where(xp.isfinite(largest), largest, 0.0)          # fully masked row: -inf - -inf is NaN
    e = xp.exp(scores - largest)                                        # [..., T_q, T_k]
    total = e.sum(axis=-1, keepdims=True)                               # [..., T_q, 1]
    if mask is not None:
        total = xp.where(total == 0, 1.0, total)                        # fully masked row: 0/1 = 0
    return e / total


def masked_softmax_inplace(scores, blocked=None):
    """``masked_softmax`` computed in the memory of ``scores`` (which it overwrites and returns).

    The same steps as above, faster on the attention hot path (about 1.5x on the cpu preset's
    [12, 4, 64, 64] scores): no temporary array per step; the row maxima and sums taken by ``row_max``
    and ``row_sum``, faster than NumPy's ``max`` and ``sum`` along a short last axis. ``blocked`` is
    the negated mask: True where attention is *not* allowed. tests/test_attention.py holds the two
    versions equal.
    """
    if blocked is not None:
        xp.copyto(scores, -xp.inf, where=blocked)                       # masked -> exp(-inf) = 0
    largest = row_max(scores)                                           # [..., T_q, 1]
    if blocked is not None:
        largest[~xp.isfinite(largest)] = 0.0                            # fully masked row: avoid -inf - -inf
    scores -= largest
    e = xp.exp(scores, out=scores)                                      # [..., T_q, T_k], in place
    total = row_sum(e)                                                  # [..., T_q, 1]
    if blocked is not None:
        total[total == 0] = 1.0                                         # fully masked row: 0/1 = 0
    e /= total
    return e


def softmax_backward(weights, dweights):
    """Backward of w = softmax(s) along the last axis: ds = w ⊙ (dw − Σ_j dw_j w_j).

    (From ∂w_i/∂s_j = w_i(δ_ij − w_j).) Masked positions have w = 0, so they get ds = 0.
    """
    return weights * (dweights - row_sum(dweights, weights))           # row_sum(a, b) = Σ_j a_j b_j


class ScaledDotProductAttention(Module):
    """out = softmax(Q Kᵀ / √d_k) V, with an optional boolean mask on the scores.

    Shapes: Q [..., T_q, d_k], K [..., T_k, d_k], V [..., T_k, d_v] -> out [..., T_q, d_v].

    Forward:   S = Q Kᵀ/√d_k   W = softmax(S)   (W' = dropout(W))   out = W' V
    Backward:  dW' = dout Vᵀ   dV = W'ᵀ dout   dW = dropout backward of dW'
               dS = W ⊙ (dW − rowsum(dW ⊙ W))   dQ = dS K/√d_k   dK = dSᵀ Q/√d_k

    Dividing by √d_k keeps the scores' variance near 1 whatever d_k is; without it softmax saturates and
    its gradients vanish (lessons/05). ``self.weights`` keeps the attention weights W for plotting.

    On the CPU, long sequences (T_q and T_k both at least ``blockwise_from``, no dropout at work) take the
    blockwise path of blockwise_attention.py: the same result over tiles of ``block`` queries × ``block``
    keys with an online softmax, never holding the [..., T_q, T_k] weights (``self.weights`` is then None);
    the backward recomputes them tile by tile. ``blockwise_from = None`` keeps the plain path.
    """

    # From T = 256 the blockwise path is also the faster one on a CPU: forward + backward of causal
    # [12, 4, T, 32] float32 attention took 33 ms against 38 at T = 256, 373 against 665 at T = 1024
    # (it skips the blocks above the diagonal, and its arrays stay in cache); at T = 128, 16 against 13.
    blockwise_from = 256
    block = 128            # queries and keys per tile

    def __init__(self, dropout: float = 0.0, seed=None):
        self.dropout = Dropout(dropout, seed=seed) if dropout > 0 else None
        self.q = self.k = self.v = None  # inputs, kept for dQ = dS K and dK = dSᵀ Q
        self.weights = None              # W = softmax(S) [..., T_q, T_k]: needed for dS, and for plots
        self.dropped = None              # W after dropout (the W' that multiplied V)
        self.blockwise = None            # the blockwise path's (mask, out, lse) when the last forward took it

    def takes_blockwise_path(self, q, k, v) -> bool:
        """Whether attention over these inputs goes block by block (see the class docstring)."""
        dropping = self.dropout is not None and self.dropout.training
        # Measured on CPUs only: on a GPU the plain path stays until the blockwise one is timed there.
        return (self.blockwise_from is not None and min(q.shape[-2], k.shape[-2]) >= self.blockwise_from
                and not dropping and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] and not backend.is_gpu())

    def forward(self, q, k, v, mask=None):
        if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
            raise ValueError(f"Attention shapes do not fit: Q {tuple(q.shape)}, K {tuple(k.shape)}, "
                             f"V {tuple(v.shape)}. Q and K need the same d_k; K and V the same T_k.")
        if not q.dtype == k.dtype == v.dtype:
            raise TypeError(f"Attention got Q, K, V of dtypes {q.dtype}, {k.dtype}, {v.dtype}; they must "
                            "share one dtype (a wider one would silently spread to every result).")
        if self.takes_blockwise_path(q, k, v):
            if mask is not None:
                check_mask(mask, (*q.shape[:-1], k.shape[-2]), "ScaledDotProductAttention")
            out, lse = blockwise_attention(q, k, v, mask, self.block)
            self.q, self.k, self.v, self.weights, self.dropped = q, k, v, None, None
            self.blockwise = (mask, out, lse)
            return out
        self.blockwise = None
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = q @ xp.swapaxes(k, -1, -2)                             # [..., T_q, d_k] @ [..., d_k, T_k]
        if mask is not None:
            check_mask(mask, scores.shape, "ScaledDotProductAttention")
        scores *= scale                                                 # a new array: safe to scale in place
        blocked = None if mask is None else ~mask                       # where attention is not allowed
        weights = masked_softmax_inplace(scores, blocked)               # [..., T_q, T_k]
        dropped = self.dropout(weights) if self.dropout is not None else weights
        self.q, self.k, self.v, self.weights, self.dropped = q, k, v, weights, dropped
        return dropped @ v                                              # [..., T_q, T_k] @ [..., T_k, d_v]

    def backward(self, dout, out=None):
        """(dq, dk, dv) from dout [..., T_q, d_v]; written into ``out`` (zeros shaped as q, k, v) if given."""
        if self.blockwise is not None:
            mask, output, lse = self.blockwise
            return blockwise_attention_backward(self.q, self.k, self.v, mask, output, lse, dout, self.block,
                                                grads=out)
        q, k, v, weights, dropped = self.q, self.k, self.v, self.weights, self.dropped
        dq, dk, dv = out if out is not None else (None, None, None)     # matmul(..., out=None): a new array
        scale = 1.0 / math.sqrt(q.shape[-1])
        dv = xp.matmul(xp.swapaxes(dropped, -1, -2), dout, out=dv)      # [..., T_k, T_q] @ [..., T_q, d_v]
        ddropped = dout @ xp.swapaxes(v, -1, -2)                        # [..., T_q, d_v] @ [..., d_v, T_k]
        dweights = self.dropout.backward(ddropped) if self.dropout is not None else ddropped
        dscores = dweights                                              # softmax_backward, in place in dW,
        dscores -= row_sum(dweights, weights)                           #   a new array of this layer's:
        dscores *= weights                                              #   dS = W ⊙ (dW − Σ_j dW_j W_j)
        dscores *= scale                                                # the 1/√d_k of S = Q Kᵀ/√d_k
        dq = xp.matmul(dscores, k, out=dq)                              # [..., T_q, T_k] @ [..., T_k, d_k]
        dk = xp.matmul(xp.swapaxes(dscores, -1, -2), q, out=dk)         # [..., T_k, T_q] @ [..., T_q, d_k]
        return dq, dk, dv


class MultiHeadAttention(Module):
    """n_head attention heads side by side, each on its own d_k = d_model / n_head slice.

        Q = x W_q    K = c W_k    V = c W_v           (c = x for self-attention, the context for cross)
        head_h = softmax(Q_h K_hᵀ / √d_k) V_h         (Q_h: columns h·d_k .. (h+1)·d_k of Q)
        y = concat(head_1 .. head_H) W_o

    Splitting into heads is a reshape [B, T, d_model] -> [B, T, n_head, d_k] and a transpose to
    [B, n_head, T, d_k], so all heads run in one batched matmul. Backward goes the same way in reverse:
    W_o, merge -> split, attention, the projections; in self-attention x receives the gradients of
    all three of Q, K, V (it was used three times), in cross-attention the context receives K's and V's.

    ``forward(x)`` is self-attention and ``backward`` returns dx; ``forward(x, context)`` is
    cross-attention and ``backward`` returns (dx, dcontext). In self-attention Q, K and V all come
    from x, so their three products run as one, x [W_q W_k W_v] (``_project_qkv``).

    Three choices of today's decoders (LLaMA, Mistral):
    - ``n_kv_head`` < n_head (grouped-query attention; 1 is multi-query): K and V have only n_kv_head
      heads, each shared by a group of n_head / n_kv_head query heads, so the KV cache is that much
      smaller. Forward repeats each K/V head for its group; backward sums the group's gradients back
      into the one head they came from (``repeat_kv`` and ``sum_kv``).
    - ``rope_theta`` (and Llama 3's ``rope_scaling``): queries and keys are rotated by their positions
      (RotaryEmbedding) after the split into heads, so the scores depend on relative positions; the
      backward rotates dq and dk back.
    - ``window`` (local attention): the mask that comes with x is the band ``causal_mask(T, window=W)``;
      the layer itself needs the window only for its KV cache, which keeps the last W − 1 positions.
    """

    def __init__(self, d_model: int, n_head: int, bias: bool = True, dropout: float = 0.0, seed=None,
                 rng=None, n_kv_head: int | None = None, rope_theta: float | None = None,
                 window: int | None = None, rope_scaling: dict | None = None):
        if d_model % n_head != 0:
            divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
            raise ValueError(f"n_head={n_head} does not divide d_model={d_model}: each head needs "
                             f"d_model / n_head features. Choose n_head from {divisors[:12]}.")
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_kv_head < 1 or n_head % n_kv_head:
            raise ValueError(f"n_kv_head={n_kv_head} must divide n_head={n_head}: each key/value head serves "
                             "an equal group of query heads (1 is multi-query attention).")
        self.d_model, self.n_head, self.d_k = d_model, n_head, d_model // n_head
        self.n_kv_head, self.groups = n_kv_head, n_head // n_kv_head
        kv_dim = n_kv_head * self.d_k
        self.q_proj = Linear(d_model, d_model, bias=bias, rng=rng)
        self.k_proj = Linear(d_model, kv_dim, bias=bias, rng=rng)
        self.v_proj = Linear(d_model, kv_dim, bias=bias, rng=rng)
        self.attention = ScaledDotProductAttention(dropout=dropout, seed=seed)
        self.out_proj = Linear(d_model, d_model, bias=bias, rng=rng)
        self.rope = RotaryEmbedding(self.d_k, rope_theta, rope_scaling) if rope_theta is not None else None
        self.window = window  # local attention: what the KV cache keeps (the mask itself comes with x)
        self.cross = False  # whether the last forward was cross-attention (backward returns two grads)
        self.fuse_qkv = True  # self-attention: one product for Q, K and V (see _project_qkv)
        self.fused = False    # whether the last forward took that path (its backward must too)

    def split_heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_head, self.d_k).transpose(0, 2, 1, 3)     # -> [B, n_head, T, d_k]

    def merge_heads(self, x):
        B, _, T, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, self.d_model)              # -> [B, T, d_model]

    def _split_kv(self, x):
        """split_heads for K or V, which have n_kv_head heads: [B, T, n_kv·d_k] -> [B, n_kv, T, d_k]."""
        B, T, _ = x.shape
        return x.reshape(B, T, self.n_kv_head, self.d_k).transpose(0, 2, 1, 3)

    def _merge_kv(self, x):
        """merge_heads for the gradient of K or V: [B, n_kv, T, d_k] -> [B, T, n_kv·d_k]."""
        B, _, T, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(B, T, self.n_kv_head * self.d_k)

    def repeat_kv(self, kv):
        """[B, n_kv, T, d_k] -> [B, n_head, T, d_k]: K/V head j serves query heads j·g .. j·g + g − 1."""
        return kv if self.groups == 1 else xp.repeat(kv, self.groups, axis=1)

    def sum_kv(self, grad):
        """The backward of repeat_kv: each K/V head receives the sum of its group's gradients."""
        if self.groups == 1:
            return grad
        B, _, T, d_k = grad.shape
        return grad.reshape(B, self.n_kv_head, self.groups, T, d_k).sum(axis=2)

    @property
    def weights(self):
        """The last forward's attention weights [B, n_head, T_q, T_k] (None after a blockwise forward)."""
        return self.attention.weights

    def forward(self, x, context=None, mask=None, cache=None):
        """Self-attention ``forward(x, mask=...)`` or cross-attention ``forward(x, context, mask=...)``.

        ``cache`` (a dict, generation only, no backward): causal self-attention for new positions x that
        also attends to the keys and values of earlier positions kept in ``cache``, which it extends.
        """
        if cache is not None:
            return self._forward_cached(x, cache)
        check_last_dim(x, self.d_model, "MultiHeadAttention", "d_model")
        if x.ndim != 3:
            raise ValueError(f"MultiHeadAttention expects x of shape [B, T, d_model], got {tuple(x.shape)}.")
        check_input_dtype(x, self.out_proj.weight.data, "MultiHeadAttention")
        self.cross = context is not None
        if self.cross:
            check_last_dim(context, self.d_model, "MultiHeadAttention (context)", "d_model")
            if context.ndim != 3 or context.shape[0] != x.shape[0]:
                raise ValueError(f"Cross-attention context must be [B, T_k, d_model] with the same B as x "
                                 f"{tuple(x.shape)}, got {tuple(context.shape)}.")
            check_input_dtype(context, self.out_proj.weight.data, "MultiHeadAttention", "context")
        c = context if self.cross else x
        if mask is not None:
            self._check_mask(mask, x.shape[0], x.shape[1], c.shape[1])
        if self.cross and self.rope is not None:
            raise ValueError("Rotary positions (rope_theta) are for self-attention: a query and a key from "
                             "two different sequences have no distance between them.")
        self.fused = self.fuse_qkv and not self.cross and self.n_kv_head == self.n_head
        if not self.fused:
            q = self.split_heads(self.q_proj(x))                                # [B, h, T_q, d_k]
            k = self._split_kv(self.k_proj(c))                                  # [B, h_kv, T_k, d_k]
            v = self._split_kv(self.v_proj(c))                                  # [B, h_kv, T_k, d_k]
        else:
            q, k, v = self._project_qkv(x)                                      # the same, one product
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)                                   # turned by their positions
        heads = self.attention(q, self.repeat_kv(k), self.repeat_kv(v), mask)   # [B, h, T_q, d_k]
        return self.out_proj(self.merge_heads(heads))                           # [B, T_q, d_model]

    def _check_mask(self, mask, B: int, T_q: int, T_k: int) -> None:
        """A boolean [B, n_head, T_q, T_k] mask (any axis may be 1) or [T_q, T_k]; see the module's docstring."""
        full = (B, self.n_head, T_q, T_k)
        shapes = (f"MultiHeadAttention takes a mask of shape [B, n_head, T_q, T_k] = {list(full)}, where any "
                  f"axis may be 1, or [T_q, T_k] = [{T_q}, {T_k}]: one mask shared by every sequence.")
        check_mask(mask, full, "MultiHeadAttention", shapes)                   # boolean, broadcasts
        if mask.ndim == 2 and mask.shape[0] == B == T_q > 1 and not is_causal_mask(mask):
            raise ValueError(f"MultiHeadAttention: a mask of shape {tuple(mask.shape)} is ambiguous when "
                             f"B = T_q = {B}: it could be [T_q, T_k], the same for every sequence, or a "
                             "[B, T_k] padding mask, one row per sequence, which NumPy would broadcast as "
                             "[T_q, T_k]. Give it four axes: mask[None, None] is [1, 1, T_q, T_k]; "
                             "padding_mask(is_pad) is [B, 1, 1, T_k]. " + shapes)
        if mask.ndim in (1, 3):
            fix = ("a [B, T_q, T_k] mask needs the head axis, mask[:, None] ([B, 1, T_q, T_k])" if mask.ndim == 3
                   else "a [T_k] mask shared by every sequence and query is mask[None, None, None]")
            raise ValueError(f"MultiHeadAttention: a mask of shape {tuple(mask.shape)} has {mask.ndim} axes, "
                             f"which NumPy would align from the right, rarely as meant: {fix}. " + shapes)

    def _project_qkv(self, x):
        """Self-attention's Q, K, V from one [N, d] @ [d, 3d] product instead of three [N, d] @ [d, d].

        W_q, W_k and W_v are put side by side, [d, 3d], so that one matrix product (and one in each
        direction of the backward) does the work of three: BLAS runs one larger product faster than
        three small ones. The numbers are those of q_proj(x), k_proj(x), v_proj(x) (up to the order
        of float additions); tests/test_attention.py holds the two paths equal, and ``fuse_qkv =
        False`` switches back to the three separate projections. The parameters stay separate.
        """
        B, T, d = x.shape
        projections = (self.q_proj, self.k_proj, self.v_proj)
        w = xp.concatenate([p.weight.data for p in projections], axis=1)       # [d, 3d]
        qkv = x.reshape(-1, d) @ w                                              # [B·T, 3d]
        if self.q_proj.bias is not None:
            qkv += xp.concatenate([p.bias.data for p in projections])          # [3d]
        self._qkv_x, self._qkv_w = x, w                                         # for the backward
        return self._heads_of(qkv.reshape(B, T, 3, self.n_head, self.d_k))     # q, k, v, split into heads

    def _heads_of(self, qkv):
        """[B, T, 3, h, d_k] -> its three parts as views [B, h, T, d_k]: Q, K, V (or their gradients)."""
        return tuple(qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))

    def _project_qkv_backward(self, dq, dk, dv):
        """Backward of ``_project_qkv`` from dq, dk, dv [B, h, T, d_k], stacked in the product's layout."""
        return self._project_qkv_backward_from(xp.stack([g.transpose(0, 2, 1, 3) for g in (dq, dk, dv)], axis=2))

    def _project_qkv_backward_from(self, dqkv):
        """Backward of ``_project_qkv`` from dqkv [B, T, 3, h, d_k], the gradients of Q, K and V in the
        layout of the product's output: dW = xᵀ d[QKV], split three ways; dx = d[QKV] Wᵀ (one product)."""
        x, w = self._qkv_x, self._qkv_w
        B, T, d = x.shape
        dqkv = dqkv.reshape(B * T, 3 * d)                                       # [B·T, 3d], a view
        dw = x.reshape(-1, d).T @ dqkv                                          # [d, 3d]
        db = dqkv.sum(axis=0) if self.q_proj.bias is not None else None         # [3d]
        for i, projection in enumerate((self.q_proj, self.k_proj, self.v_proj)):
            columns = slice(i * d, (i + 1) * d)                                 # this projection's third
            projection.weight.grad += dw[:, columns]
            if db is not None:
                projection.bias.grad += db[columns]
        return (dqkv @ w.T).reshape(B, T, d)                                    # [B, T, d]

    def _forward_cached(self, x, cache):
        # Keys and values of earlier positions do not change when new tokens arrive (causal attention),
        # so only the new positions are projected; their keys and values are appended to the cache.
        # The cache holds n_kv_head heads (grouped-query attention's saving), keys already rotated (RoPE),
        # and with a window only the last window − 1 positions, all that the next query can see.
        q = self.split_heads(self.q_proj(x))                                    # [B, h, T_new, d_k]
        k = self._split_kv(self.k_proj(x))                                      # [B, h_kv, T_new, d_k]
        v = self._split_kv(self.v_proj(x))                                      # [B, h_kv, T_new, d_k]
        position = cache_position(cache)                                        # of the first new token
        if self.rope is not None:
            q, k = self.rope(q, offset=position), self.rope(k, offset=position)
        past = 0 if cache.get("k") is None else cache["k"].shape[2]
        if past:
            k = xp.concatenate([cache["k"], k], axis=2)                         # [B, h_kv, past+T_new, d_k]
            v = xp.concatenate([cache["v"], v], axis=2)
        drop = 0 if self.window is None else max(0, k.shape[2] - (self.window - 1))   # the oldest, unseen now
        cache["k"], cache["v"] = k[:, :, drop:], v[:, :, drop:]
        cache["position"] = position + x.shape[1]
        mask = causal_mask(x.shape[1], past, self.window)                       # [T_new, past + T_new]
        heads = self.attention(q, self.repeat_kv(k), self.repeat_kv(v), mask)   # [B, h, T_new, d_k]
        return self.out_proj(self.merge_heads(heads))                           # [B, T_new, d_model]

    def backward(self, dy):
        dheads = self.split_heads(self.out_proj.backward(dy))                   # [B, h, T_q, d_k]
        if self.fused and self.rope is None and self.attention.blockwise is not None:
            # Long sequences, scores in tiles: dQ, dK, dV go straight into the fused product's layout.
            dqkv = xp.zeros((*self._qkv_x.shape[:2], 3, self.n_head, self.d_k), dtype=dheads.dtype)
            self.attention.backward(dheads, out=self._heads_of(dqkv))
            return self._project_qkv_backward_from(dqkv)                        # [B, T, d_model]
        dq, dk, dv = self.attention.backward(dheads)                            # each [B, h, T, d_k]
        dk, dv = self.sum_kv(dk), self.sum_kv(dv)                               # [B, h_kv, T, d_k]
        if self.rope is not None:
            dq, dk = self.rope.backward(dq), self.rope.backward(dk)             # turned back
        if self.fused:
            return self._project_qkv_backward(dq, dk, dv)                       # [B, T, d_model]
        dx = self.q_proj.backward(self.merge_heads(dq))                         # [B, T_q, d_model]
        dc = (self.k_proj.backward(self._merge_kv(dk))
              + self.v_proj.backward(self._merge_kv(dv)))                       # [B, T_k, d_model]
        return (dx, dc) if self.cross else dx + dc   # self-attention: x fed Q, K and V, so dx sums all three


def cache_position(cache: dict) -> int:
    """The position of the next token a KV cache will see: how many tokens went through it so far.

    The number is kept in the cache, since a local-attention cache drops its oldest keys; a cache that
    does not keep it (one written by hand, lesson 17's exercise) holds every key, so its length is it."""
    if "position" in cache:
        return cache["position"]
    return 0 if cache.get("k") is None else cache["k"].shape[2]
