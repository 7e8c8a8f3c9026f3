"""The layers of today's decoders (LLaMA, Mistral): RMSNorm, SiLU and the SwiGLU feed-forward, RoPE.

Each is checked by finite differences in float64 and against PyTorch written the way Hugging Face's
Llama modules write it; RoPE also for the property it exists for, scores that depend on i − j only.
"""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     set_torch_param, to_torch)
from tinytransformer import backend
from tinytransformer.layers.activations import SiLU
from tinytransformer.layers.feedforward import SwiGLUFeedForward, swiglu_hidden
from tinytransformer.layers.rmsnorm import RMSNorm
from tinytransformer.layers.rotary import RotaryEmbedding, rope_angles, rotate_half


# --- RMSNorm -------------------------------------------------------------------------------------------------
def rms_norm_with_random_gain(d_model, rng):
    """γ = 1 at initialisation would hide a backward that forgot to multiply by γ."""
    layer = RMSNorm(d_model)
    layer.weight.data[...] = backend.randn((d_model,), rng=rng) + 1.0
    return layer


@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), d_model=st.integers(2, 8),
       std=st.floats(0.3, 10.0), offset=st.floats(-10.0, 10.0), seed=st.integers(0, 2**32 - 1))
def test_rmsnorm_gradients(shape, d_model, std, offset, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = rms_norm_with_random_gain(d_model, rng)
        x = backend.randn((*shape, d_model), std=std, rng=rng) + offset
        errors = assert_gradients_check(layer, {"x": x}, seed=seed)
    assert set(errors) == {"x", "weight"}


def test_rmsnorm_scales_each_row_to_unit_root_mean_square_without_centring_it():
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        layer = RMSNorm(6)
        x = backend.randn((4, 6), std=5.0, rng=rng) + 3.0           # rows with a mean far from 0
        y = layer(x)
    ms = (x * x).mean(axis=-1)
    numpy.testing.assert_allclose((y * y).mean(axis=-1), ms / (ms + layer.eps), rtol=1e-12)
    numpy.testing.assert_allclose(y, x / numpy.sqrt(ms + layer.eps)[:, None], rtol=1e-12)
    assert (numpy.abs(y.mean(axis=-1)) > 0.3).all()                # the mean is scaled, not removed


def test_rmsnorm_matches_torch(torch):
    rng = numpy.random.default_rng(2)
    with backend.using("float64"):
        layer = rms_norm_with_random_gain(5, rng)
        x, dy = backend.randn((2, 3, 5), std=3.0, rng=rng), backend.randn((2, 3, 5), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)
    x_t, weight = to_torch(torch, x), to_torch(torch, layer.weight.data)
    # Hugging Face's LlamaRMSNorm: x * rsqrt(mean(x²) + eps), times the weight
    y_t = weight * (x_t * torch.rsqrt(x_t.pow(2).mean(-1, keepdim=True) + layer.eps))
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "RMSNorm", "output")
    assert_matches_torch(dx, x_t.grad, "RMSNorm", "dx")
    assert_matches_torch(layer.weight.grad, weight.grad, "RMSNorm", "dweight")
    if hasattr(torch.nn, "RMSNorm"):                                  # torch's own module agrees too
        reference = torch.nn.RMSNorm(5, eps=layer.eps, dtype=torch.float64)
        set_torch_param(torch, reference.weight, layer.weight.data)
        assert_matches_torch(y, reference(to_torch(torch, x)), "RMSNorm", "output (torch.nn.RMSNorm)")


def test_rmsnorm_stays_float32():
    assert_stays_float32(RMSNorm(4), {"x": backend.randn((2, 3, 4))})


# --- SiLU and SwiGLU -----------------------------------------------------------------------------------------
def test_silu_gradients_and_torch(torch):
    rng = numpy.random.default_rng(3)
    with backend.using("float64"):
        x = backend.randn((3, 7), std=4.0, rng=rng)
        assert_gradients_check(SiLU(), {"x": x})
        layer, dy = SiLU(), backend.randn((3, 7), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)
    x_t = to_torch(torch, x)
    y_t = torch.nn.functional.silu(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "SiLU", "output")
    assert_matches_torch(dx, x_t.grad, "SiLU", "dx")


def test_silu_of_large_inputs_is_finite():
    with backend.using("float64"):
        layer = SiLU()
        y = layer(numpy.array([-1000.0, -40.0, 0.0, 40.0, 1000.0]))
        dx = layer.backward(numpy.ones(5))
    numpy.testing.assert_allclose(y, [0.0, -40.0 / (1 + numpy.exp(40.0)), 0.0, 40.0, 1000.0], atol=1e-14)
    assert numpy.isfinite(dx).all()


def test_swiglu_hidden_width_is_llamas():
    assert swiglu_hidden(4096) == 11008                               # LLaMA-7B
    assert swiglu_hidden(128, multiple_of=32) == 352                  # 2/3·512 = 341.3 -> 352


@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=2), d_model=st.integers(2, 5),
       d_hidden=st.integers(2, 6), bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_swiglu_gradients(shape, d_model, d_hidden, bias, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = SwiGLUFeedForward(d_model, d_hidden, bias=bias, rng=rng)
        errors = assert_gradients_check(layer, {"x": backend.randn((*shape, d_model), rng=rng)}, seed=seed)
    assert {"x", "gate_proj.weight", "up_proj.weight", "down_proj.weight"} <= set(errors)


def test_swiglu_matches_torch(torch):
    rng = numpy.random.default_rng(4)
    with backend.using("float64"):
        layer = SwiGLUFeedForward(4, 6, rng=rng)
        x, dy = backend.randn((2, 3, 4), rng=rng), backend.randn((2, 3, 4), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)
    x_t = to_torch(torch, x)
    # Hugging Face's LlamaMLP: down(silu(gate(x)) * up(x)); nn.Linear keeps W as [out, in]
    gate, up, down = (to_torch(torch, p.weight.data.T) for p in (layer.gate_proj, layer.up_proj, layer.down_proj))
    y_t = (torch.nn.functional.silu(x_t @ gate.T) * (x_t @ up.T)) @ down.T
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "SwiGLU", "output")
    assert_matches_torch(dx, x_t.grad, "SwiGLU", "dx")
    for name, ours, theirs in (("gate", layer.gate_proj, gate), ("up", layer.up_proj, up),
                               ("down", layer.down_proj, down)):
        assert_matches_torch(ours.weight.grad, theirs.grad.T, "SwiGLU", f"d{name}")


# --- RoPE ----------------------------------------------------------------------------------------------------
@GRADIENT_PROPERTY
@given(B=st.integers(1, 2), heads=st.integers(1, 3), T=st.integers(1, 5), half=st.integers(1, 4),
       offset=st.integers(0, 50), seed=st.integers(0, 2**32 - 1))
def test_rope_gradients(B, heads, T, half, offset, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = RotaryEmbedding(2 * half, theta=100.0)
        x = backend.randn((B, heads, T, 2 * half), rng=rng)
        assert_gradients_check(layer, {"x": x}, forward_kwargs={"offset": offset}, seed=seed)


def test_rope_keeps_lengths_and_turns_pairs_by_position_times_frequency():
    rng = numpy.random.default_rng(5)
    with backend.using("float64"):
        layer = RotaryEmbedding(8)
        x = backend.randn((1, 2, 6, 8), rng=rng)
        y = layer(x)
    numpy.testing.assert_allclose(numpy.linalg.norm(y, axis=-1), numpy.linalg.norm(x, axis=-1), rtol=1e-12)
    numpy.testing.assert_array_equal(y[..., 0, :], x[..., 0, :])           # position 0 is not turned
    m, i = 3, 1                                                            # position 3, pair (1, 5)
    angle = m * 10000.0 ** (-2 * i / 8)
    a, b = x[0, 0, m, i], x[0, 0, m, i + 4]
    numpy.testing.assert_allclose([y[0, 0, m, i], y[0, 0, m, i + 4]],
                                  [a * numpy.cos(angle) - b * numpy.sin(angle),
                                   a * numpy.sin(angle) + b * numpy.cos(angle)], rtol=1e-12)


def test_rope_scores_depend_only_on_the_distance_between_positions():
    """q·k with q at position i and k at j, both rotated, equals the same q, k at i + s and j + s."""
    rng = numpy.random.default_rng(6)
    with backend.using("float64"):
        q, k = backend.randn((16,), rng=rng), backend.randn((16,), rng=rng)
        cos, sin = rope_angles(64, 16)
        rotated = lambda v, m: v * cos[m] + rotate_half(v) * sin[m]       # noqa: E731
        for i, j, s in ((5, 2, 7), (0, 9, 30), (40, 40, 13), (3, 60, 1)):
            assert abs(rotated(q, i) @ rotated(k, j) - rotated(q, i + s) @ rotated(k, j + s)) < 1e-12
        scores = [rotated(q, i) @ rotated(k, 0) for i in range(4)]       # but the distance itself counts
    assert numpy.ptp(scores) > 0.1


def test_rope_matches_torch(torch):
    """Hugging Face's apply_rotary_pos_emb, written in torch, with its rotate_half and inv_freq."""
    rng = numpy.random.default_rng(7)
    with backend.using("float64"):
        layer = RotaryEmbedding(8, theta=500.0)
        x, dy = backend.randn((2, 3, 5, 8), rng=rng), backend.randn((2, 3, 5, 8), rng=rng)
        y = layer(x, offset=4)
        dx = layer.backward(dy)
    inv_freq = 1.0 / (500.0 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8))
    freqs = torch.outer(torch.arange(4, 9, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)

    def rotate(t):
        return torch.cat((-t[..., 4:], t[..., :4]), dim=-1)

    x_t = to_torch(torch, x)
    y_t = x_t * emb.cos() + rotate(x_t) * emb.sin()
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "RoPE", "output")
    assert_matches_torch(dx, x_t.grad, "RoPE", "dx")


def test_rope_needs_an_even_head_size():
    with pytest.raises(ValueError, match="head size must be even; got d_k=5"):
        RotaryEmbedding(5)


def test_rope_keeps_the_dtype_of_its_input():
    """The angles follow x, not the backend's default: a float64 model stays exact under float32's default."""
    x64 = numpy.random.default_rng(8).standard_normal((1, 1, 7, 8))
    layer = RotaryEmbedding(8)
    assert layer(x64.astype("float32")).dtype == numpy.float32
    y = layer(x64)                                                # the default dtype here is float32
    with backend.using("float64"):
        exact = RotaryEmbedding(8)(x64)
    assert y.dtype == numpy.float64
    numpy.testing.assert_array_equal(y, exact)


def test_llama3_frequencies_keep_the_fast_pairs_slow_the_slow_ones_and_blend_between():
    from tinytransformer.layers.rotary import llama3_frequencies
    with backend.using("float64"):
        inv_freq = 1.0 / 500.0 ** (numpy.arange(0, 8, 2) / 8)          # wavelengths 6.3, 30, 140, 660
        scaled = llama3_frequencies(inv_freq, factor=8.0, low_freq_factor=1.0, high_freq_factor=2.0,
                                    original_max_position_embeddings=32)
    assert scaled[0] == inv_freq[0]                                     # shorter than 32/2: kept
    numpy.testing.assert_allclose(scaled[2:], inv_freq[2:] / 8, rtol=1e-15)   # longer than 32/1: slowed 8×
    blend = (32 * inv_freq[1] / (2 * numpy.pi) - 1.0) / (2.0 - 1.0)    # in between: linear in L/λ
    numpy.testing.assert_allclose(scaled[1], (1 - blend) * inv_freq[1] / 8 + blend * inv_freq[1], rtol=1e-15)
    assert inv_freq[1] / 8 < scaled[1] < inv_freq[1]
