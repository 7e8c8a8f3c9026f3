"""Attention one block of keys at a time, the idea of FlashAttention: softmax(Q Kᵀ/√d_k) V without ever
holding the [T_q, T_k] scores (lesson 21 derives it).

Forward, an online softmax. For each block of keys K_b, V_b, with a running row maximum m, a running sum
of exponentials l and a running weighted sum of values acc (all per query row):

    S_b = Q K_bᵀ/√d_k      m' = max(m, rowmax(S_b))      P_b = exp(S_b − m')
    l = l·exp(m − m') + rowsum(P_b)      acc = acc·exp(m − m') + P_b V_b      m = m'
    out = acc / l                        lse = m + log l   (the log of each row's softmax denominator)

Rescaling by exp(m − m') keeps every earlier term as if it had been taken with the new maximum, so the
result is softmax(S) V exactly, up to the order of the additions.

Backward (FlashAttention-2's): each block's weights are recomputed from the saved lse, W_b = exp(S_b − lse),
and with D = rowsum(dout ⊙ out) (which equals rowsum(dW ⊙ W), the term softmax's backward needs):

    dV_b = W_bᵀ dout      dW_b = dout V_bᵀ      dS_b = W_b ⊙ (dW_b − D) / √d_k
    dQ += dS_b K_b        dK_b = dS_bᵀ Q

The queries are taken in blocks too, as FlashAttention takes them: memory is then a few [..., block,
block] tiles instead of several [..., T_q, T_k] arrays, and the products are the same. A query row that
no key of a tile may see is skipped for that tile when the mask is a 2-D [T_q, T_k] one (a causal mask
skips the tiles above its diagonal, as lesson 21 shows). A row with no allowed key at all gets zeros,
as ``masked_softmax`` gives it.

ScaledDotProductAttention takes this path by itself for long sequences (``blockwise_from``);
tests/test_blockwise_attention.py holds it equal to the plain one to 1e-12 in float64.
"""
from __future__ import annotations

import math

from ..backend import xp
from .reductions import row_max, row_sum


def _blocks(mask, T_q: int, T_k: int, block: int):
    """(key slice, query slice) for each tile of at most `block` queries by `block` keys: the queries of
    the tile that may see some key of it (all of them unless the mask is a [T_q, T_k] one; those rows are
    read from the mask). Tiling the queries as well as the keys keeps each tile's scores small."""
    for i0 in range(0, T_q, block):
        queries = slice(i0, min(i0 + block, T_q))
        for j0 in range(0, T_k, block):
            keys = slice(j0, min(j0 + block, T_k))
            rows = queries
            if mask is not None and tuple(mask.shape) == (T_q, T_k):
                seen = xp.flatnonzero(mask[queries, keys].any(axis=1))
                if seen.size == 0:
                    continue                                            # no query of the tile sees these keys
                rows = slice(i0 + int(seen[0]), i0 + int(seen[-1]) + 1)
            yield keys, rows


def _block_mask(mask, rows, keys):
    """The part of mask (broadcastable to [..., T_q, T_k]) that covers these query rows and keys; None
    where it allows every one of them (below a causal mask's diagonal: every tile but the diagonal's),
    as such a tile needs no masking."""
    if mask is None:
        return None
    if mask.ndim >= 2 and mask.shape[-2] != 1:                          # a query axis to cut
        mask = mask[..., rows, :]
    mask = mask[..., keys] if mask.shape[-1] != 1 else mask
    return None if mask.all() else mask


def _transposed(block, scale=1.0):
    """scale·blockᵀ for a block [..., n, d] of keys or values: [..., d, n], in an array of its own (the
    tile's K_bᵀ/√d_k or V_bᵀ).

    A product A @ Kᵀ with Kᵀ a transposed view of K took 500 µs where the same product with Kᵀ copied
    out took 180, and the copy 70 ([6, 4, 128, 32] tiles, OpenBLAS, one thread); the copy also scales
    the keys, in the same pass."""
    block_t = xp.swapaxes(block, -1, -2)
    return xp.multiply(block_t, scale, out=xp.empty(block_t.shape, dtype=block_t.dtype))


def _output_array(lead, T_q: int, d_v: int, dtype):
    """Zeros [*lead, T_q, d_v] for the output. With two leading axes [B, h] (multi-head attention's batch
    and heads) they are laid out [B, T_q, h, d_v] in memory: merging the heads afterwards (a transpose
    and a reshape to [B, T_q, h·d_v]) is then a view of this array, not a copy of it."""
    if len(lead) == 2:
        return xp.zeros((lead[0], T_q, lead[1], d_v), dtype=dtype).transpose(0, 2, 1, 3)
    return xp.zeros((*lead, T_q, d_v), dtype=dtype)


def blockwise_attention(q, k, v, mask=None, block: int = 128):
    """softmax(Q Kᵀ/√d_k) V over tiles of `block` queries × `block` keys -> (out [..., T_q, d_v], lse
    [..., T_q]).

    q [..., T_q, d_k], k [..., T_k, d_k], v [..., T_k, d_v], with the same leading axes [...]; mask:
    boolean, True where query i may attend to key j, broadcastable to [..., T_q, T_k]. lse is what
    ``blockwise_attention_backward`` needs."""
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise ValueError(f"blockwise attention needs Q, K, V with the same leading axes; got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1])
    T_q, T_k = q.shape[-2], k.shape[-2]
    lead = q.shape[:-2]
    m = xp.full((*lead, T_q), -xp.inf, dtype=q.dtype)                    # running row maximum
    l = xp.zeros((*lead, T_q), dtype=q.dtype)                           # running sum of exponentials
    acc = _output_array(lead, T_q, v.shape[-1], q.dtype)               # running weighted sum of values
    for keys, rows in _blocks(mask, T_q, T_k, block):
        s = q[..., rows, :] @ _transposed(k[..., keys, :], scale)       # [..., rows, block]: S_b
        allowed = _block_mask(mask, rows, keys)
        if allowed is not None:
            xp.copyto(s, -xp.inf, where=~allowed)                       # masked -> exp(-inf) = 0
        m_new = xp.maximum(m[..., rows], row_max(s)[..., 0])            # [..., rows]
        m_safe = xp.where(xp.isfinite(m_new), m_new, 0.0)               # no allowed key yet: avoid -inf - -inf
        s -= m_safe[..., None]
        p = xp.exp(s, out=s)                                            # [..., rows, block]
        rescale = xp.exp(m[..., rows] - m_safe)                         # earlier terms, to the new maximum
        l[..., rows] = l[..., rows] * rescale + row_sum(p)[..., 0]
        acc[..., rows, :] = acc[..., rows, :] * rescale[..., None] + p @ v[..., keys, :]
        m[..., rows] = m_new
    seen = l > 0                                                        # rows with at least one allowed key
    out = acc                                                           # acc becomes the output, in place:
    out /= xp.where(seen, l, 1.0)[..., None]                            #   a row with none: 0, not NaN
    lse = xp.where(seen, m + xp.log(xp.where(seen, l, 1.0)), xp.inf)    # no allowed key: weights exp(−∞) = 0
    return out, lse


def blockwise_attention_backward(q, k, v, mask, out, lse, dout, block: int = 128, grads=None):
    """The gradients (dq, dk, dv) of ``blockwise_attention``, recomputing each block's weights from lse;
    summed into ``grads``, three arrays of zeros shaped as q, k, v, if given."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    T_q, T_k = q.shape[-2], k.shape[-2]
    D = row_sum(dout, out)                                              # [..., T_q, 1] = rowsum(dW ⊙ W)
    dq, dk, dv = grads if grads is not None else (xp.zeros_like(q), xp.zeros_like(k), xp.zeros_like(v))
    for keys, rows in _blocks(mask, T_q, T_k, block):
        q_b, k_b, dout_b = q[..., rows, :], k[..., keys, :], dout[..., rows, :]
        s = q_b @ _transposed(k_b, scale)                               # [..., rows, block], as in forward
        allowed = _block_mask(mask, rows, keys)
        if allowed is not None:
            xp.copyto(s, -xp.inf, where=~allowed)
        s -= lse[..., rows, None]
        w = xp.exp(s, out=s)                                            # the block's attention weights
        dv[..., keys, :] += xp.swapaxes(w, -1, -2) @ dout_b
        ds = dout_b @ _transposed(v[..., keys, :])                      # dW_b = dout V_bᵀ
        ds -= D[..., rows, :]
        ds *= w                                                         # W ⊙ (dW − D)
        ds *= scale
        dq[..., rows, :] += ds @ k_b
        dk[..., keys, :] += xp.swapaxes(ds, -1, -2) @ q_b
    return dq, dk, dv
