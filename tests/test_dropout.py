"""Dropout: training zeroes each entry with probability p and scales the rest by 1/(1 − p);
evaluation is the identity."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_gradients_check, assert_stays_float32
from tinytransformer import Dropout, Module, backend


class DropoutWithFixedMask(Module):
    """Dropout draws a new mask on every forward, so f(x ± h) would each drop different entries and the
    finite differences would be noise. Re-seeding the generator before each forward fixes the mask."""

    def __init__(self, p, seed):
        self.drop = Dropout(p)
        self.seed = seed

    def forward(self, x):
        self.drop.rng = backend.DeviceRNG(self.seed)
        return self.drop(x)

    def backward(self, dy):
        return self.drop.backward(dy)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_gradients_in_training_mode(p):
    with backend.using("float64"):
        layer = DropoutWithFixedMask(p, seed=1)
        x = backend.randn((2, 3, 4), rng=numpy.random.default_rng(0))
        assert_gradients_check(layer, {"x": x}, name="Dropout")
        mask = layer.drop.mask
    assert (mask == 0).any() and (mask != 0).any()           # a real mix of dropped and kept entries
    numpy.testing.assert_allclose(mask[mask != 0], 1 / (1 - p))  # the kept ones scaled by 1/(1 − p)


def test_a_new_mask_on_every_forward_and_the_same_masks_for_the_same_seed():
    x = numpy.ones((1000,), dtype=numpy.float32)
    drop, same_seed = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    first, second = drop(x), drop(x)
    assert not numpy.array_equal(first, second)
    numpy.testing.assert_array_equal(same_seed(x), first)
    numpy.testing.assert_array_equal(same_seed(x), second)


def test_backward_uses_the_mask_of_the_forward():
    drop = Dropout(0.3, seed=0)
    y = drop(numpy.ones((50,), dtype=numpy.float32))
    dx = drop.backward(numpy.full((50,), 2.0, dtype=numpy.float32))
    numpy.testing.assert_allclose(dx, 2 * y)  # dx = dy ⊙ m/(1 − p) and y = 1 ⊙ m/(1 − p)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keeps_the_expected_value(p):
    x = numpy.ones((200_000,), dtype=numpy.float64)
    y = Dropout(p, seed=0)(x)
    dropped = (y == 0).mean()
    assert abs(dropped - p) < 0.01        # ~ 5 standard deviations of a Bernoulli mean over 200k draws
    assert abs(y.mean() - 1.0) < 0.02     # inverted dropout: E[y] = x


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), p=st.floats(0.0, 0.99),
       seed=st.integers(0, 2**32 - 1))
def test_evaluation_mode_is_the_identity(shape, p, seed):
    drop = Dropout(p, seed=seed).eval()
    x = backend.randn(shape, rng=numpy.random.default_rng(seed))
    dy = backend.randn(shape, rng=numpy.random.default_rng(seed + 1))
    numpy.testing.assert_array_equal(drop(x), x)
    numpy.testing.assert_array_equal(drop.backward(dy), dy)
    drop.train()
    if p > 0.05:  # and back in training mode it drops again (with 1000 entries, surely at least one)
        assert not numpy.array_equal(drop(numpy.ones(1000, dtype=numpy.float32)), numpy.ones(1000))


def test_p_zero_is_the_identity_in_training_too():
    x = backend.randn((3, 4))
    numpy.testing.assert_array_equal(Dropout(0.0)(x), x)


@pytest.mark.parametrize("training", [True, False])
def test_float32_stays_float32(training):
    assert_stays_float32(Dropout(0.3, seed=0).train(training), {"x": backend.randn((2, 3, 4))})


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_p_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=rf"Dropout probability must be in \[0, 1\), got {p}"):
        Dropout(p)
