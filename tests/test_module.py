"""Module and Parameter: naming, shared parameters, zero_grad, train/eval, saving and loading."""
import numpy
import pytest

from tinytransformer import (Dropout, FeedForward, LayerNorm, Linear, Module, MultiHeadAttention, Parameter,
                             backend)


class TinyNet(Module):
    """A layer, a list of layers and a nested module: the three places parameters are found."""

    def __init__(self):
        self.embed = Linear(3, 4)
        self.blocks = [LayerNorm(4), FeedForward(4, d_hidden=2, dropout=0.1)]
        self.drop = Dropout(0.5)
        self.head = Linear(4, 2, bias=False)

    def forward(self, x):
        for layer in [self.embed, *self.blocks, self.drop, self.head]:
            x = layer(x)
        return x


def test_named_parameters_are_attribute_paths():
    names = [name for name, _ in TinyNet().named_parameters()]
    assert names == ["embed.weight", "embed.bias",
                     "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.fc1.weight", "blocks.1.fc1.bias", "blocks.1.fc2.weight", "blocks.1.fc2.bias",
                     "head.weight"]


def test_attention_parameter_names():
    names = dict(MultiHeadAttention(4, 2).named_parameters())
    assert sorted(names) == sorted(f"{proj}.{kind}" for proj in ["q_proj", "k_proj", "v_proj", "out_proj"]
                                   for kind in ["weight", "bias"])


def test_num_parameters():
    assert Linear(3, 4).num_parameters() == 3 * 4 + 4
    assert TinyNet().num_parameters() == (12 + 4) + (4 + 4) + (8 + 2 + 8 + 4) + 8


def test_a_parameter_used_twice_is_listed_once_and_gets_both_gradients():
    first, second = Linear(3, 3, bias=False), Linear(3, 3, bias=False)
    second.weight = first.weight                     # tie: one Parameter, two uses

    class Tied(Module):
        def __init__(self):
            self.first, self.second = first, second

    assert [name for name, _ in Tied().named_parameters()] == ["first.weight"]

    x1, x2 = backend.randn((2, 3)), backend.randn((5, 3))
    dy1, dy2 = backend.randn((2, 3)), backend.randn((5, 3))
    first(x1)
    second(x2)
    first.backward(dy1)
    second.backward(dy2)
    # each use adds its own share: dW = x1ᵀ dy1 + x2ᵀ dy2
    numpy.testing.assert_allclose(first.weight.grad, x1.T @ dy1 + x2.T @ dy2, rtol=1e-5, atol=1e-6)


def test_gradients_accumulate_until_zero_grad():
    layer = Linear(3, 2)
    x, dy = backend.randn((4, 3)), backend.randn((4, 2))
    layer(x)
    layer.backward(dy)
    once = layer.weight.grad.copy()
    layer.backward(dy)
    numpy.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-6)
    net = TinyNet()
    for p in net.parameters():
        p.grad[...] = 1.0
    net.zero_grad()
    assert all((p.grad == 0).all() for p in net.parameters())


def test_parameter_gradient_has_the_shape_and_dtype_of_its_data():
    p = Parameter(numpy.ones((2, 3), dtype=numpy.float32))
    assert p.shape == (2, 3) and p.grad.shape == (2, 3) and p.grad.dtype == numpy.float32
    assert (p.grad == 0).all()


def test_train_and_eval_reach_every_child():
    net = TinyNet()
    assert all(module.training for _, module in net.named_modules())
    assert net.eval() is net
    modules = dict(net.named_modules())
    assert not any(module.training for module in modules.values())
    assert {"blocks.1.dropout", "drop"} <= set(modules)  # dropouts nested in a list and at the top
    x = backend.randn((2, 3))
    numpy.testing.assert_array_equal(net(x), net(x))      # no dropout left: deterministic
    net.train()
    assert all(module.training for _, module in net.named_modules())


def test_call_runs_forward():
    class Doubler(Module):
        def forward(self, x, factor=2):
            return x * factor

    assert Doubler()(3) == 6 and Doubler()(3, factor=5) == 15
    with pytest.raises(NotImplementedError):
        Module()(1)


def test_state_dict_round_trip():
    net, other = TinyNet(), TinyNet()
    state = net.state_dict()
    assert list(state) == [name for name, _ in net.named_parameters()]
    assert all(isinstance(v, numpy.ndarray) for v in state.values())
    assert not numpy.array_equal(other.embed.weight.data, net.embed.weight.data)  # different weights ...
    other.load_state_dict(state)
    x = backend.randn((2, 3))
    numpy.testing.assert_array_equal(other.eval()(x), net.eval()(x))              # ... now the same net
    state["embed.weight"][...] = 0.0  # a copy: changing it does not change either network
    assert (net.embed.weight.data != 0).any() and (other.embed.weight.data != 0).any()


def test_load_state_dict_keeps_the_models_dtype():
    with backend.using("float64"):
        state = Linear(3, 2).state_dict()
    layer = Linear(3, 2)
    layer.load_state_dict(state)
    assert layer.weight.data.dtype == numpy.float32


def test_load_state_dict_with_missing_or_unexpected_keys_is_explained():
    net = TinyNet()
    state = net.state_dict()
    del state["head.weight"]
    state["head.bias"] = numpy.zeros(2)
    with pytest.raises(KeyError, match=r"missing \['head.weight'\], unexpected \['head.bias'\]"):
        net.load_state_dict(state)


def test_load_state_dict_with_wrong_shapes_is_explained():
    state = Linear(3, 4).state_dict()
    with pytest.raises(ValueError, match=r"Parameter 'weight' has shape \(3, 2\) in the model but \(3, 4\) "
                                         r"in the state"):
        Linear(3, 2).load_state_dict(state)
