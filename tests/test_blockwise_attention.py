"""Blockwise attention (layers/blockwise_attention.py): the same outputs and gradients as the plain
attention, to 1e-12 in float64, without the [T_q, T_k] weights; and ScaledDotProductAttention takes it
by itself for long sequences."""
import tracemalloc

import numpy
import pytest

from helpers import assert_gradients_check
from tinytransformer import (MultiHeadAttention, ScaledDotProductAttention, backend, causal_mask,
                             padding_mask)
from tinytransformer.layers.blockwise_attention import blockwise_attention
from tinytransformer.models import GPT, GPTConfig


def plain_and_blockwise(block):
    """Two layers: one that always stays plain, one that always goes block by block."""
    plain, blockwise = ScaledDotProductAttention(), ScaledDotProductAttention()
    plain.blockwise_from = None
    blockwise.blockwise_from, blockwise.block = 1, block
    return plain, blockwise


def masks(kind, T_q, T_k, rng):
    if kind == "causal":
        return causal_mask(T_q, past=T_k - T_q)
    if kind == "window":
        return causal_mask(T_q, past=T_k - T_q, window=6)
    if kind == "padding, one sequence all padding":
        is_pad = numpy.zeros((2, T_k), dtype=bool)
        is_pad[0, T_k - 5:] = True
        is_pad[1] = True                                  # every query of sequence 1 sees nothing
        return padding_mask(backend.asarray(is_pad))
    if kind == "one row for every query":               # [1, T_k]: broadcast over the queries
        return backend.asarray(numpy.arange(T_k)[None, :] % 3 != 1)
    if kind == "keys only":                             # [T_k]
        return backend.asarray(numpy.arange(T_k) % 4 != 2)
    if kind == "random":
        return backend.asarray(rng.random((2, 3, T_q, T_k)) < 0.3)   # some rows empty, some blocks empty
    return None


@pytest.mark.parametrize("kind, T_q, T_k, block", [
    (None, 37, 37, 5), ("causal", 37, 37, 5), ("causal", 37, 37, 64), ("window", 40, 40, 7),
    ("causal", 7, 30, 4),                                 # new queries after 23 cached keys (a KV cache)
    (None, 9, 30, 8),                                     # cross-attention: more keys than queries
    ("padding, one sequence all padding", 37, 37, 5), ("random", 20, 33, 6),
    ("one row for every query", 20, 20, 6), ("keys only", 20, 25, 6)])
def test_blockwise_equals_plain_forward_and_backward(kind, T_q, T_k, block):
    rng = numpy.random.default_rng(0)
    with backend.using("float64"):
        q = backend.randn((2, 3, T_q, 8), rng=rng)
        k, v = backend.randn((2, 3, T_k, 8), rng=rng), backend.randn((2, 3, T_k, 5), rng=rng)
        mask = masks(kind, T_q, T_k, rng)
        plain, blockwise = plain_and_blockwise(block)
        out, out_b = plain(q, k, v, mask), blockwise(q, k, v, mask)
        assert blockwise.blockwise is not None and blockwise.weights is None and plain.blockwise is None
        dout = backend.randn(out.shape, rng=rng)
        grads, grads_b = plain.backward(dout), blockwise.backward(dout)
    assert numpy.abs(out_b - out).max() < 1e-12
    for name, g, g_b in zip("qkv", grads, grads_b):
        assert g_b.shape == g.shape and numpy.abs(g_b - g).max() < 1e-12, name
    if kind == "padding, one sequence all padding":     # nothing to attend to: zeros, as masked_softmax gives
        assert (out_b[1] == 0).all() and all((g[1] == 0).all() for g in grads_b)


@pytest.mark.parametrize("kind", [None, "causal"])
def test_blockwise_gradients_against_finite_differences(kind):
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        q, k, v = (backend.randn((2, 2, 9, 3), rng=rng) for _ in range(3))
        _, blockwise = plain_and_blockwise(block=4)        # three blocks, the last one short
        assert_gradients_check(blockwise, {"q": q, "k": k, "v": v}, {"mask": masks(kind, 9, 9, rng)},
                               name="ScaledDotProductAttention (blockwise)")


def test_the_layer_goes_block_by_block_from_blockwise_from_and_not_while_dropping():
    rng = numpy.random.default_rng(2)
    T = ScaledDotProductAttention.blockwise_from
    for length, expected in ((T - 1, False), (T, True)):
        q = k = v = backend.randn((1, 1, length, 4), rng=rng)
        layer = ScaledDotProductAttention()
        layer(q, k, v, causal_mask(length))
        assert (layer.blockwise is not None) == expected and (layer.weights is None) == expected
    dropping = ScaledDotProductAttention(dropout=0.1, seed=0)   # dropout acts on the weights: plain path
    dropping(q, k, v, causal_mask(T))
    assert dropping.blockwise is None and dropping.weights is not None
    dropping.dropout.training = False                          # in evaluation there is nothing to drop
    dropping(q, k, v, causal_mask(T))
    assert dropping.blockwise is not None


def test_blockwise_memory_grows_with_t_times_block_not_t_squared():
    """tracemalloc's peak over a forward and backward, in bytes: the plain layer holds [T, T] arrays, the
    blockwise one less than a few [T, block] ones (an 8 MiB [T, T] float64 array at T = 1024); the test
    below bounds it more tightly."""
    rng = numpy.random.default_rng(3)
    peaks = {}
    with backend.using("float64"):
        for T in (512, 1024):
            q, k, v = (backend.randn((1, 1, T, 16), rng=rng) for _ in range(3))
            dout = backend.randn((1, 1, T, 16), rng=rng)
            for name, layer in zip(("plain", "blockwise"), plain_and_blockwise(block=64)):
                tracemalloc.start()
                layer(q, k, v, causal_mask(T))
                layer.backward(dout)
                peaks[name, T] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
    assert peaks["plain", 1024] > 2 * T * T * 8               # at least two [T, T] arrays
    assert peaks["blockwise", 1024] < 8 * T * 64 * 8           # under a few [T, block] arrays
    assert 3.5 < peaks["plain", 1024] / peaks["plain", 512] < 4.5
    assert 1.5 < peaks["blockwise", 1024] / peaks["blockwise", 512] < 2.5


def test_blockwise_tiles_the_queries_too():
    """Besides its [T, d_k]-sized arrays (out, lse, dq, dk, dv, ...), a forward and backward hold only
    [block, block] tiles: with queries in blocks of `block` as well as keys, no [T, block] array is made.
    With blocks of keys only, the peak was about 16 [T, d_k] arrays (d_k = 16 = block / 4); now about 6."""
    rng = numpy.random.default_rng(4)
    T, d_k, block = 1024, 16, 64
    with backend.using("float64"):
        q, k, v, dout = (backend.randn((1, 1, T, d_k), rng=rng) for _ in range(4))
        mask = causal_mask(T)                                       # made before the tracing: 1 MiB of its own
        layer = plain_and_blockwise(block)[1]
        tracemalloc.start()
        layer(q, k, v, mask)
        layer.backward(dout)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 8 * T * d_k * 8, f"peak {peak / (T * d_k * 8):.1f} [T, d_k] arrays"


def test_merging_the_heads_after_blockwise_attention_copies_nothing():
    """The blockwise output [B, h, T, d_k] is laid out [B, T, h, d_k] in memory, so that multi-head
    attention's merge of the heads is a view: its output projection keeps the very memory that attention
    keeps for its backward, not a second copy of it."""
    rng = numpy.random.default_rng(5)
    with backend.using("float64"):
        mha = MultiHeadAttention(16, 4, rng=rng)
        mha.attention.blockwise_from = 1
        mha(backend.randn((2, 8, 16), rng=rng), mask=causal_mask(8))
        kept_out = mha.attention.blockwise[1]                       # (mask, out, lse)
        assert kept_out.shape == (2, 4, 8, 4)
        assert numpy.shares_memory(mha.out_proj.x, kept_out)


def test_a_long_context_gpt_gets_the_same_loss_and_gradients_either_way():
    config = GPTConfig(vocab_size=11, block_size=300, n_layer=2, n_head=2, n_embd=16, dropout=0.0, seed=0)
    rng = numpy.random.default_rng(4)
    idx = backend.asarray(rng.integers(0, 11, size=(2, 300)))
    targets = backend.asarray(rng.integers(0, 11, size=(2, 300)))
    results = []
    with backend.using("float64"):
        for blockwise_from in (None, 256):
            model = GPT(config)
            for block in model.blocks:
                block.self_attn.sublayer.attention.blockwise_from = blockwise_from
            _, loss = model(idx, targets)
            model.backward()
            results.append((float(loss), {name: p.grad.copy() for name, p in model.named_parameters()}))
            assert (model.blocks[0].self_attn.sublayer.attention.blockwise is not None) == (blockwise_from == 256)
    (loss_plain, grads_plain), (loss_blockwise, grads_blockwise) = results
    assert abs(loss_plain - loss_blockwise) < 1e-12
    for name, grad in grads_plain.items():
        assert numpy.abs(grads_blockwise[name] - grad).max() < 1e-12, name


def test_blockwise_attention_runs_on_the_standin_as_on_numpy():
    """The CuPy stand-in enforces CuPy's rules (no implicit host arrays): the blockwise path obeys them."""
    rng = numpy.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 20, 4)) for _ in range(3))
    with backend.using("float64", backend="numpy"):
        expected, _ = blockwise_attention(q, k, v, causal_mask(20), block=6)
    with backend.using("float64", backend="standin"):
        got, _ = blockwise_attention(*(backend.asarray(a) for a in (q, k, v)), causal_mask(20), block=6)
    assert numpy.abs(backend.to_numpy(got) - expected).max() < 1e-12
