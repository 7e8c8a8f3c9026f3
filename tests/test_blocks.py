"""Transformer blocks: Residual (pre- and post-norm), EncoderBlock and DecoderBlock.

Each block is checked three ways: its formula written out by hand, its backward against finite
differences, and its output and every gradient against PyTorch's own layers (nn.TransformerEncoderLayer,
nn.TransformerDecoderLayer) loaded with the same weights.
"""
import numpy
import pytest

from helpers.models import (assert_torch_grads, decoder_layer_pairs, encoder_layer_pairs, gpt_block_pairs,
                            load_into_torch, randomise_weights, torch_activation)
from helpers import assert_gradients_check, assert_matches_torch, assert_stays_float32, to_torch
from tinytransformer import (DecoderBlock, EncoderBlock, Linear, MultiHeadAttention, Residual,
                             backend, causal_mask, padding_mask)

B, T, S, D, N_HEAD = 2, 5, 6, 8, 2     # batch, target length, source (context) length, d_model, heads
SOURCE_PAD = numpy.array([[False] * S, [False] * 4 + [True] * 2])   # the second source ends in 2 pads


# --- Residual: the two places for the LayerNorm -----------------------------------------------------------

def test_pre_norm_residual_is_x_plus_f_of_ln_x():
    rng = numpy.random.default_rng(0)
    with backend.using("float64"):
        residual = Residual(Linear(D, D, rng=rng), D, norm="pre")
        randomise_weights(residual, seed=1)
        x = backend.randn((B, T, D), rng=rng)
        y = residual(x)
        expected = x + residual.sublayer(residual.ln(x))
    numpy.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)


def test_post_norm_residual_is_ln_of_x_plus_f_x():
    rng = numpy.random.default_rng(0)
    with backend.using("float64"):
        residual = Residual(Linear(D, D, rng=rng), D, norm="post")
        randomise_weights(residual, seed=1)
        x = backend.randn((B, T, D), rng=rng)
        y = residual(x)
        expected = residual.ln(x + residual.sublayer(x))
    numpy.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)


def test_residual_rejects_an_unknown_norm():
    with pytest.raises(ValueError, match="norm must be 'pre' or 'post', got 'middle'"):
        Residual(Linear(D, D), D, norm="middle")


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_residual_gradients(norm):
    rng = numpy.random.default_rng(2)
    with backend.using("float64"):
        residual = Residual(Linear(D, D, rng=rng), D, norm=norm)
        randomise_weights(residual, seed=3)
        assert_gradients_check(residual, {"x": backend.randn((B, T, D), rng=rng)}, name=f"Residual ({norm})")


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_residual_around_cross_attention_passes_dcontext_back(norm):
    """Cross-attention's backward returns (dx, dcontext); the Residual hands dcontext back untouched."""
    rng = numpy.random.default_rng(4)
    with backend.using("float64"):
        residual = Residual(MultiHeadAttention(D, N_HEAD, rng=rng), D, norm=norm)
        randomise_weights(residual, seed=5)
        inputs = {"x": backend.randn((B, T, D), rng=rng), "context": backend.randn((B, S, D), rng=rng)}
        errors = assert_gradients_check(residual, inputs, {"mask": padding_mask(SOURCE_PAD)},
                                        name=f"Residual ({norm})")
    assert {"x", "context"} <= set(errors)


def test_residual_dropout_is_off_in_eval_mode():
    rng = numpy.random.default_rng(6)
    residual = Residual(Linear(D, D, rng=rng), D, norm="pre", dropout=0.5, seed=0)
    x = backend.randn((B, T, D), rng=rng)
    residual.eval()
    numpy.testing.assert_array_equal(residual(x), x + residual.sublayer(residual.ln(x)))
    residual.train()
    assert not numpy.array_equal(residual(x), x + residual.sublayer(residual.ln(x)))


# --- the blocks against finite differences ---------------------------------------------------------------

@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_gradients(norm, activation):
    rng = numpy.random.default_rng(7)
    with backend.using("float64"):
        block = EncoderBlock(D, N_HEAD, activation=activation, norm=norm, rng=rng)
        randomise_weights(block, seed=8)
        x = backend.randn((B, S, D), rng=rng)
        assert_gradients_check(block, {"x": x}, {"mask": padding_mask(SOURCE_PAD)}, name="EncoderBlock")


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_block_gradients(norm, activation):
    """With cross-attention: gradients reach x (through all three sublayers) and the encoder's output."""
    rng = numpy.random.default_rng(9)
    with backend.using("float64"):
        block = DecoderBlock(D, N_HEAD, activation=activation, norm=norm, cross=True, rng=rng)
        randomise_weights(block, seed=10)
        inputs = {"x": backend.randn((B, T, D), rng=rng), "context": backend.randn((B, S, D), rng=rng)}
        masks = {"mask": causal_mask(T), "context_mask": padding_mask(SOURCE_PAD)}
        assert_gradients_check(block, inputs, masks, name="DecoderBlock")


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_gpt_block_gradients(norm):
    """A GPT block is a DecoderBlock without cross-attention: backward returns dx alone."""
    rng = numpy.random.default_rng(11)
    with backend.using("float64"):
        block = DecoderBlock(D, N_HEAD, norm=norm, rng=rng)
        randomise_weights(block, seed=12)
        assert_gradients_check(block, {"x": backend.randn((B, T, D), rng=rng)}, {"mask": causal_mask(T)},
                               name="DecoderBlock")


def test_blocks_stay_float32():
    rng = numpy.random.default_rng(13)
    x, context = backend.randn((B, T, D), rng=rng), backend.randn((B, S, D), rng=rng)
    assert_stays_float32(EncoderBlock(D, N_HEAD, rng=rng), {"x": context}, {"mask": padding_mask(SOURCE_PAD)})
    assert_stays_float32(DecoderBlock(D, N_HEAD, cross=True, rng=rng), {"x": x, "context": context},
                         {"mask": causal_mask(T), "context_mask": padding_mask(SOURCE_PAD)})


def test_blocks_refuse_an_input_of_another_dtype_than_their_weights():
    """Checked at the block's entry: its first LayerNorm would otherwise upcast x before attention sees it."""
    x64 = backend.randn((B, T, D), dtype=numpy.float64)
    with pytest.raises(TypeError, match=r"^EncoderBlock got x of dtype float64, but its weights are float32\. "
                                        r"Convert the input, x\.astype\('float32'\)"):
        EncoderBlock(D, N_HEAD)(x64)
    with pytest.raises(TypeError, match=r"^DecoderBlock got x of dtype float64, but its weights are float32\."):
        DecoderBlock(D, N_HEAD)(x64, mask=causal_mask(T))
    with pytest.raises(TypeError, match=r"^DecoderBlock got context of dtype float64, but its weights are "
                                        r"float32\. Convert the input, context\.astype\('float32'\)"):
        DecoderBlock(D, N_HEAD, cross=True)(backend.randn((B, T, D)), mask=causal_mask(T),
                                            context=backend.randn((B, S, D), dtype=numpy.float64))


def test_decoder_block_with_cross_attention_needs_a_context():
    block = DecoderBlock(D, N_HEAD, cross=True)
    with pytest.raises(ValueError, match="pass the encoder output as context"):
        block(backend.randn((B, T, D)), mask=causal_mask(T))


def test_encoder_block_ignores_what_sits_at_padded_positions():
    """The padding mask hides padded keys: whatever vectors are there, the real positions' outputs are
    the same."""
    rng = numpy.random.default_rng(14)
    with backend.using("float64"):
        block = EncoderBlock(D, N_HEAD, rng=rng)
        randomise_weights(block, seed=15)
        x = backend.randn((B, S, D), rng=rng)
        other = x.copy()
        other[SOURCE_PAD] = backend.randn((int(SOURCE_PAD.sum()), D), rng=rng)   # new vectors at the pads
        mask = padding_mask(SOURCE_PAD)
        y, y_other = block(x, mask=mask), block(other, mask=mask)
    real = ~SOURCE_PAD
    numpy.testing.assert_allclose(y_other[real], y[real], rtol=0, atol=1e-13)
    assert not numpy.allclose(y_other[SOURCE_PAD], y[SOURCE_PAD])  # the pads themselves did change


# --- the blocks against PyTorch ----------------------------------------------------------------------------
#
# Same weights, float64, dropout 0, dim_feedforward 4·d_model, LayerNorm eps 1e-5. PyTorch's attention
# masks say where attention is NOT allowed (ours say where it is), so every mask is negated on the way.

def torch_layer_options(torch, norm, activation):
    return dict(dim_feedforward=4 * D, dropout=0.0, activation=torch_activation(torch, activation),
                layer_norm_eps=1e-5, batch_first=True, norm_first=(norm == "pre"), dtype=torch.float64)


def assert_every_parameter_compared(block, pairs):
    assert sorted(pairs) == sorted(name for name, _ in block.named_parameters())


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_matches_torch(torch, norm, activation):
    rng = numpy.random.default_rng(20)
    with backend.using("float64"):
        block = EncoderBlock(D, N_HEAD, activation=activation, norm=norm, rng=rng)
        randomise_weights(block, seed=21)
        x = backend.randn((B, S, D), rng=rng)
        dout = backend.randn((B, S, D), rng=rng)
        out = block(x, mask=padding_mask(SOURCE_PAD))
        dx = block.backward(dout)

    theirs = torch.nn.TransformerEncoderLayer(D, N_HEAD, **torch_layer_options(torch, norm, activation))
    pairs = encoder_layer_pairs("", theirs, D)
    assert_every_parameter_compared(block, pairs)
    load_into_torch(torch, block, pairs)
    x_t = to_torch(torch, x)
    out_t = theirs(x_t, src_key_padding_mask=torch.as_tensor(SOURCE_PAD))    # True = a pad: not allowed
    out_t.backward(to_torch(torch, dout, requires_grad=False))

    label = "EncoderBlock vs torch"
    assert_matches_torch(out, out_t, label, "output")
    assert_matches_torch(dx, x_t.grad, label, "dx")
    assert_torch_grads(block, pairs, label)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_block_matches_torch(torch, norm, activation):
    rng = numpy.random.default_rng(22)
    with backend.using("float64"):
        block = DecoderBlock(D, N_HEAD, activation=activation, norm=norm, cross=True, rng=rng)
        randomise_weights(block, seed=23)
        x, memory = backend.randn((B, T, D), rng=rng), backend.randn((B, S, D), rng=rng)
        dout = backend.randn((B, T, D), rng=rng)
        out = block(x, mask=causal_mask(T), context=memory, context_mask=padding_mask(SOURCE_PAD))
        dx, dmemory = block.backward(dout)

    theirs = torch.nn.TransformerDecoderLayer(D, N_HEAD, **torch_layer_options(torch, norm, activation))
    pairs = decoder_layer_pairs("", theirs, D)
    assert_every_parameter_compared(block, pairs)
    load_into_torch(torch, block, pairs)
    x_t, memory_t = to_torch(torch, x), to_torch(torch, memory)
    out_t = theirs(x_t, memory_t, tgt_mask=torch.as_tensor(~causal_mask(T)),   # True = the future
                   memory_key_padding_mask=torch.as_tensor(SOURCE_PAD))
    out_t.backward(to_torch(torch, dout, requires_grad=False))

    label = "DecoderBlock vs torch"
    assert_matches_torch(out, out_t, label, "output")
    assert_matches_torch(dx, x_t.grad, label, "dx")
    assert_matches_torch(dmemory, memory_t.grad, label, "dmemory")
    assert_torch_grads(block, pairs, label)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_gpt_block_matches_torch_encoder_layer_with_a_causal_mask(torch, norm, activation):
    rng = numpy.random.default_rng(24)
    with backend.using("float64"):
        block = DecoderBlock(D, N_HEAD, activation=activation, norm=norm, rng=rng)
        randomise_weights(block, seed=25)
        x, dout = backend.randn((B, T, D), rng=rng), backend.randn((B, T, D), rng=rng)
        out = block(x, mask=causal_mask(T))
        dx = block.backward(dout)

    theirs = torch.nn.TransformerEncoderLayer(D, N_HEAD, **torch_layer_options(torch, norm, activation))
    pairs = gpt_block_pairs("", theirs, D)
    assert_every_parameter_compared(block, pairs)
    load_into_torch(torch, block, pairs)
    x_t = to_torch(torch, x)
    out_t = theirs(x_t, src_mask=torch.as_tensor(~causal_mask(T)))
    out_t.backward(to_torch(torch, dout, requires_grad=False))

    label = "DecoderBlock (GPT) vs torch"
    assert_matches_torch(out, out_t, label, "output")
    assert_matches_torch(dx, x_t.grad, label, "dx")
    assert_torch_grads(block, pairs, label)
