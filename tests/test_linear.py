"""Linear: y = x W + b, with W stored [in, out]."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import (assert_gradients_check, assert_matches_torch, assert_stays_float32, set_torch_param,
                     to_torch)
from tinytransformer import Linear, backend


@pytest.mark.parametrize("bias", [True, False])
def test_gradients(bias):
    with backend.using("float64"):
        layer = Linear(4, 3, bias=bias, rng=numpy.random.default_rng(0))
        x = backend.randn((2, 3, 4), rng=numpy.random.default_rng(1))  # leading axes [B, T] are flattened
        errors = assert_gradients_check(layer, {"x": x}, name="Linear")
    assert set(errors) == ({"x", "weight", "bias"} if bias else {"x", "weight"})


def test_forward_is_x_times_w_plus_b():
    layer = Linear(3, 2)
    x = backend.randn((5, 3))
    numpy.testing.assert_allclose(layer(x), x @ layer.weight.data + layer.bias.data, rtol=1e-6)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)


def test_initialisation_is_uniform_within_one_over_sqrt_in():
    layer = Linear(16, 64, rng=numpy.random.default_rng(0))
    bound = 1 / 16 ** 0.5
    assert numpy.abs(layer.weight.data).max() <= bound
    assert numpy.abs(layer.weight.data).max() > 0.9 * bound  # spread over the whole range, not squeezed


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), n_in=st.integers(1, 5),
       n_out=st.integers(1, 5), bias=st.booleans())
def test_float32_stays_float32(shape, n_in, n_out, bias):
    layer = Linear(n_in, n_out, bias=bias)
    assert_stays_float32(layer, {"x": backend.randn((*shape, n_in))})


def test_wrong_last_dimension_is_explained():
    layer = Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear expects input with last dimension in_features=4, "
                                         r"got shape \(2, 5\)"):
        layer(backend.randn((2, 5)))


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch(torch, bias):
    with backend.using("float64"):
        layer = Linear(4, 3, bias=bias, rng=numpy.random.default_rng(0))
        x = backend.randn((2, 3, 4), rng=numpy.random.default_rng(1))
        dy = backend.randn((2, 3, 3), rng=numpy.random.default_rng(2))
        y = layer(x)
        dx = layer.backward(dy)

    reference = torch.nn.Linear(4, 3, bias=bias, dtype=torch.float64)
    set_torch_param(torch, reference.weight, layer.weight.data.T)  # PyTorch stores W as [out, in]
    if bias:
        set_torch_param(torch, reference.bias, layer.bias.data)
    x_t = to_torch(torch, x)
    y_t = reference(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))

    assert_matches_torch(y, y_t, "Linear", "output")
    assert_matches_torch(dx, x_t.grad, "Linear", "dx")
    assert_matches_torch(layer.weight.grad, reference.weight.grad.T, "Linear", "dW")
    if bias:
        assert_matches_torch(layer.bias.grad, reference.bias.grad, "Linear", "db")
