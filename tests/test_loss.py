"""CrossEntropyLoss: the mean over kept targets of −log softmax(z)[y]; ignore_index entries count for nothing."""
import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import (GRADIENT_PROPERTY, assert_gradients_check, assert_matches_torch, assert_stays_float32,
                     to_torch)
from tinytransformer import CrossEntropyLoss, backend

IGNORE = -100
# [B=2, T=3] targets over V=5 classes, two of them ignored (e.g. padding)
TARGETS = [[1, IGNORE, 4], [0, 4, IGNORE]]


def test_gradients_with_ignored_targets():
    with backend.using("float64"):
        loss = CrossEntropyLoss(ignore_index=IGNORE)
        logits = backend.randn((2, 3, 5), std=2.0, rng=numpy.random.default_rng(0))
        errors = assert_gradients_check(loss, {"logits": logits, "targets": backend.asarray(TARGETS)})
        dlogits = loss.backward(1.0)
    assert set(errors) == {"logits"}
    numpy.testing.assert_array_equal(dlogits[0, 1], 0.0)  # ignored positions get no gradient
    numpy.testing.assert_array_equal(dlogits[1, 2], 0.0)


# Logits with std ≤ 2: at larger scales a lone kept row can be saturated (p ≈ 1e-5 off the target), its
# gradient ~1e-5 and below what finite differences resolve; test_huge_logits_do_not_overflow covers that.
@GRADIENT_PROPERTY
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=2), vocab_size=st.integers(1, 6),
       ignored=st.floats(0.0, 1.0), scale=st.floats(0.1, 2.0), seed=st.integers(0, 2**32 - 1))
def test_gradients_for_random_shapes(shape, vocab_size, ignored, scale, seed):
    rng = numpy.random.default_rng(seed)
    targets = rng.integers(0, vocab_size, shape)
    targets[rng.random(shape) < ignored] = IGNORE
    with backend.using("float64"):
        logits = backend.randn((*shape, vocab_size), std=scale, rng=rng)
        assert_gradients_check(CrossEntropyLoss(), {"logits": logits, "targets": targets},
                               name="CrossEntropyLoss", seed=seed)


def test_value_is_the_mean_negative_log_likelihood_of_the_kept_targets():
    logits = numpy.random.default_rng(1).standard_normal((2, 3, 5))
    with backend.using("float64"):
        value = float(CrossEntropyLoss()(logits, numpy.array(TARGETS)))
    kept = [(b, t) for b in range(2) for t in range(3) if TARGETS[b][t] != IGNORE]
    expected = sum(math.log(sum(math.exp(z) for z in logits[b, t])) - logits[b, t, TARGETS[b][t]]
                   for b, t in kept) / len(kept)
    assert value == pytest.approx(expected, rel=1e-12)


def test_huge_logits_do_not_overflow():
    with backend.using("float64"):
        loss = CrossEntropyLoss()
        value = loss(numpy.array([[1000.0, 0.0, -1000.0]]), numpy.array([1]))
        dlogits = loss.backward()
    assert value == pytest.approx(1000.0)  # log Σ exp ≈ 1000, minus z_y = 0
    numpy.testing.assert_allclose(dlogits, [[1.0, -1.0, 0.0]], atol=1e-15)


def test_every_target_ignored_gives_zero_loss_and_zero_gradient():
    loss = CrossEntropyLoss(ignore_index=IGNORE)
    value = loss(backend.randn((2, 4)), numpy.array([IGNORE, IGNORE]))
    assert float(value) == 0.0
    numpy.testing.assert_array_equal(loss.backward(), 0.0)


def test_upstream_gradient_scales_the_result():
    with backend.using("float64"):
        loss = CrossEntropyLoss()
        logits = backend.randn((3, 4), rng=numpy.random.default_rng(2))
        loss(logits, numpy.array([0, 3, 1]))
        numpy.testing.assert_allclose(loss.backward(2.5), 2.5 * loss.backward(1.0), rtol=1e-15)


def test_float32_stays_float32():
    loss = CrossEntropyLoss()
    assert_stays_float32(loss, {"logits": backend.randn((2, 3, 5)), "targets": numpy.array(TARGETS)})
    assert loss.backward(1.0).dtype == numpy.float32


@pytest.mark.parametrize("bad_target", [-1, 5])
def test_target_outside_the_vocabulary_is_explained(bad_target):
    with pytest.raises(IndexError, match=rf"CrossEntropyLoss \(targets\): token id {bad_target} is outside "
                                         r"the vocabulary \[0, 5\)"):
        CrossEntropyLoss()(backend.randn((2, 5)), numpy.array([0, bad_target]))


def test_targets_of_the_wrong_shape_are_explained():
    with pytest.raises(ValueError, match=r"targets \(2, 4\) must have the shape of logits without the last "
                                         r"axis, \(2, 3\)"):
        CrossEntropyLoss()(backend.randn((2, 3, 5)), numpy.zeros((2, 4), dtype=int))


def test_float_targets_are_refused():
    with pytest.raises(TypeError, match="expects integer token ids"):
        CrossEntropyLoss()(backend.randn((2, 5)), numpy.array([0.0, 1.0]))


def test_matches_torch(torch):
    F = torch.nn.functional
    rng = numpy.random.default_rng(3)
    with backend.using("float64"):
        loss = CrossEntropyLoss(ignore_index=IGNORE)
        logits = backend.randn((2, 3, 5), std=2.0, rng=rng)
        value = loss(logits, numpy.array(TARGETS))
        dlogits = loss.backward(1.0)

    logits_t = to_torch(torch, logits)
    value_t = F.cross_entropy(logits_t.reshape(-1, 5), torch.as_tensor(TARGETS).reshape(-1), ignore_index=IGNORE)
    value_t.backward()
    assert_matches_torch(backend.asarray(value), value_t, "CrossEntropyLoss", "loss")
    assert_matches_torch(dlogits, logits_t.grad, "CrossEntropyLoss", "dlogits")
