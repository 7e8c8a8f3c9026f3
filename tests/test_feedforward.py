"""FeedForward: y = act(x W₁ + b₁) W₂ + b₂, position by position."""
import tracemalloc

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     set_torch_param, to_torch)
from tinytransformer import FeedForward, Module, backend


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_gradients(activation):
    rng = numpy.random.default_rng(0)
    with backend.using("float64"):
        layer = FeedForward(d_model=3, d_hidden=5, activation=activation, rng=rng)
        x = backend.randn((2, 3, 3), rng=rng)
        errors = assert_gradients_check(layer, {"x": x}, name=f"FeedForward ({activation})")
        pre_activation = x @ layer.fc1.weight.data + layer.fc1.bias.data
        assert numpy.abs(pre_activation).min() > 1e-3  # ReLU's kink at 0 is out of reach of the nudges h
    assert set(errors) == {"x", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=2), d_model=st.integers(2, 4),
       d_hidden=st.integers(2, 6), bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gelu_gradients_for_random_sizes(shape, d_model, d_hidden, bias, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = FeedForward(d_model, d_hidden, activation="gelu", bias=bias, rng=rng)
        x = backend.randn((*shape, d_model), rng=rng)
        assert_gradients_check(layer, {"x": x}, name="FeedForward (gelu)", seed=seed)


class FeedForwardWithFixedDropout(Module):
    """Re-seeds the dropout generator before each forward so finite differences see one fixed mask."""

    def __init__(self, seed, **kwargs):
        self.ffn = FeedForward(**kwargs)
        self.seed = seed

    def forward(self, x):
        self.ffn.dropout.rng = backend.DeviceRNG(self.seed)
        return self.ffn(x)

    def backward(self, dy):
        return self.ffn.backward(dy)


def test_gradients_with_dropout():
    rng = numpy.random.default_rng(1)
    with backend.using("float64"):
        layer = FeedForwardWithFixedDropout(seed=3, d_model=3, d_hidden=5, dropout=0.4, rng=rng)
        assert_gradients_check(layer, {"x": backend.randn((2, 3, 3), rng=rng)}, name="FeedForward (gelu)")
        assert (layer.ffn.dropout.mask == 0).any()  # something really was dropped


def test_hidden_size_is_four_times_d_model_by_default():
    layer = FeedForward(d_model=8)
    assert layer.fc1.weight.shape == (8, 32) and layer.fc2.weight.shape == (32, 8)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_float32_stays_float32(activation):
    assert_stays_float32(FeedForward(4, activation=activation, dropout=0.1), {"x": backend.randn((2, 3, 4))})


def test_wrong_last_dimension_is_explained():
    with pytest.raises(ValueError, match=r"Linear expects input with last dimension in_features=4"):
        FeedForward(4)(backend.randn((2, 3, 5)))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_matches_torch(torch, activation):
    rng = numpy.random.default_rng(2)
    with backend.using("float64"):
        layer = FeedForward(d_model=4, d_hidden=6, activation=activation, rng=rng)
        x, dy = backend.randn((2, 3, 4), rng=rng), backend.randn((2, 3, 4), rng=rng)
        y = layer(x)
        dx = layer.backward(dy)

    nn = torch.nn
    act = nn.ReLU() if activation == "relu" else nn.GELU(approximate="tanh")
    reference = nn.Sequential(nn.Linear(4, 6, dtype=torch.float64), act, nn.Linear(6, 4, dtype=torch.float64))
    for ours, theirs in [(layer.fc1, reference[0]), (layer.fc2, reference[2])]:
        set_torch_param(torch, theirs.weight, ours.weight.data.T)  # torch: [out, in]
        set_torch_param(torch, theirs.bias, ours.bias.data)
    x_t = to_torch(torch, x)
    y_t = reference(x_t)
    y_t.backward(to_torch(torch, dy, requires_grad=False))

    name = f"FeedForward ({activation})"
    assert_matches_torch(y, y_t, name, "output")
    assert_matches_torch(dx, x_t.grad, name, "dx")
    for ours, theirs, which in [(layer.fc1, reference[0], "fc1"), (layer.fc2, reference[2], "fc2")]:
        assert_matches_torch(ours.weight.grad, theirs.weight.grad.T, name, f"d{which}.weight")
        assert_matches_torch(ours.bias.grad, theirs.bias.grad, name, f"d{which}.bias")


def test_the_backward_holds_one_hidden_sized_array_at_a_time():
    """A step's memory peaks in its backward, and the FFN's [N, d_hidden] arrays are the block's largest.
    Its backward adds one at a time: fc2's dx, which GELU multiplies into the derivative it kept (written
    over it), and which is let go before fc1's backward. Measured with tracemalloc, which sees NumPy's
    arrays: a second such array (a new dx in GELU, or fc2's dx kept through fc1) would be 1.25 or more."""
    with backend.using("float32"):
        ffn = FeedForward(64, 256, "gelu", bias=False, rng=numpy.random.default_rng(0))
        x = backend.randn((8, 128, 64), rng=numpy.random.default_rng(1))
        ffn(x)
        dy = numpy.ones_like(x)
        tracemalloc.start()
        try:
            ffn.backward(dy)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    hidden_bytes = 8 * 128 * 256 * 4
    assert peak < 1.1 * hidden_bytes
