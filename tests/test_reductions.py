"""row_sum and row_mean: einsum spellings of sums along the last axis, held equal to NumPy's sum."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytransformer import backend
from tinytransformer.layers.reductions import row_mean, row_sum


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


def test_row_sum_of_a_transposed_view():
    a = numpy.arange(24.0).reshape(2, 3, 4).transpose(0, 2, 1)  # not contiguous along the summed axis
    numpy.testing.assert_array_equal(row_sum(a), a.sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_on_the_standin_device(dtype):
    host = numpy.random.default_rng(0).standard_normal((3, 5, 8)).astype(dtype)
    with backend.using(backend="standin"):
        x = backend.asarray(host)
        got = row_mean(x, x)
        assert isinstance(got, backend.xp.ndarray)
        numpy.testing.assert_allclose(backend.to_numpy(got), (host * host).mean(axis=-1, keepdims=True),
                                      rtol=1e-5)
