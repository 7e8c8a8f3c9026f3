"""The gradient checker is what every other test trusts, so it is checked first: on functions whose
derivative is known, and on layers whose backward is deliberately wrong, which it must catch."""
import numpy
import pytest

from helpers import GRAD_TOL
from tinytransformer import Linear, backend, check_layer, numerical_gradient, relative_error


def test_relative_error_is_per_tensor():
    a = numpy.array([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    # ‖a − b‖ / (‖a‖ + ‖b‖) = ‖(3, 4)‖ / (‖(3, 4)‖ + 0) = 1: nothing in common
    assert relative_error(a, numpy.zeros(2)) == pytest.approx(1.0)
    # ‖(0, 1)‖ / (‖(3, 4)‖ + ‖(3, 5)‖) = 1 / (5 + √34)
    assert relative_error(a, numpy.array([3.0, 5.0])) == pytest.approx(1 / (5 + 34 ** 0.5))


def test_relative_error_treats_two_near_zero_gradients_as_equal():
    # e.g. the key bias in attention: 0 in theory, ~1e-17 analytically, ~1e-11 by finite differences
    assert relative_error(numpy.array([1e-17, -1e-17]), numpy.array([3e-11, 0.0])) == 0.0
    assert relative_error(numpy.array([1e-6, 0.0]), numpy.array([0.0, 0.0])) == pytest.approx(1.0)


def test_numerical_gradient_of_a_known_function():
    with backend.using("float64"):
        x = backend.randn((3, 4), rng=numpy.random.default_rng(1))
        before = x.copy()
        grad = numerical_gradient(lambda: (x ** 3).sum() + (2 * x).sum(), x)
        assert relative_error(grad, 3 * x ** 2 + 2) < 1e-9  # d/dx (x³ + 2x) = 3x² + 2
        numpy.testing.assert_array_equal(x, before)          # every nudge was undone


def test_fourth_order_differences_are_more_accurate():
    with backend.using("float64"):
        x = backend.randn((5,), rng=numpy.random.default_rng(2))
        exact = numpy.cos(x)                                  # d/dx sin x
        second = numerical_gradient(lambda: numpy.sin(x).sum(), x, h=1e-3)
        fourth = numerical_gradient(lambda: numpy.sin(x).sum(), x, h=1e-3, order=4)
    assert relative_error(second, exact) > 1e-8               # error O(h²): ~1e-7 here
    assert relative_error(fourth, exact) < 1e-11              # error O(h⁴): ~1e-13 here
    with pytest.raises(ValueError, match="order must be 2 or 4, got 3"):
        numerical_gradient(lambda: x.sum(), x, order=3)


def test_numerical_gradient_refuses_float32():
    x = backend.randn((2, 2))
    with pytest.raises(TypeError, match="Gradient checks need float64"):
        numerical_gradient(lambda: x.sum(), x)


class LinearForgetsBias(Linear):
    """backward leaves the bias without its gradient."""

    def backward(self, dy):
        x2, dy2 = self.x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)
        self.weight.grad += x2.T @ dy2
        return dy @ self.weight.data.T


class LinearTransposesWeightGradient(Linear):
    """backward computes dW = (xᵀ dy)ᵀ: the right shape for a square layer, the wrong numbers."""

    def backward(self, dy):
        x2, dy2 = self.x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)
        self.weight.grad += (x2.T @ dy2).T
        self.bias.grad += dy2.sum(axis=0)
        return dy @ self.weight.data.T


class LinearForgetsTranspose(Linear):
    """backward returns dx = dy W instead of dy Wᵀ (again square, so only the numbers are wrong)."""

    def backward(self, dy):
        x2, dy2 = self.x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)
        self.weight.grad += x2.T @ dy2
        self.bias.grad += dy2.sum(axis=0)
        return dy @ self.weight.data


@pytest.mark.parametrize("broken_layer, wrong", [(LinearForgetsBias, "bias"),
                                                 (LinearTransposesWeightGradient, "weight"),
                                                 (LinearForgetsTranspose, "x")])
def test_check_layer_catches_a_wrong_backward(broken_layer, wrong):
    with backend.using("float64"):
        layer = broken_layer(4, 4, rng=numpy.random.default_rng(0))
        x = backend.randn((2, 3, 4), rng=numpy.random.default_rng(1))
        errors = check_layer(layer, {"x": x})
    assert errors[wrong] > 1e-2, errors                 # far above GRAD_TOL: caught
    right = {name: e for name, e in errors.items() if name != wrong}
    assert all(e <= GRAD_TOL for e in right.values()), errors  # and only the broken gradient is blamed


def test_check_layer_passes_the_correct_linear():
    with backend.using("float64"):
        layer = Linear(4, 4, rng=numpy.random.default_rng(0))
        errors = check_layer(layer, {"x": backend.randn((2, 3, 4), rng=numpy.random.default_rng(1))})
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) <= GRAD_TOL


def test_check_layer_refuses_a_backward_with_too_few_gradients():
    class OneGradientForTwoInputs(Linear):
        def forward(self, x, y):
            return super().forward(x) + y

    with backend.using("float64"):
        layer = OneGradientForTwoInputs(3, 3)
        x, y = backend.randn((2, 3)), backend.randn((2, 3))
        with pytest.raises(ValueError, match="backward returned 1 gradient"):
            check_layer(layer, {"x": x, "y": y})
