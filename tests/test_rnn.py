"""RNN: h_t = tanh(x_t W_xh + h_{t−1} W_hh + b), and the recurrent language model built on it."""
import numpy
import pytest

from helpers.models import assert_model_gradients
from helpers import (GRAD_TOL, assert_gradients_check, assert_matches_torch, assert_stays_float32, set_torch_param,
                     to_torch)
from tinytransformer import RNN, backend, numerical_gradient, relative_error
from tinytransformer.models import RNNConfig, RNNLanguageModel


def rnn_and_input(d_in=3, d_hidden=4, B=2, T=5, seed=0):
    layer = RNN(d_in, d_hidden, rng=numpy.random.default_rng(seed))
    x = backend.randn((B, T, d_in), rng=numpy.random.default_rng(seed + 1))
    return layer, x


def test_gradients():
    with backend.using("float64"):
        layer, x = rnn_and_input()
        # Larger weights than the initialisation, so that the recurrent term matters at every step
        # (a backward that dropped it would still be close with tiny W_hh) without saturating tanh.
        layer.W_hh.data[...] = backend.randn(layer.W_hh.shape, 0.6, numpy.random.default_rng(2))
        errors = assert_gradients_check(layer, {"x": x}, name="RNN")
    assert set(errors) == {"x", "W_xh", "W_hh", "bias"}


def test_gradients_with_an_initial_state():
    with backend.using("float64"):
        layer, x = rnn_and_input()
        h0 = backend.randn((2, 4), 0.5, numpy.random.default_rng(3))
        errors = assert_gradients_check(layer, {"x": x, "h0": h0}, name="RNN")
    assert set(errors) == {"x", "h0", "W_xh", "W_hh", "bias"}


def test_forward_is_the_recurrence_written_out():
    with backend.using("float64"):
        layer, x = rnn_and_input(T=4)
        h = layer(x)
    W_xh, W_hh, b = layer.W_xh.data, layer.W_hh.data, layer.bias.data
    h_prev = numpy.zeros((2, 4))
    for t in range(4):
        h_prev = numpy.tanh(x[:, t] @ W_xh + h_prev @ W_hh + b)
        numpy.testing.assert_allclose(h[:, t], h_prev, rtol=1e-12, atol=1e-12)


def test_position_t_depends_only_on_positions_up_to_t():
    with backend.using("float64"):
        layer, x = rnn_and_input(T=6)
        h = layer(x).copy()
        x[:, 3] += 1.0                                    # change one position
        h_changed = layer(x)
    numpy.testing.assert_array_equal(h_changed[:, :3], h[:, :3])      # the past is untouched
    assert numpy.abs(h_changed[:, 3:] - h[:, 3:]).min(axis=-1).max() > 0  # the rest all moved


def test_the_forward_takes_one_sequential_step_per_position():
    layer, x = rnn_and_input(T=7)
    layer(x)
    assert layer.steps == 7


def test_float32_stays_float32():
    layer, x = rnn_and_input()
    assert_stays_float32(layer, {"x": x})


def test_wrong_shapes_are_explained():
    layer = RNN(3, 4)
    with pytest.raises(ValueError, match=r"RNN expects input with last dimension d_in=3, got shape \(2, 5, 2\)"):
        layer(backend.randn((2, 5, 2)))
    with pytest.raises(ValueError, match=r"RNN expects x of shape \[B, T, d_in\], got \(5, 3\)"):
        layer(backend.randn((5, 3)))
    with pytest.raises(ValueError, match=r"h0 must have shape \[B, d_hidden\] = \[2, 4\], got \(2, 3\)"):
        layer(backend.randn((2, 5, 3)), h0=backend.randn((2, 3)))
    with pytest.raises(TypeError, match="RNN got x of dtype float64, but its weights are float32"):
        layer(backend.randn((2, 5, 3), dtype=numpy.float64))


@pytest.mark.parametrize("with_h0", [False, True])
def test_matches_torch(torch, with_h0):
    with backend.using("float64"):
        layer, x = rnn_and_input(d_in=3, d_hidden=5, B=2, T=6)
        h0 = backend.randn((2, 5), 0.5, numpy.random.default_rng(4)) if with_h0 else None
        dh = backend.randn((2, 6, 5), rng=numpy.random.default_rng(5))
        h = layer(x, h0)
        grads = layer.backward(dh)
        dx, dh0 = grads if with_h0 else (grads, None)

    reference = torch.nn.RNN(3, 5, nonlinearity="tanh", batch_first=True, dtype=torch.float64)
    set_torch_param(torch, reference.weight_ih_l0, layer.W_xh.data.T)   # torch stores [d_hidden, d_in]
    set_torch_param(torch, reference.weight_hh_l0, layer.W_hh.data.T)
    set_torch_param(torch, reference.bias_ih_l0, layer.bias.data)       # torch's two biases add up to b
    set_torch_param(torch, reference.bias_hh_l0, numpy.zeros(5))
    x_t = to_torch(torch, x)
    h0_t = to_torch(torch, h0[None]) if with_h0 else None               # torch: [layers, B, d_hidden]
    h_t, _ = reference(x_t, h0_t)
    h_t.backward(to_torch(torch, dh, requires_grad=False))

    assert_matches_torch(h, h_t, "RNN", "output")
    assert_matches_torch(dx, x_t.grad, "RNN", "dx")
    assert_matches_torch(layer.W_xh.grad, reference.weight_ih_l0.grad.T, "RNN", "dW_xh")
    assert_matches_torch(layer.W_hh.grad, reference.weight_hh_l0.grad.T, "RNN", "dW_hh")
    assert_matches_torch(layer.bias.grad, reference.bias_ih_l0.grad, "RNN", "db")
    if with_h0:
        assert_matches_torch(dh0, h0_t.grad[0], "RNN", "dh0")


def tiny_rnn_lm():
    return RNNLanguageModel(RNNConfig(vocab_size=7, n_embd=4, n_hidden=5, seed=0))


def lm_batch():
    rng = numpy.random.default_rng(6)
    return backend.asarray(rng.integers(0, 7, (2, 6))), backend.asarray(rng.integers(0, 7, (2, 6)))


def test_language_model_gradients():
    idx, targets = lm_batch()
    with backend.using("float64"):
        model = tiny_rnn_lm()
        assert_model_gradients(model, lambda: model(idx, targets)[1], "RNNLanguageModel")


def test_language_model_returns_the_gradient_at_each_token_vector():
    idx, targets = lm_batch()
    with backend.using("float64"):
        model = tiny_rnn_lm()
        model(idx, targets)
        dx = model.backward()
        x = model.wte.weight.data[idx]                     # the token vectors the RNN read [B, T, n_embd]

        def loss():
            return model.loss_fn(model.lm_head(model.rnn(x)), targets)
        error = relative_error(dx, numerical_gradient(loss, x))
    assert error < GRAD_TOL


def test_language_model_matches_torch(torch):
    idx, targets = lm_batch()
    with backend.using("float64"):
        model = tiny_rnn_lm()
        logits, loss = model(idx, targets)
        model.backward()

    embedding = torch.nn.Embedding(7, 4, dtype=torch.float64)
    rnn = torch.nn.RNN(4, 5, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(5, 7, dtype=torch.float64)
    set_torch_param(torch, embedding.weight, model.wte.weight.data)
    set_torch_param(torch, rnn.weight_ih_l0, model.rnn.W_xh.data.T)
    set_torch_param(torch, rnn.weight_hh_l0, model.rnn.W_hh.data.T)
    set_torch_param(torch, rnn.bias_ih_l0, model.rnn.bias.data)
    set_torch_param(torch, rnn.bias_hh_l0, numpy.zeros(5))
    set_torch_param(torch, head.weight, model.lm_head.weight.data.T)
    set_torch_param(torch, head.bias, model.lm_head.bias.data)
    idx_t = torch.as_tensor(backend.to_numpy(idx))
    logits_t = head(rnn(embedding(idx_t))[0])
    loss_t = torch.nn.functional.cross_entropy(logits_t.reshape(-1, 7), torch.as_tensor(targets).reshape(-1))
    loss_t.backward()

    assert_matches_torch(logits, logits_t, "RNNLanguageModel", "logits")
    assert abs(float(loss) - loss_t.item()) < 1e-12
    assert_matches_torch(model.wte.weight.grad, embedding.weight.grad, "RNNLanguageModel", "dE")
    assert_matches_torch(model.rnn.W_hh.grad, rnn.weight_hh_l0.grad.T, "RNNLanguageModel", "dW_hh")
    assert_matches_torch(model.lm_head.weight.grad, head.weight.grad.T, "RNNLanguageModel", "dW_out")


def test_language_model_backward_is_guarded_like_the_others():
    idx, targets = lm_batch()
    model = tiny_rnn_lm()
    with pytest.raises(RuntimeError, match="before any forward"):
        model.backward()
    model(idx, targets)
    model.backward()
    with pytest.raises(RuntimeError, match="already called"):
        model.backward()
