"""Positional encodings: y = x + P[:T], with P the fixed sinusoidal table or a learned one."""
import math

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_gradients_check, assert_stays_float32
from tinytransformer import (LearnedPositionalEncoding, PositionalEncoding, SinusoidalPositionalEncoding,
                             backend, sinusoidal_table)


def paper_formula(t: int, column: int, d_model: int) -> float:
    """"Attention Is All You Need", section 3.5, one entry at a time in plain Python:
    PE(t, 2i) = sin(t / 10000^(2i/d_model)),  PE(t, 2i+1) = cos(t / 10000^(2i/d_model))."""
    two_i = column - column % 2
    angle = t / 10000 ** (two_i / d_model)
    return math.sin(angle) if column % 2 == 0 else math.cos(angle)


@settings(max_examples=25, deadline=None)
@given(length=st.integers(1, 40), d_model=st.integers(1, 33))
def test_sinusoidal_table_is_the_2017_formula(length, d_model):
    table = sinusoidal_table(length, d_model)
    expected = [[paper_formula(t, c, d_model) for c in range(d_model)] for t in range(length)]
    numpy.testing.assert_allclose(table, expected, rtol=0, atol=1e-12)


def test_sinusoidal_adds_the_table_to_every_sequence_of_the_batch():
    with backend.using("float64"):
        encoding = SinusoidalPositionalEncoding(d_model=6)
        x = backend.randn((2, 4, 6))
        y = encoding(x)
    numpy.testing.assert_allclose(y - x, numpy.broadcast_to(sinusoidal_table(4, 6), (2, 4, 6)), atol=1e-15)
    assert encoding.parameters() == []  # fixed: nothing to learn


def test_sinusoidal_grows_its_table_for_longer_sequences():
    with backend.using("float64"):
        encoding = SinusoidalPositionalEncoding(d_model=4)
        encoding(backend.randn((1, 3, 4)))
        y = encoding(numpy.zeros((1, 50, 4)))
    numpy.testing.assert_allclose(y[0], sinusoidal_table(50, 4), atol=1e-15)


def test_sinusoidal_gradients():
    with backend.using("float64"):
        encoding = SinusoidalPositionalEncoding(d_model=5)
        assert_gradients_check(encoding, {"x": backend.randn((2, 3, 5), rng=numpy.random.default_rng(1))})


@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 4)])  # with and without a batch axis
def test_learned_gradients(shape):
    with backend.using("float64"):
        encoding = LearnedPositionalEncoding(block_size=6, d_model=4, rng=numpy.random.default_rng(0))
        x = backend.randn(shape, rng=numpy.random.default_rng(1))
        assert_gradients_check(encoding, {"x": x})
        # rows past the sequence length were not used, so they get no gradient
        numpy.testing.assert_array_equal(encoding.weight.grad[3:], 0.0)


def test_learned_row_gradient_is_the_sum_over_the_batch():
    encoding = LearnedPositionalEncoding(block_size=4, d_model=2)
    dy = backend.randn((3, 4, 2), rng=numpy.random.default_rng(1))
    encoding(backend.randn((3, 4, 2)))
    dx = encoding.backward(dy)
    numpy.testing.assert_allclose(encoding.weight.grad, dy.sum(axis=0), rtol=1e-6)
    numpy.testing.assert_array_equal(dx, dy)


def test_start_offsets_the_positions():
    """Generation with a KV cache feeds positions start .. start+T−1 only."""
    with backend.using("float64"):
        x = backend.randn((1, 2, 4), rng=numpy.random.default_rng(0))
        sinusoidal = SinusoidalPositionalEncoding(4)
        numpy.testing.assert_allclose(sinusoidal(x, start=5) - x, sinusoidal_table(7, 4)[None, 5:], atol=1e-15)
        learned = LearnedPositionalEncoding(block_size=8, d_model=4, rng=numpy.random.default_rng(1))
        numpy.testing.assert_allclose(learned(x, start=5) - x, learned.weight.data[None, 5:7], atol=1e-15)
        learned.backward(numpy.ones((1, 2, 4)))
    numpy.testing.assert_array_equal(learned.weight.grad.sum(axis=1), [0, 0, 0, 0, 0, 4, 4, 0])
    with pytest.raises(ValueError, match="model context is 8, got 9"):
        learned(x, start=7)


@pytest.mark.parametrize("make", [lambda: SinusoidalPositionalEncoding(3),
                                  lambda: LearnedPositionalEncoding(5, 3)])
def test_float32_stays_float32(make):
    assert_stays_float32(make(), {"x": backend.randn((2, 4, 3))})


def test_too_long_sequence_is_explained():
    encoding = LearnedPositionalEncoding(block_size=8, d_model=4)
    with pytest.raises(ValueError, match="model context is 8, got 9"):
        encoding(backend.randn((1, 9, 4)))


def test_wrong_last_dimension_is_explained():
    with pytest.raises(ValueError, match=r"expects input with last dimension d_model=4, got shape \(1, 3, 5\)"):
        SinusoidalPositionalEncoding(4)(backend.randn((1, 3, 5)))


def test_positional_encoding_by_name():
    assert isinstance(PositionalEncoding("sinusoidal", 4), SinusoidalPositionalEncoding)
    assert PositionalEncoding("learned", 4, block_size=8).weight.shape == (8, 4)
    with pytest.raises(ValueError, match="needs block_size"):
        PositionalEncoding("learned", 4)
    with pytest.raises(ValueError, match="Unknown positional encoding 'rotary'"):
        PositionalEncoding("rotary", 4)
