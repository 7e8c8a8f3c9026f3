"""row_sum, row_mean and row_max: faster spellings of sums and maxima along the last axis, held equal to
NumPy's sum and max."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytransformer import backend
from tinytransformer.layers.reductions import row_max, row_mean, row_sum


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float32", "float64"]))
def test_row_sum_and_row_mean_equal_numpy(shape, seed, dtype):
    rng = numpy.random.default_rng(seed)
    a, b = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-13
    for got, expected in [(row_sum(a), a.sum(axis=-1, keepdims=True)),
                          (row_sum(a, b), (a * b).sum(axis=-1, keepdims=True)),
                          (row_mean(a), a.mean(axis=-1, keepdims=True)),
                          (row_mean(a, b), (a * b).mean(axis=-1, keepdims=True))]:
        assert got.shape == expected.shape and got.dtype == expected.dtype
        numpy.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * numpy.abs(a).sum())


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float32", "float64"]))
def test_row_max_equals_numpy_max_bit_for_bit(shape, seed, dtype):
    rng = numpy.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    a[rng.random(shape) < 0.3] = -numpy.inf                      # masked scores; some rows all masked
    got = row_max(a)
    assert got.shape == tuple(shape[:-1]) + (1,) and got.dtype == a.dtype
    numpy.testing.assert_array_equal(got, a.max(axis=-1, keepdims=True))


def test_row_max_of_a_row_with_nan_is_nan_as_max_gives_it():
    a = numpy.array([[1.0, numpy.nan, 3.0], [numpy.nan, -1.0, 2.0], [0.0, 5.0, 1.0]], dtype="float32")
    numpy.testing.assert_array_equal(row_max(a), a.max(axis=-1, keepdims=True))   # NaN, NaN, 5


def test_row_sum_of_a_transposed_view():
    a = numpy.arange(24.0).reshape(2, 3, 4).transpose(0, 2, 1)  # not contiguous along the summed axis
    numpy.testing.assert_array_equal(row_sum(a), a.sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_on_the_standin_device(dtype):
    host = numpy.random.default_rng(0).standard_normal((3, 5, 8)).astype(dtype)
    with backend.using(backend="standin"):
        x = backend.asarray(host)
        got, largest = row_mean(x, x), row_max(x)
        assert isinstance(got, backend.xp.ndarray) and isinstance(largest, backend.xp.ndarray)
        numpy.testing.assert_allclose(backend.to_numpy(got), (host * host).mean(axis=-1, keepdims=True),
                                      rtol=1e-5)
        numpy.testing.assert_array_equal(backend.to_numpy(largest), host.max(axis=-1, keepdims=True))
