"""Embedding: y[b, t] = W[idx[b, t]]; its backward is a scatter-add into the rows that were read."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     set_torch_param, to_torch)
from tinytransformer import Embedding, backend

# Token 2 appears three times and token 0 twice: their gradients must add up, not overwrite each other.
REPEATED_IDS = [[2, 0, 2], [4, 2, 0]]


def test_gradients_with_repeated_token_ids():
    with backend.using("float64"):
        layer = Embedding(vocab_size=5, d_model=3, rng=numpy.random.default_rng(0))
        idx = backend.asarray(REPEATED_IDS)
        errors = assert_gradients_check(layer, {"idx": idx})
    assert set(errors) == {"weight"}  # integer ids get no gradient


def test_repeated_ids_accumulate_their_gradients():
    layer = Embedding(vocab_size=5, d_model=3)
    idx = numpy.array(REPEATED_IDS)
    dy = backend.randn((2, 3, 3), rng=numpy.random.default_rng(1))
    layer(idx)
    layer.backward(dy)
    expected_row_2 = dy[0, 0] + dy[0, 2] + dy[1, 1]
    numpy.testing.assert_allclose(layer.weight.grad[2], expected_row_2, rtol=1e-6)
    numpy.testing.assert_allclose(layer.weight.grad[0], dy[0, 1] + dy[1, 2], rtol=1e-6)
    numpy.testing.assert_array_equal(layer.weight.grad[[1, 3]], 0.0)  # rows never read get nothing
    # the mistake the scatter-add avoids: plain fancy-index += keeps a single one of the repeats
    naive = numpy.zeros_like(layer.weight.grad)
    naive[idx.reshape(-1)] += dy.reshape(-1, 3)
    assert not numpy.allclose(naive[2], expected_row_2)


def test_forward_reads_rows():
    layer = Embedding(vocab_size=5, d_model=3)
    y = layer(numpy.array(REPEATED_IDS))
    assert y.shape == (2, 3, 3)
    numpy.testing.assert_array_equal(y[1, 0], layer.weight.data[4])
    numpy.testing.assert_array_equal(y[0, 0], y[0, 2])  # the same token, the same vector


@GRADIENT_PROPERTY
@given(batch=st.integers(1, 3), length=st.integers(1, 5), vocab_size=st.integers(1, 6),
       d_model=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_gradients_for_random_ids(batch, length, vocab_size, d_model, seed):
    rng = numpy.random.default_rng(seed)
    with backend.using("float64"):
        layer = Embedding(vocab_size, d_model, rng=rng)
        idx = backend.asarray(rng.integers(0, vocab_size, (batch, length)))
        assert_gradients_check(layer, {"idx": idx}, seed=seed)


def test_float32_stays_float32():
    assert_stays_float32(Embedding(5, 3), {"idx": numpy.array(REPEATED_IDS)})


@pytest.mark.parametrize("bad_id", [-1, 5, 1000])
def test_token_id_outside_the_vocabulary_is_explained(bad_id):
    layer = Embedding(vocab_size=5, d_model=3)
    with pytest.raises(IndexError, match=rf"Embedding: token id {bad_id} is outside the vocabulary \[0, 5\)"):
        layer(numpy.array([[0, bad_id, 1]]))


def test_float_token_ids_are_refused():
    with pytest.raises(TypeError, match="Embedding expects integer token ids, got dtype float"):
        Embedding(5, 3)(numpy.array([[0.0, 1.0]]))


def test_matches_torch(torch):
    with backend.using("float64"):
        layer = Embedding(vocab_size=5, d_model=3, rng=numpy.random.default_rng(0))
        idx = backend.asarray(REPEATED_IDS)
        dy = backend.randn((2, 3, 3), rng=numpy.random.default_rng(1))
        y = layer(idx)
        layer.backward(dy)

    reference = torch.nn.Embedding(5, 3, dtype=torch.float64)
    set_torch_param(torch, reference.weight, layer.weight.data)
    y_t = reference(torch.as_tensor(backend.to_numpy(idx)))
    y_t.backward(to_torch(torch, dy, requires_grad=False))
    assert_matches_torch(y, y_t, "Embedding", "output")
    assert_matches_torch(layer.weight.grad, reference.weight.grad, "Embedding", "dW")
