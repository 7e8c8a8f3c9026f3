"""Attention: masked softmax, scaled dot-product attention, and multi-head attention.

Masks are boolean, True where attention is allowed (the convention of PyTorch's
F.scaled_dot_product_attention; nn.MultiheadAttention's attn_mask is the opposite).
"""
import math

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     set_torch_param, to_torch)
from tinytransformer import (Module, MultiHeadAttention, ScaledDotProductAttention, backend, causal_mask,
                             masked_softmax, padding_mask)
from tinytransformer.layers.attention import masked_softmax_inplace

B, T, D_K = 2, 4, 3  # small enough for finite differences: every entry costs two forwards


def random_mask(rng, shape, density=0.6, fully_masked_row=False):
    """Random boolean mask; unless asked for one, every query row keeps at least one key (column 0)."""
    mask = rng.random(shape) < density
    mask[..., 0] = True
    if fully_masked_row:
        mask[0, 1, :] = False  # query 1 of the first sequence may look at nothing
    return mask


def make_mask(kind, rng):
    """A [.., T, T] mask for the queries and keys of the SDPA tests below."""
    if kind is None:
        return None
    if kind == "causal":
        return causal_mask(T)                                  # [T, T], broadcast over the batch
    if kind == "padding":
        is_pad = numpy.array([[False, False, True, True], [False, False, False, False]])
        return ~is_pad[:, None, :]                             # [B, 1, T_k]: the same for every query
    if kind == "random":
        return random_mask(rng, (B, T, T))
    if kind == "fully masked row":
        return random_mask(rng, (B, T, T), fully_masked_row=True)
    raise ValueError(kind)


# --- masked softmax --------------------------------------------------------------------------------------

def test_causal_and_padding_masks():
    numpy.testing.assert_array_equal(causal_mask(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    # two new queries after 3 cached positions: query t (position 3 + t) sees keys 0 .. 3 + t
    numpy.testing.assert_array_equal(causal_mask(2, past=3), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    mask = padding_mask(numpy.array([[False, True], [False, False]]))
    assert mask.shape == (2, 1, 1, 2)
    numpy.testing.assert_array_equal(mask[:, 0, 0], [[True, False], [True, True]])


@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6)),
       scale=st.sampled_from([1.0, 30.0, 1e4]), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_softmax_rows_sum_to_one_over_unmasked_keys(shape, scale, density, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        scores = backend.randn(shape, std=scale, rng=rng)   # scale 1e4: exp would overflow without the shift
        mask = rng.random(shape) < density
        weights = masked_softmax(scores, mask)
    assert not numpy.isnan(weights).any()
    assert (weights[~mask] == 0).all()                       # masked keys get exactly nothing
    row_sums = weights.sum(axis=-1)
    has_key = mask.any(axis=-1)
    numpy.testing.assert_allclose(row_sums[has_key], 1.0, rtol=0, atol=1e-12)
    assert (weights[~has_key] == 0).all()                    # a fully masked row is all zeros, not NaN


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6)),
       dtype=st.sampled_from(["float32", "float64"]), masked=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_in_place_softmax_equals_masked_softmax(shape, dtype, masked, seed):
    """The attention layer uses the in-place version for speed; it must compute the same thing."""
    rng = numpy.random.default_rng(seed)
    with backend.using(dtype):
        scores = backend.randn(shape, std=5.0, rng=rng)
        mask = rng.random(shape) < 0.5 if masked else None        # fully masked rows included
        expected = masked_softmax(scores, mask)
        result = masked_softmax_inplace(scores.copy(), None if mask is None else ~mask)
    assert result.dtype == expected.dtype
    numpy.testing.assert_allclose(result, expected, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-30)


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 4)),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_sdpa_backward_in_place_equals_softmax_backward_bit_for_bit(shape, dtype, seed):
    """The attention layer's backward computes softmax's backward in place; softmax_backward is the plain
    formula. The same operations in the same order, so the gradients agree bit for bit."""
    from tinytransformer.layers.attention import softmax_backward
    B, T, T_k, d_k = shape
    rng = numpy.random.default_rng(seed)
    with backend.using(dtype):
        q, k, v = (backend.randn(size, rng=rng) for size in ((B, T, d_k), (B, T_k, d_k), (B, T_k, d_k)))
        dout = backend.randn((B, T, d_k), rng=rng)
        attention = ScaledDotProductAttention()
        attention(q, k, v)
        dq, dk, dv = attention.backward(dout)
        w = attention.weights
        dscores = softmax_backward(w, dout @ numpy.swapaxes(v, -1, -2)) * (1.0 / math.sqrt(d_k))
        numpy.testing.assert_array_equal(dv, numpy.swapaxes(w, -1, -2) @ dout)
        numpy.testing.assert_array_equal(dq, dscores @ k)
        numpy.testing.assert_array_equal(dk, numpy.swapaxes(dscores, -1, -2) @ q)


def test_softmax_without_mask_survives_huge_scores():
    with backend.using("float64"):
        weights = masked_softmax(numpy.array([[1000.0, 1001.0, -1000.0]]))
    e = numpy.exp([-1.0, 0.0])
    numpy.testing.assert_allclose(weights, [[e[0] / e.sum(), e[1] / e.sum(), 0.0]], atol=1e-15)


# --- scaled dot-product attention -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", [None, "causal", "padding", "random", "fully masked row"])
def test_sdpa_gradients(kind):
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        q, k = backend.randn((B, T, D_K), rng=rng), backend.randn((B, T, D_K), rng=rng)
        v = backend.randn((B, T, 2), rng=rng)                                        # d_v ≠ d_k
        errors = assert_gradients_check(ScaledDotProductAttention(), {"q": q, "k": k, "v": v},
                                        {"mask": make_mask(kind, rng)}, name="ScaledDotProductAttention")
    assert set(errors) == {"q", "k", "v"}


def test_sdpa_gradients_with_heads_and_more_keys_than_queries():
    rng = numpy.random.default_rng(2)
    with backend.using("float64"):
        q = backend.randn((2, 2, 3, D_K), rng=rng)                                    # [B, heads, T_q, d_k]
        k, v = backend.randn((2, 2, 5, D_K), rng=rng), backend.randn((2, 2, 5, 4), rng=rng)  # T_k = 5
        assert_gradients_check(ScaledDotProductAttention(), {"q": q, "k": k, "v": v},
                               name="ScaledDotProductAttention")


def test_sdpa_fully_masked_row_outputs_zeros_and_passes_no_gradient():
    rng = numpy.random.default_rng(3)
    with backend.using("float64"):
        attention = ScaledDotProductAttention()
        q, k, v = (backend.randn((B, T, D_K), rng=rng) for _ in range(3))
        mask = make_mask("fully masked row", rng)
        out = attention(q, k, v, mask=mask)
        dq, dk, dv = attention.backward(backend.randn(out.shape, rng=rng))
    assert numpy.isfinite(out).all() and numpy.isfinite(dq).all()
    numpy.testing.assert_array_equal(attention.weights[0, 1], 0.0)
    numpy.testing.assert_array_equal(out[0, 1], 0.0)
    numpy.testing.assert_array_equal(dq[0, 1], 0.0)  # the row's output is constant 0, whatever q is
    assert numpy.abs(out[0, 0]).max() > 0            # the other rows are untouched


def test_sdpa_output_is_the_weighted_average_of_values():
    rng = numpy.random.default_rng(4)
    with backend.using("float64"):
        attention = ScaledDotProductAttention()
        q, k, v = (backend.randn((1, T, D_K), rng=rng) for _ in range(3))
        out = attention(q, k, v, mask=causal_mask(T))
    scores = q[0] @ k[0].T / numpy.sqrt(D_K)
    for t in range(T):  # query t sees keys 0..t only
        w = numpy.exp(scores[t, : t + 1] - scores[t, : t + 1].max())
        numpy.testing.assert_allclose(out[0, t], (w / w.sum()) @ v[0, : t + 1], atol=1e-14)


class AttentionWithFixedDropout(Module):
    """Attention whose dropout generator is re-seeded before each forward, so every forward of the
    finite-difference check drops the same weights (a fresh mask each time would make f random)."""

    def __init__(self, p, seed):
        self.attention = ScaledDotProductAttention(dropout=p)
        self.seed = seed

    def forward(self, q, k, v, mask=None):
        self.attention.dropout.rng = backend.DeviceRNG(self.seed)
        return self.attention(q, k, v, mask)

    def backward(self, dout):
        return self.attention.backward(dout)


def test_sdpa_gradients_with_attention_dropout():
    rng = numpy.random.default_rng(5)
    with backend.using("float64"):
        layer = AttentionWithFixedDropout(p=0.3, seed=7)
        q, k, v = (backend.randn((B, T, D_K), rng=rng) for _ in range(3))
        assert_gradients_check(layer, {"q": q, "k": k, "v": v}, {"mask": causal_mask(T)},
                               name="ScaledDotProductAttention")
        dropped = layer.attention.dropped
        assert ((dropped == 0) & (layer.attention.weights > 0)).any()  # some weights really were dropped


@GRADIENT_PROPERTY
@given(batch=st.integers(1, 2), t_q=st.integers(1, 4), t_k=st.integers(1, 4), d_k=st.integers(1, 3),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_sdpa_gradients_with_random_masks(batch, t_q, t_k, d_k, density, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        q = backend.randn((batch, t_q, d_k), rng=rng)
        k, v = backend.randn((batch, t_k, d_k), rng=rng), backend.randn((batch, t_k, 2), rng=rng)
        mask = rng.random((batch, t_q, t_k)) < density  # fully masked rows included
        assert_gradients_check(ScaledDotProductAttention(), {"q": q, "k": k, "v": v}, {"mask": mask},
                               name="ScaledDotProductAttention", seed=seed)


def test_sdpa_float32_stays_float32():
    q, k, v = (backend.randn((B, T, D_K)) for _ in range(3))
    mask = make_mask("fully masked row", numpy.random.default_rng(0))
    assert_stays_float32(ScaledDotProductAttention(), {"q": q, "k": k, "v": v}, {"mask": mask})


def test_sdpa_shapes_that_do_not_fit_are_explained():
    q, k, v = backend.randn((1, 3, 4)), backend.randn((1, 5, 2)), backend.randn((1, 5, 4))
    with pytest.raises(ValueError, match=r"Attention shapes do not fit: Q \(1, 3, 4\), K \(1, 5, 2\)"):
        ScaledDotProductAttention()(q, k, v)


@pytest.mark.parametrize("kind", [None, "causal", "random"])
def test_sdpa_matches_torch(torch, kind):
    F = torch.nn.functional
    rng = numpy.random.default_rng(6)
    with backend.using("float64"):
        attention = ScaledDotProductAttention()
        q, k, v = (backend.randn((B, 2, T, D_K), rng=rng) for _ in range(3))  # [B, heads, T, d_k]
        mask = None if kind is None else causal_mask(T) if kind == "causal" else random_mask(rng, (B, 2, T, T))
        dout = backend.randn((B, 2, T, D_K), rng=rng)
        out = attention(q, k, v, mask=mask)
        dq, dk, dv = attention.backward(dout)

    q_t, k_t, v_t = (to_torch(torch, a) for a in (q, k, v))
    # same convention: True = may attend (no fully masked rows: PyTorch returns NaN for those)
    mask_t = None if mask is None else torch.as_tensor(mask)
    out_t = F.scaled_dot_product_attention(q_t, k_t, v_t, attn_mask=mask_t)
    out_t.backward(to_torch(torch, dout, requires_grad=False))
    assert_matches_torch(out, out_t, "ScaledDotProductAttention", "output")
    for ours, theirs, name in [(dq, q_t.grad, "dq"), (dk, k_t.grad, "dk"), (dv, v_t.grad, "dv")]:
        assert_matches_torch(ours, theirs, "ScaledDotProductAttention", name)


# --- multi-head attention ---------------------------------------------------------------------------------

D_MODEL, N_HEAD = 6, 2  # d_k = 3


def test_mha_self_attention_gradients_with_causal_mask():
    rng = numpy.random.default_rng(7)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x = backend.randn((B, T, D_MODEL), rng=rng)
        errors = assert_gradients_check(layer, {"x": x}, {"mask": causal_mask(T)}, name="MultiHeadAttention")
    assert {"x", "q_proj.weight", "k_proj.bias", "v_proj.weight", "out_proj.bias"} <= set(errors)


def test_mha_self_attention_gradients_with_padding_mask():
    rng = numpy.random.default_rng(8)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x = backend.randn((B, T, D_MODEL), rng=rng)
        is_pad = numpy.array([[False, False, False, True], [False, True, True, True]])
        assert_gradients_check(layer, {"x": x}, {"mask": padding_mask(is_pad)}, name="MultiHeadAttention")


@pytest.mark.parametrize("bias, rope_theta, blockwise", [(True, None, False), (False, None, False),
                                                     (False, 30.0, False), (True, None, True), (False, 30.0, True)])
def test_mha_fused_qkv_projection_equals_three_separate_projections(bias, rope_theta, blockwise):
    """Self-attention's one [d, 3d] product (the default) against q_proj, k_proj, v_proj one by one; its
    backward has attention write dQ, dK, dV straight into one array (with RoPE, they are turned back and
    copied there), on the plain path and the blockwise one (tiles of 2 here)."""
    rng = numpy.random.default_rng(11)
    with backend.using("float64"):
        n_head = 3 if rope_theta else N_HEAD                         # RoPE turns pairs: an even d_k
        layer = MultiHeadAttention(D_MODEL, n_head, bias=bias, rng=rng, rope_theta=rope_theta)
        if blockwise:
            layer.attention.blockwise_from, layer.attention.block = 2, 2
        x, dy = backend.randn((B, T, D_MODEL), rng=rng), backend.randn((B, T, D_MODEL), rng=rng)
        results = {}
        for fused in (True, False):
            layer.fuse_qkv = fused
            layer.zero_grad()
            y = layer(x, mask=causal_mask(T))
            assert (layer.attention.blockwise is not None) == blockwise
            dx = layer.backward(dy)
            results[fused] = [y, dx] + [p.grad.copy() for p in layer.parameters()]
    assert len(results[True]) == (10 if bias else 6)
    for fused, plain in zip(results[True], results[False]):
        numpy.testing.assert_allclose(fused, plain, rtol=1e-12, atol=1e-14)


def test_mha_fused_backward_on_long_sequences_writes_the_qkv_gradients_into_one_array(monkeypatch):
    """On the blockwise path (long sequences, where the [B, T, d] arrays make the peak), the gradients of
    Q, K and V land in the layout of the fused product's output, [B, T, 3, h, d_k]: dW_qkv and dx are
    computed from it with no copy of the three (which would cost their memory twice)."""
    rng = numpy.random.default_rng(13)
    layer = MultiHeadAttention(D_MODEL, N_HEAD, bias=False, rng=rng)
    layer.attention.blockwise_from, layer.attention.block = 2, 2
    seen = {}
    attention_backward, projection_backward = layer.attention.backward, layer._project_qkv_backward_from
    monkeypatch.setattr(layer.attention, "backward",
                        lambda *args, **kwargs: seen.setdefault("grads", attention_backward(*args, **kwargs)))
    monkeypatch.setattr(layer, "_project_qkv_backward_from",
                        lambda dqkv: projection_backward(seen.setdefault("dqkv", dqkv)))
    x = backend.randn((B, T, D_MODEL), rng=rng)
    layer(x, mask=causal_mask(T))
    layer.backward(backend.randn((B, T, D_MODEL), rng=rng))
    assert seen["dqkv"].shape == (B, T, 3, N_HEAD, D_MODEL // N_HEAD)
    assert all(numpy.shares_memory(grad, seen["dqkv"]) for grad in seen["grads"])
    assert all(numpy.abs(seen["dqkv"][:, :, i]).sum() > 0 for i in range(3))   # each of dQ, dK, dV written


@pytest.mark.parametrize("blockwise", [False, True])
def test_sdpa_backward_writes_into_the_arrays_it_is_given(blockwise):
    """backward(dout, out=(dq, dk, dv)) fills those arrays (zeros shaped as q, k, v, here views of one
    [B, T, 3, h, d_k] array as MultiHeadAttention passes them) with what backward(dout) returns."""
    rng = numpy.random.default_rng(15)
    with backend.using("float64"):
        sdpa = ScaledDotProductAttention()
        if blockwise:
            sdpa.blockwise_from, sdpa.block = 2, 2
        q, k, v = (backend.randn((B, 2, T, 3), rng=rng) for _ in range(3))
        sdpa(q, k, v, causal_mask(T))
        dout = backend.randn((B, 2, T, 3), rng=rng)
        expected = sdpa.backward(dout)
        one = numpy.zeros((B, T, 3, 2, 3))
        out = tuple(one[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        got = sdpa.backward(dout, out=out)
    assert all(g is o for g, o in zip(got, out))
    for g, e in zip(got, expected):
        numpy.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_the_exercise_route_through_project_qkv_backward_gives_the_layers_gradients():
    """lessons/exercises/multi_head_backward.py hands the learner ``_project_qkv_backward(dq, dk, dv)``
    for the fused product; it must give what the layer's own backward gives, which has attention write
    dQ, dK, dV into the product's layout instead."""
    rng = numpy.random.default_rng(14)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x, dy = backend.randn((B, T, D_MODEL), rng=rng), backend.randn((B, T, D_MODEL), rng=rng)
        results = []
        for route in ("layer", "exercise"):
            layer.zero_grad()
            layer(x, mask=causal_mask(T))
            if route == "layer":
                dx = layer.backward(dy)
            else:
                dq, dk, dv = layer.attention.backward(layer.split_heads(layer.out_proj.backward(dy)))
                dx = layer._project_qkv_backward(dq, dk, dv)
            results.append([dx] + [p.grad.copy() for p in layer.parameters()])
    for ours, theirs in zip(*results):
        numpy.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_mha_separate_projections_gradients():
    rng = numpy.random.default_rng(12)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        layer.fuse_qkv = False
        x = backend.randn((B, T, D_MODEL), rng=rng)
        assert_gradients_check(layer, {"x": x}, {"mask": causal_mask(T)}, name="MultiHeadAttention")


@pytest.mark.parametrize("masked", [False, True])
def test_mha_cross_attention_gradients(masked):
    rng = numpy.random.default_rng(9)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x = backend.randn((B, 3, D_MODEL), rng=rng)                 # 3 queries ...
        context = backend.randn((B, 5, D_MODEL), rng=rng)           # ... attend to 5 keys from elsewhere
        mask = padding_mask(numpy.array([[False] * 4 + [True], [False] * 5])) if masked else None
        errors = assert_gradients_check(layer, {"x": x, "context": context}, {"mask": mask},
                                        name="MultiHeadAttention")
        dx, dcontext = layer.backward(backend.randn((B, 3, D_MODEL), rng=rng))
    assert {"x", "context"} <= set(errors)
    assert dx.shape == x.shape and dcontext.shape == context.shape


# Sizes: with d_k ≤ 2, T ≤ 2 or sparse masks, a gradient carried by one or two rows is too often tiny by
# accident (a head's keys nearly coincide) for finite differences to measure it; see GRADIENT_PROPERTY.
# Sparse and fully masked rows have their own fixed tests above.
@GRADIENT_PROPERTY
@given(batch=st.integers(1, 2), t_q=st.integers(3, 5), t_k=st.integers(3, 5), n_head=st.integers(1, 2),
       d_k=st.integers(3, 4), cross=st.booleans(), density=st.floats(0.6, 1.0),
       fully_masked_row=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_mha_gradients_with_random_masks(batch, t_q, t_k, n_head, d_k, cross, density, fully_masked_row, seed):
    rng = numpy.random.default_rng(seed)
    d_model = n_head * d_k
    t_k = t_k if cross else t_q
    with backend.using("float64"):
        layer = MultiHeadAttention(d_model, n_head, rng=rng)
        inputs = {"x": backend.randn((batch, t_q, d_model), rng=rng)}
        if cross:
            inputs["context"] = backend.randn((batch, t_k, d_model), rng=rng)
        mask = rng.random((batch, n_head, t_q, t_k)) < density   # a mask of its own for each head
        if fully_masked_row:
            mask[0, 0, 0] = False
        assert_gradients_check(layer, inputs, {"mask": mask}, name="MultiHeadAttention", seed=seed)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 2), t_q=st.integers(1, 5), t_k=st.integers(1, 5), n_head=st.integers(1, 3),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_mha_weights_rows_sum_to_one_over_unmasked_keys(batch, t_q, t_k, n_head, density, seed):
    rng = numpy.random.default_rng(seed)
    d_model = 2 * n_head
    with backend.using("float64"):
        layer = MultiHeadAttention(d_model, n_head, rng=rng)
        x, context = backend.randn((batch, t_q, d_model), rng=rng), backend.randn((batch, t_k, d_model), rng=rng)
        mask = rng.random((batch, 1, t_q, t_k)) < density
        y = layer(x, context, mask=mask)
    weights = layer.weights                                          # [B, n_head, T_q, T_k]
    mask = numpy.broadcast_to(mask, weights.shape)
    has_key = mask.any(axis=-1)
    assert numpy.isfinite(y).all()
    assert (weights[~mask] == 0).all()
    numpy.testing.assert_allclose(weights.sum(axis=-1)[has_key], 1.0, rtol=0, atol=1e-12)
    assert (weights[~has_key] == 0).all()


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 2), length=st.integers(2, 6), n_head=st.integers(1, 3), d_k=st.integers(1, 3),
       data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_causal_attention_does_not_look_ahead(batch, length, n_head, d_k, data, seed):
    t = data.draw(st.integers(0, length - 2), label="t")
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = MultiHeadAttention(n_head * d_k, n_head, rng=rng)
        x = backend.randn((batch, length, n_head * d_k), rng=rng)
        changed = x.copy()
        changed[:, t + 1:] = backend.randn(changed[:, t + 1:].shape, std=10.0, rng=rng)  # rewrite the future
        y = layer(x, mask=causal_mask(length))
        y_changed = layer(changed, mask=causal_mask(length))
    numpy.testing.assert_allclose(y_changed[:, : t + 1], y[:, : t + 1], rtol=0, atol=1e-12)
    assert not numpy.allclose(y_changed[:, t + 1:], y[:, t + 1:])  # (the future itself did change)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 2), length=st.integers(2, 6), n_head=st.integers(1, 3), d_k=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_self_attention_is_permutation_equivariant(batch, length, n_head, d_k, seed):
    """Without a positional encoding or a mask, attention sees a set: shuffling the tokens shuffles the
    outputs the same way and changes nothing else (why Transformers need positional encodings)."""
    rng = numpy.random.default_rng(seed)
    perm = rng.permutation(length)
    with backend.using("float64"):
        layer = MultiHeadAttention(n_head * d_k, n_head, rng=rng)
        x = backend.randn((batch, length, n_head * d_k), rng=rng)
        y = layer(x)
        y_of_permuted = layer(x[:, perm])
    numpy.testing.assert_allclose(y_of_permuted, y[:, perm], rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(t_k=st.integers(2, 6), n_head=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_cross_attention_does_not_care_about_the_order_of_the_context(t_k, n_head, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = MultiHeadAttention(2 * n_head, n_head, rng=rng)
        x, context = backend.randn((1, 3, 2 * n_head), rng=rng), backend.randn((1, t_k, 2 * n_head), rng=rng)
        y = layer(x, context)
        y_shuffled = layer(x, context[:, rng.permutation(t_k)])
    numpy.testing.assert_allclose(y_shuffled, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1], [2, 3], [3, 1, 1]])
def test_mha_with_a_cache_equals_causal_attention_over_the_whole_sequence(chunks):
    """Generation feeds a few new positions at a time and keeps earlier keys and values in a cache;
    position t must come out exactly as in one causal forward over the whole sequence."""
    rng = numpy.random.default_rng(12)
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x = backend.randn((B, sum(chunks), D_MODEL), rng=rng)
        full = layer(x, mask=causal_mask(sum(chunks)))
        cache, pieces, start = {}, [], 0
        for n in chunks:
            pieces.append(layer(x[:, start:start + n], cache=cache))
            start += n
    assert cache["k"].shape == (B, N_HEAD, sum(chunks), D_MODEL // N_HEAD)
    numpy.testing.assert_allclose(numpy.concatenate(pieces, axis=1), full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cross", [False, True])
def test_mha_float32_stays_float32(cross):
    layer = MultiHeadAttention(D_MODEL, N_HEAD)
    inputs = {"x": backend.randn((B, T, D_MODEL))}
    if cross:
        inputs["context"] = backend.randn((B, 5, D_MODEL))
    assert_stays_float32(layer, inputs, {"mask": None if cross else causal_mask(T)})


def test_mha_bad_inputs_are_explained():
    layer = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"MultiHeadAttention expects input with last dimension d_model=8, "
                                         r"got shape \(2, 3, 7\)"):
        layer(backend.randn((2, 3, 7)))
    with pytest.raises(ValueError, match=r"expects x of shape \[B, T, d_model\], got \(3, 8\)"):
        layer(backend.randn((3, 8)))
    with pytest.raises(ValueError, match=r"MultiHeadAttention \(context\) expects input with last dimension "
                                         r"d_model=8, got shape \(2, 5, 4\)"):
        layer(backend.randn((2, 3, 8)), backend.randn((2, 5, 4)))
    with pytest.raises(ValueError, match=r"context must be \[B, T_k, d_model\] with the same B"):
        layer(backend.randn((2, 3, 8)), backend.randn((1, 5, 8)))


# --- masks and inputs that would compute the wrong thing --------------------------------------------------
#
# NumPy broadcasts from the right, so a mask of the wrong meaning can fit the scores [B, h, T_q, T_k]
# and compute a wrong answer without an error; and a float64 input silently upcasts a float32 layer.

def test_mha_refuses_a_padding_mask_that_would_broadcast_as_t_q_by_t_k():
    """A [B, T_k] mask with B = T_q: NumPy reads it as [T_q, T_k], each *query* getting a sequence's row."""
    layer = MultiHeadAttention(8, 2, rng=numpy.random.default_rng(0))
    x = backend.randn((3, 3, 8), rng=numpy.random.default_rng(1))           # B = T_q = T_k = 3
    is_pad = numpy.array([[False, False, False], [False, False, True], [False, True, True]])
    right = layer(x, mask=padding_mask(is_pad))                               # [B, 1, 1, T_k]
    with pytest.raises(ValueError, match=r"^MultiHeadAttention: a mask of shape \(3, 3\) is ambiguous when "
                                         r"B = T_q = 3: it could be \[T_q, T_k\], the same for every "
                                         r"sequence, or a \[B, T_k\] padding mask.*Give it four axes: "
                                         r"mask\[None, None\] is \[1, 1, T_q, T_k\]; padding_mask\(is_pad\) "
                                         r"is \[B, 1, 1, T_k\]\. MultiHeadAttention takes a mask of shape "
                                         r"\[B, n_head, T_q, T_k\] = \[3, 2, 3, 3\]"):
        layer(x, mask=~is_pad)
    # the four-axis spelling of the same intent gives the right answer
    numpy.testing.assert_allclose(layer(x, mask=(~is_pad)[:, None, None, :]), right, rtol=0, atol=0)
    # a [T_q, T_k] mask with B = T_q: causal_mask's own masks pass (they are [T_q, T_k] by construction);
    # a mask of the same shape from elsewhere needs its four axes
    causal = layer(x, mask=causal_mask(3))
    numpy.testing.assert_array_equal(layer(x, mask=causal_mask(3).copy()[None, None]), causal)
    with pytest.raises(ValueError, match=r"is ambiguous when B = T_q = 3"):
        layer(x, mask=causal_mask(3).copy())
    # B = T_q = 1: both readings are the same broadcast, nothing to refuse
    layer(x[:1, :1], mask=numpy.ones((1, 1), dtype=bool))


@pytest.mark.parametrize("shape, x_shape, match", [
    ((2, 3), (2, 4, 8), r"a mask of shape \(2, 3\) does not broadcast to the attention scores \(2, 2, 4, 4\) "
                        r"\(\[\.\.\., T_q, T_k\]\)\. MultiHeadAttention takes a mask of shape "
                        r"\[B, n_head, T_q, T_k\] = \[2, 2, 4, 4\], where any axis may be 1, or \[T_q, T_k\] = "
                        r"\[4, 4\]: one mask shared by every sequence\. Build masks with causal_mask\(T\)"),
    ((3, 4), (3, 3, 8), r"a mask of shape \(3, 4\) does not broadcast to the attention scores \(3, 2, 3, 3\)"),
    ((2, 3, 3), (2, 3, 8), r"a mask of shape \(2, 3, 3\) has 3 axes, which NumPy would align from the right, "
                           r"rarely as meant: a \[B, T_q, T_k\] mask needs the head axis, mask\[:, None\] "
                           r"\(\[B, 1, T_q, T_k\]\)\. MultiHeadAttention takes"),
    ((3, 3, 3), (3, 3, 8), r"a mask of shape \(3, 3, 3\) does not broadcast to the attention scores"),
    ((3,), (2, 3, 8), r"a mask of shape \(3,\) has 1 axes, which NumPy would align from the right, rarely as "
                      r"meant: a \[T_k\] mask shared by every sequence and query is mask\[None, None, None\]"),
    ((1, 2, 2, 3, 3), (2, 3, 8), r"a mask of shape \(1, 2, 2, 3, 3\) does not broadcast to the attention"),
    ((2, 2, 3, 1), (2, 3, 8), None),                                        # broadcasts as meant: allowed
    ((1, 1, 1, 3), (2, 3, 8), None),
])
def test_mha_mask_shapes_that_would_broadcast_another_way_are_refused(shape, x_shape, match):
    layer = MultiHeadAttention(8, 2)                                        # n_head = 2
    x = backend.randn(x_shape)
    mask = numpy.ones(shape, dtype=bool)
    if match is None:
        assert layer(x, mask=mask).shape == x_shape
        return
    with pytest.raises(ValueError, match="^MultiHeadAttention: " + match):
        layer(x, mask=mask)


BOOLEAN_MASK_MESSAGE = (r"a mask must be a boolean array, True where query i may attend to key j; got {got}\. "
                        r"Convert a 0/1 mask of allowed positions with \(mask == 1\), an additive mask of 0 "
                        r"and -inf with \(mask == 0\)\. Build masks with causal_mask\(T\) \(\[T, T\]\) and "
                        r"padding_mask\(is_pad\) \(\[B, T_k\], True at padding -> \[B, 1, 1, T_k\]\)")


@pytest.mark.parametrize("mask, got", [
    (numpy.tril(numpy.ones((T, T), dtype=numpy.int64)), "dtype int64"),
    (numpy.tril(numpy.ones((T, T))), "dtype float64"),
    (numpy.where(numpy.tril(numpy.ones((T, T))) > 0, 0.0, -numpy.inf), "dtype float64"),   # additive
    ([[True] * T] * T, "a list"),
])
def test_masks_must_be_boolean(mask, got):
    x = backend.randn((B, T, 8))
    with pytest.raises(TypeError, match="^MultiHeadAttention: " + BOOLEAN_MASK_MESSAGE.format(got=got)):
        MultiHeadAttention(8, 2)(x, mask=mask)
    q = backend.randn((B, T, D_K))
    with pytest.raises(TypeError, match="^ScaledDotProductAttention: " + BOOLEAN_MASK_MESSAGE.format(got=got)):
        ScaledDotProductAttention()(q, q, q, mask)


def test_sdpa_refuses_a_mask_that_would_enlarge_the_scores():
    q = backend.randn((B, T, D_K))                                          # scores [B, T, T]
    with pytest.raises(ValueError, match=r"^ScaledDotProductAttention: a mask of shape \(5, 1, 4, 4\) does not "
                                         r"broadcast to the attention scores \(2, 4, 4\) \(\[\.\.\., T_q, "
                                         r"T_k\]\)\. Aligned from the right, each of its axes must be 1 or "
                                         r"the size of the scores' axis\."):
        ScaledDotProductAttention()(q, q, q, numpy.ones((5, 1, T, T), dtype=bool))


def test_an_input_of_another_dtype_than_the_weights_is_refused():
    """A float64 x into a float32 layer would make every activation float64 while the weights stay float32."""
    layer = MultiHeadAttention(8, 2)                                        # float32
    x32, x64 = backend.randn((B, T, 8)), backend.randn((B, T, 8), dtype=numpy.float64)
    with pytest.raises(TypeError, match=r"^MultiHeadAttention got x of dtype float64, but its weights are "
                                        r"float32\. Convert the input, x\.astype\('float32'\), or build the "
                                        r"model in float64: `with backend\.using\('float64'\): model = \.\.\.`"):
        layer(x64)
    with pytest.raises(TypeError, match=r"^MultiHeadAttention got context of dtype float64, but its weights are "
                                        r"float32\. Convert the input, context\.astype\('float32'\)"):
        layer(x32, x64)
    with backend.using("float64"):
        layer64 = MultiHeadAttention(8, 2)
    with pytest.raises(TypeError, match=r"^MultiHeadAttention got x of dtype float32, but its weights are "
                                        r"float64\. Convert the input, x\.astype\('float64'\)"):
        layer64(x32)
    with pytest.raises(TypeError, match=r"^Attention got Q, K, V of dtypes float32, float64, float32; they must "
                                        r"share one dtype"):
        q = backend.randn((B, T, D_K))
        ScaledDotProductAttention()(q, q.astype(numpy.float64), q)


def test_n_head_must_divide_d_model():
    with pytest.raises(ValueError, match=r"n_head=3 does not divide d_model=8.*Choose n_head from \[1, 2, 4, 8\]"):
        MultiHeadAttention(8, 3)


def torch_mha_like(torch, layer):
    """nn.MultiheadAttention holding our weights: in_proj_weight [3d, d] stacks W_qᵀ, W_kᵀ, W_vᵀ."""
    reference = torch.nn.MultiheadAttention(layer.d_model, layer.n_head, batch_first=True, dtype=torch.float64)
    projections = (layer.q_proj, layer.k_proj, layer.v_proj)
    set_torch_param(torch, reference.in_proj_weight, numpy.concatenate([p.weight.data.T for p in projections]))
    set_torch_param(torch, reference.in_proj_bias, numpy.concatenate([p.bias.data for p in projections]))
    set_torch_param(torch, reference.out_proj.weight, layer.out_proj.weight.data.T)
    set_torch_param(torch, reference.out_proj.bias, layer.out_proj.bias.data)
    return reference


def assert_mha_parameter_gradients_match(layer, reference):
    d = layer.d_model
    for i, (name, projection) in enumerate([("q", layer.q_proj), ("k", layer.k_proj), ("v", layer.v_proj)]):
        rows = slice(i * d, (i + 1) * d)
        assert_matches_torch(projection.weight.grad, reference.in_proj_weight.grad[rows].T,
                             "MultiHeadAttention", f"d{name}_proj.weight")
        assert_matches_torch(projection.bias.grad, reference.in_proj_bias.grad[rows],
                             "MultiHeadAttention", f"d{name}_proj.bias")
    assert_matches_torch(layer.out_proj.weight.grad, reference.out_proj.weight.grad.T,
                         "MultiHeadAttention", "dout_proj.weight")
    assert_matches_torch(layer.out_proj.bias.grad, reference.out_proj.bias.grad,
                         "MultiHeadAttention", "dout_proj.bias")


@pytest.mark.parametrize("kind", [None, "causal", "padding"])
def test_mha_self_attention_matches_torch(torch, kind):
    rng = numpy.random.default_rng(10)
    is_pad = numpy.array([[False, False, True, True], [False, False, False, False]])
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x, dy = backend.randn((B, T, D_MODEL), rng=rng), backend.randn((B, T, D_MODEL), rng=rng)
        mask = {None: None, "causal": causal_mask(T), "padding": padding_mask(is_pad)}[kind]
        y = layer(x, mask=mask)
        dx = layer.backward(dy)

    reference = torch_mha_like(torch, layer)
    x_t = to_torch(torch, x)
    # PyTorch's masks say where attention is NOT allowed: the opposite of ours
    attn_mask = torch.as_tensor(~causal_mask(T)) if kind == "causal" else None
    key_padding_mask = torch.as_tensor(is_pad) if kind == "padding" else None
    y_t, _ = reference(x_t, x_t, x_t, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                       need_weights=False)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "MultiHeadAttention", "output")
    assert_matches_torch(dx, x_t.grad, "MultiHeadAttention", "dx")
    assert_mha_parameter_gradients_match(layer, reference)


def test_mha_cross_attention_matches_torch(torch):
    rng = numpy.random.default_rng(11)
    is_pad = numpy.array([[False, False, False, True, True], [False, False, False, False, False]])
    with backend.using("float64"):
        layer = MultiHeadAttention(D_MODEL, N_HEAD, rng=rng)
        x, context = backend.randn((B, 3, D_MODEL), rng=rng), backend.randn((B, 5, D_MODEL), rng=rng)
        dy = backend.randn((B, 3, D_MODEL), rng=rng)
        y = layer(x, context, mask=padding_mask(is_pad))
        dx, dcontext = layer.backward(dy)

    reference = torch_mha_like(torch, layer)
    x_t, context_t = to_torch(torch, x), to_torch(torch, context)
    y_t, _ = reference(x_t, context_t, context_t, key_padding_mask=torch.as_tensor(is_pad), need_weights=False)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "MultiHeadAttention", "cross output")
    assert_matches_torch(dx, x_t.grad, "MultiHeadAttention", "dx")
    assert_matches_torch(dcontext, context_t.grad, "MultiHeadAttention", "dcontext")
    assert_mha_parameter_gradients_match(layer, reference)
