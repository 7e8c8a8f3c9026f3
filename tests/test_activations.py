"""ReLU and GELU (tanh form), element-wise non-linearities."""
import math
import warnings

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     to_torch)
from tinytransformer import GELU, ReLU, backend
from tinytransformer.layers import activations
from tinytransformer.layers.activations import gelu_derivative_formula, gelu_formula, make_activation


def inputs_away_from_zero(shape, rng):
    """ReLU has a kink at 0, where finite differences straddle both sides; keep every |x| ≥ 0.1."""
    x = rng.standard_normal(shape)
    return backend.asarray(numpy.sign(x) * (0.1 + numpy.abs(x)))


@pytest.mark.parametrize("activation", [ReLU, GELU])
def test_gradients(activation):
    with backend.using("float64"):
        x = inputs_away_from_zero((2, 3, 4), numpy.random.default_rng(0))
        assert_gradients_check(activation(), {"x": x})


# Below x ≈ −3, GELU and its slope are tiny (~1e-6 at x = −5): their finite differences, taken on a sum
# of much larger terms, are mostly rounding noise; the float32 test below and PyTorch's cover the tails.
@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1))
def test_gelu_gradients_for_random_inputs(shape, seed):
    with backend.using("float64"):
        x = backend.asarray(numpy.random.default_rng(seed).uniform(-3.0, 3.0, shape))  # smooth: no kink
        assert_gradients_check(GELU(), {"x": x}, seed=seed)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), scale=st.floats(0.1, 20.0),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_in_place_gelu_equals_the_formula_bit_for_bit(shape, scale, dtype, seed):
    """On NumPy, GELU computes in place for speed; gelu_formula* are the formulas as they read (what a GPU
    runs, fused). They do the same operations in the same order, so the bits agree."""
    rng = numpy.random.default_rng(seed)
    with backend.using(dtype):
        x, dy = backend.randn(shape, std=scale, rng=rng), backend.randn(shape, rng=rng)
        layer = GELU()
        y = layer(x)
        kept = layer.dydx.copy()
        dx = layer.backward(dy)
        with numpy.errstate(over="ignore"):   # e^(−2u) is inf below x ≈ −10, as the layer expects there
            numpy.testing.assert_array_equal(y, gelu_formula(x))
            numpy.testing.assert_array_equal(kept, gelu_derivative_formula(x))
            numpy.testing.assert_array_equal(dx, dy * gelu_derivative_formula(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_on_the_standin_takes_the_fused_path_and_gives_numpys_bits(dtype, monkeypatch):
    rng = numpy.random.default_rng(3)
    x, dy = rng.standard_normal((4, 6, 8)) * 3, rng.standard_normal((4, 6, 8))
    with backend.using(dtype):
        layer = GELU()
        y, dx = layer(backend.asarray(x, dtype=dtype)), layer.backward(backend.asarray(dy, dtype=dtype))
    calls = []
    for name in ("gelu_formula", "gelu_derivative_formula"):  # count the calls of the fused formulas
        fused = getattr(activations, name)
        monkeypatch.setattr(activations, name, lambda *a, f=fused: calls.append(f) or f(*a))
    with backend.using(dtype, backend="standin"):
        layer = GELU()
        y_device = layer(backend.asarray(x, dtype=dtype))
        dx_device = layer.backward(backend.asarray(dy, dtype=dtype))
        assert isinstance(y_device, backend.xp.ndarray) and isinstance(dx_device, backend.xp.ndarray)
        y_device, dx_device = backend.to_numpy(y_device), backend.to_numpy(dx_device)
    assert len(calls) == 2                                   # y and GELU'(x) came from the formulas
    assert y_device.dtype == dx_device.dtype == numpy.dtype(dtype)
    numpy.testing.assert_array_equal(y_device, y)
    numpy.testing.assert_array_equal(dx_device, dx)


def test_gelu_keeps_only_its_derivative_and_none_in_evaluation_mode():
    """A training forward keeps GELU'(x) and nothing else the size of x (not x, not tanh(u)); an evaluation
    forward keeps nothing, gives the same y, and a backward after it says what to do."""
    x = backend.randn((3, 4, 5), std=2.0, rng=numpy.random.default_rng(0))
    layer = GELU()
    y = layer(x)
    kept = [name for name, value in vars(layer).items() if isinstance(value, numpy.ndarray)]
    assert kept == ["dydx"]
    y_eval = layer.eval()(x)
    assert layer.dydx is None
    numpy.testing.assert_array_equal(y_eval, y)
    with pytest.raises(RuntimeError, match=r"training mode.*Call \.train\(\)"):
        layer.backward(numpy.ones_like(x))


def test_one_gelu_forward_serves_one_backward():
    """The backward writes dx over the derivative it kept, so a second backward has none to use: it says
    so instead of multiplying by a gradient."""
    x = backend.randn((3, 4, 5), std=2.0, rng=numpy.random.default_rng(0))
    layer = GELU()
    layer(x)
    derivative = layer.dydx
    dx = layer.backward(numpy.full_like(x, 2.0))
    assert dx is derivative and layer.dydx is None          # dx took the derivative's memory
    with pytest.raises(RuntimeError, match="its backward has already run"):
        layer.backward(numpy.ones_like(x))


def test_relu_forward_and_backward():
    relu = ReLU()
    y = relu(numpy.array([-2.0, -0.0, 0.5, 3.0], dtype=numpy.float32))
    dx = relu.backward(numpy.array([10.0, 10.0, 10.0, 10.0], dtype=numpy.float32))
    numpy.testing.assert_array_equal(y, [0.0, 0.0, 0.5, 3.0])
    numpy.testing.assert_array_equal(dx, [0.0, 0.0, 10.0, 10.0])  # the gradient at 0 is taken as 0


def test_gelu_is_close_to_the_exact_erf_form():
    xs = numpy.linspace(-6, 6, 121)
    with backend.using("float64"):
        y = GELU()(xs)
    exact = [0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs]  # GELU(x) = x Φ(x)
    numpy.testing.assert_allclose(y, exact, rtol=0, atol=1e-3)
    assert numpy.abs(y - exact).max() > 0  # (the tanh form is an approximation, not the erf form)


def gelu_reference(x: float) -> tuple:
    """GELU (tanh form) and its slope at x, in Python's float64, written from the math alone:
    y = ½x(1 + tanh u) = x·σ(2u); y' = ½(1 + tanh u) + ½x(1 − tanh²u)·du/dx."""
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    du_dx = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x**2)
    s = 1 / (1 + math.exp(-2 * u))                          # ½(1 + tanh u), without its cancellation
    return x * s, s + x * 2 * s * (1 - s) * du_dx          # ½(1 − tanh²u) = 2s(1 − s)


@pytest.mark.parametrize("backend_name", ["numpy", "standin"])
def test_gelu_keeps_its_small_negative_values_in_float32(backend_name):
    """Between x = −9 and −3, GELU and its slope are 1e-28 to 1e-2: float32 holds them, and the layer
    gives them to float32's precision, where ½(1 + tanh u) would be a difference of two numbers near 1
    (at x = −5 it is ~5e-8, and no digit of it survives in float32)."""
    xs = numpy.linspace(-9.0, -3.0, 61)
    with backend.using("float32", backend=backend_name):
        layer = GELU()
        y = backend.to_numpy(layer(backend.asarray(xs, dtype="float32")))
        slope = backend.to_numpy(layer.dydx)
    expected_y, expected_slope = zip(*(gelu_reference(x) for x in xs))
    numpy.testing.assert_allclose(y, expected_y, rtol=2e-5)
    numpy.testing.assert_allclose(slope, expected_slope, rtol=2e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_far_out_gives_its_limits_without_a_warning(dtype):
    """Far below 0, e^(−2u) overflows to inf, and that is the right value: y = −0 and y' = 0 there, with
    no warning; far above 0, y = x and y' = 1."""
    x = numpy.array([-1e4, -200.0, -50.0, -30.0, 11.0, 50.0, 200.0], dtype=dtype)
    with backend.using(dtype), warnings.catch_warnings():
        warnings.simplefilter("error")                      # a RuntimeWarning would fail the test
        layer = GELU()
        y, slope = layer(x), layer.dydx
    numpy.testing.assert_array_equal(y, [0, 0, 0, 0, 11, 50, 200])
    numpy.testing.assert_array_equal(slope, [0, 0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("activation", [ReLU, GELU])
def test_float32_stays_float32(activation):
    assert_stays_float32(activation(), {"x": backend.randn((2, 3, 4))})


def test_unknown_activation_is_explained():
    assert isinstance(make_activation("gelu"), GELU)
    with pytest.raises(ValueError, match=r"Unknown activation 'swish'; choose one of \['gelu', 'relu'\]"):
        make_activation("swish")


@pytest.mark.parametrize("activation", [ReLU, GELU])
def test_matches_torch(torch, activation):
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        layer = activation()
        x = backend.randn((3, 5), std=3.0, rng=rng)
        dy = backend.randn((3, 5), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)

    reference = torch.nn.ReLU() if activation is ReLU else torch.nn.GELU(approximate="tanh")
    x_t = to_torch(torch, x)
    y_t = reference(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, activation.__name__, "output")
    assert_matches_torch(dx, x_t.grad, activation.__name__, "dx")
