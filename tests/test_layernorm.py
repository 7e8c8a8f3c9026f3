"""LayerNorm: y = γ ⊙ (x − μ)/√(σ² + eps) + β over the last axis."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     set_torch_param, to_torch)
from tinytransformer import LayerNorm, backend


def layer_norm_with_random_gain_and_bias(d_model, rng):
    """γ = 1 and β = 0 at initialisation would hide a backward that forgot to multiply by γ."""
    layer = LayerNorm(d_model)
    layer.weight.data[...] = backend.randn((d_model,), rng=rng) + 1.0
    layer.bias.data[...] = backend.randn((d_model,), rng=rng)
    return layer


def test_gradients():
    rng = numpy.random.default_rng(0)
    with backend.using("float64"):
        layer = layer_norm_with_random_gain_and_bias(5, rng)
        errors = assert_gradients_check(layer, {"x": backend.randn((2, 3, 5), std=3.0, rng=rng)})
    assert set(errors) == {"x", "weight", "bias"}


def rows_with_std(shape, d_model, std, offset, rng):
    """Random rows, each shifted and scaled to have exactly mean ``offset`` and standard deviation ``std``."""
    z = rng.standard_normal((*shape, d_model))
    z = (z - z.mean(axis=-1, keepdims=True)) / z.std(axis=-1, keepdims=True)
    return backend.asarray(offset + std * z)


# Two limits of finite differences, not of LayerNorm, shape the inputs below:
# - centred differences are accurate to about (h/σ)²: a row with σ ≈ 0.007 already costs 4e-7, so each
#   row's σ is kept at 0.3 or more (error < 1e-9);
# - a row's dx is orthogonal to 1 and to x̂, so with d_model = 3 it lies on a line and one row's dx can
#   be ~0 by chance; with d_model = 2 the normalised row is always (−1, 1) or (1, −1), dx is ~0 (of order
#   eps/σ²) and its relative error measures only noise. d_model = 2 has a test of its own below.
@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), d_model=st.integers(4, 8),
       std=st.floats(0.3, 10.0), offset=st.floats(-10.0, 10.0), seed=st.integers(0, 2**32 - 1))
def test_gradients_for_random_shapes(shape, d_model, std, offset, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = layer_norm_with_random_gain_and_bias(d_model, rng)
        x = rows_with_std(shape, d_model, std, offset, rng)
        assert_gradients_check(layer, {"x": x}, seed=seed)


def test_two_features_normalise_to_plus_and_minus_one_with_almost_no_gradient():
    with backend.using("float64"):
        layer = LayerNorm(2)
        x = backend.asarray([[3.0, 1.0], [-2.0, 5.0]])
        y = layer(x)
        dx = layer.backward(backend.randn((2, 2), rng=numpy.random.default_rng(0)))
    numpy.testing.assert_allclose(y, [[1.0, -1.0], [-1.0, 1.0]], atol=1e-5)
    assert numpy.abs(dx).max() < 1e-4  # only eps lets x move the output at all


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), d_model=st.integers(2, 16), scale=st.floats(0.01, 100.0),
       offset=st.floats(-10.0, 10.0), seed=st.integers(0, 2**32 - 1))
def test_normalised_rows_have_zero_mean_and_unit_variance(rows, d_model, scale, offset, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = layer_norm_with_random_gain_and_bias(d_model, rng)  # γ, β act after x̂: x̂ is unaffected
        x = backend.randn((rows, d_model), std=scale, rng=rng) + offset
        layer(x)
    xhat = layer.xhat
    variance = x.var(axis=-1)  # biased (divide by D), as LayerNorm's own
    numpy.testing.assert_allclose(xhat.mean(axis=-1), 0.0, rtol=0, atol=1e-12)
    # Var(x̂) = σ² / (σ² + eps) exactly: 1 but for eps's effect, which is tiny unless σ² is
    numpy.testing.assert_allclose(xhat.var(axis=-1), variance / (variance + layer.eps), rtol=1e-9)
    numpy.testing.assert_allclose(xhat.var(axis=-1)[variance > 0.1], 1.0, rtol=1e-3)


def test_gain_and_bias_are_applied_after_normalising():
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        layer = layer_norm_with_random_gain_and_bias(4, rng)
        x = backend.randn((3, 4), rng=rng)
        y = layer(x)
    expected = (x - x.mean(-1, keepdims=True)) / numpy.sqrt(x.var(-1, keepdims=True) + 1e-5)
    numpy.testing.assert_allclose(y, expected * layer.weight.data + layer.bias.data, atol=1e-14)


def test_constant_row_does_not_divide_by_zero():
    with backend.using("float64"):
        layer = LayerNorm(3)
        y = layer(numpy.full((1, 3), 7.0))
        dx = layer.backward(numpy.ones((1, 3)))
    assert numpy.isfinite(y).all() and numpy.isfinite(dx).all()
    numpy.testing.assert_array_equal(y, 0.0)  # x − μ = 0, and eps keeps the denominator positive


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=2), d_model=st.integers(1, 6))
def test_float32_stays_float32(shape, d_model):
    assert_stays_float32(LayerNorm(d_model), {"x": backend.randn((*shape, d_model))})


def test_wrong_last_dimension_is_explained():
    with pytest.raises(ValueError, match=r"LayerNorm expects input with last dimension d_model=4, "
                                         r"got shape \(2, 3\)"):
        LayerNorm(4)(backend.randn((2, 3)))


def test_matches_torch(torch):
    rng = numpy.random.default_rng(2)
    with backend.using("float64"):
        layer = layer_norm_with_random_gain_and_bias(5, rng)
        x, dy = backend.randn((2, 3, 5), std=3.0, rng=rng), backend.randn((2, 3, 5), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)

    reference = torch.nn.LayerNorm(5, eps=layer.eps, dtype=torch.float64)
    set_torch_param(torch, reference.weight, layer.weight.data)
    set_torch_param(torch, reference.bias, layer.bias.data)
    x_t = to_torch(torch, x)
    y_t = reference(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "LayerNorm", "output")
    assert_matches_torch(dx, x_t.grad, "LayerNorm", "dx")
    assert_matches_torch(layer.weight.grad, reference.weight.grad, "LayerNorm", "dweight")
    assert_matches_torch(layer.bias.grad, reference.bias.grad, "LayerNorm", "dbias")


def test_without_bias_gradients_and_torch(torch):
    """bias=False drops β (nanoGPT's bias-free models): y = γ ⊙ x̂, and there is no β to train."""
    rng = numpy.random.default_rng(3)
    with backend.using("float64"):
        layer = LayerNorm(5, bias=False)
        layer.weight.data[...] = backend.randn((5,), rng=rng) + 1.0
        errors = assert_gradients_check(layer, {"x": backend.randn((2, 3, 5), std=3.0, rng=rng)})
        x, dy = backend.randn((2, 3, 5), std=3.0, rng=rng), backend.randn((2, 3, 5), rng=rng)
        layer.zero_grad()
        y = layer(x)
        dx = layer.backward(dy)
    assert set(errors) == {"x", "weight"} and layer.bias is None
    reference = torch.nn.LayerNorm(5, eps=layer.eps, bias=False, dtype=torch.float64)
    set_torch_param(torch, reference.weight, layer.weight.data)
    x_t = to_torch(torch, x)
    y_t = reference(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "LayerNorm", "output (no bias)")
    assert_matches_torch(dx, x_t.grad, "LayerNorm", "dx (no bias)")
    assert_matches_torch(layer.weight.grad, reference.weight.grad, "LayerNorm", "dweight (no bias)")


def test_backward_on_the_standin_runs_the_fused_formula_and_gives_numpys_bits(monkeypatch):
    """On a GPU backend dx is one fused kernel (layernorm.layernorm_dx); the stand-in runs that formula
    under cupy.fuse's rules, and it must give exactly what NumPy gives."""
    from tinytransformer.layers import layernorm
    rng = numpy.random.default_rng(5)
    x, dy = rng.standard_normal((3, 4, 16)), rng.standard_normal((3, 4, 16))
    results = {}
    calls = []
    fused = layernorm.layernorm_dx
    monkeypatch.setattr(layernorm, "layernorm_dx", lambda *a: calls.append(backend.name()) or fused(*a))
    for name in ("numpy", "standin"):
        with backend.using("float32", backend=name):
            norm = LayerNorm(16)
            norm(backend.asarray(x, dtype="float32"))
            results[name] = backend.to_numpy(norm.backward(backend.asarray(dy, dtype="float32")))
    assert calls == ["standin"]                                    # NumPy computes it in place
    numpy.testing.assert_array_equal(results["standin"], results["numpy"])


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=2), d_model=st.integers(1, 40),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_in_place_backward_equals_the_formula_bit_for_bit(shape, d_model, dtype, seed):
    """On NumPy, LayerNorm.backward computes dx in place; layernorm_dx is the formula as it reads (what a
    GPU runs, fused). They do the same operations in the same order, so the bits agree."""
    from tinytransformer.layers.layernorm import layernorm_dx
    from tinytransformer.layers.reductions import row_mean
    rng = numpy.random.default_rng(seed)
    with backend.using(dtype):
        norm = LayerNorm(d_model)
        norm.weight.data[...] = backend.randn((d_model,), rng=rng)
        x, dy = backend.randn((*shape, d_model), std=3.0, rng=rng), backend.randn((*shape, d_model), rng=rng)
        norm(x)
        dx = norm.backward(dy)
        g = dy * norm.weight.data
        expected = layernorm_dx(g, norm.xhat, norm.rstd, row_mean(g), row_mean(g, norm.xhat))
        numpy.testing.assert_array_equal(dx, expected)
