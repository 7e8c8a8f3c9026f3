"""The three models: GPT, EncoderClassifier and Seq2Seq.

How a whole model is checked:
1. every parameter's gradient against finite differences of the loss (float64, tiny configs);
2. the same model written with PyTorch's layers, loaded with our weights: same loss and gradients;
3. bookkeeping: parameter counts, the summary, GPT-2's initialisation, weight tying;
4. the clear errors, float32 kept end to end, the CuPy stand-in, and that training lowers the loss.
"""
import math
import re

import numpy
import pytest

from helpers.models import (assert_model_gradients, assert_torch_grads, decoder_layer_pairs,
                            encoder_layer_pairs, gpt_block_pairs, layernorm_pairs, linear_pairs,
                            load_into_torch, randomise_weights, torch_activation)
from helpers import assert_matches_torch, to_torch
from tinytransformer import (AdamW, Embedding, LayerNorm, LearnedPositionalEncoding, Linear, Parameter,
                             backend, causal_mask, padding_mask, sinusoidal_table)
from tinytransformer.generate import generate, greedy_decode
from tinytransformer.models import (GPT, EncoderClassifier, EncoderConfig, GPTConfig, Seq2Seq,
                                    Seq2SeqConfig)

# --- tiny models and their data -----------------------------------------------------------------------
#
# Small enough that finite differences (four forwards per parameter entry) take about a second per model,
# big enough to have everything: two heads, two blocks, padding in the batches.

PAD = 0   # pad_id of the encoder and the encoder-decoder


def tiny_gpt(**options):
    """Vocabulary 7, context 5, two blocks of two heads, n_embd 4; ``options`` override config fields."""
    config = dict(vocab_size=7, block_size=5, n_layer=2, n_head=2, n_embd=4)
    return GPT(GPTConfig(**{**config, **options}))


def tiny_encoder(**options):
    config = dict(vocab_size=7, n_classes=3, block_size=6, n_layer=2, n_head=2, n_embd=4, pad_id=PAD)
    return EncoderClassifier(EncoderConfig(**{**config, **options}))


def tiny_seq2seq(**options):
    # Two decoder blocks: each one's cross-attention adds its share to the encoder output's gradient.
    config = dict(src_vocab_size=7, tgt_vocab_size=6, block_size=6, n_encoder_layer=1, n_decoder_layer=2,
                  n_head=2, n_embd=4, pad_id=PAD)
    return Seq2Seq(Seq2SeqConfig(**{**config, **options}))


def gpt_batch(seed=0, vocab_size=7, shape=(2, 5)):
    rng = numpy.random.default_rng(seed)
    return rng.integers(0, vocab_size, shape), rng.integers(0, vocab_size, shape)   # idx, targets


TOKENS = numpy.array([[3, 5, 2, 6, PAD, PAD],           # the first sequence is 4 tokens and 2 pads
                      [4, 1, 1, 2, 3, 5]])
IS_PAD = TOKENS == PAD
SEQUENCE_LABELS = numpy.array([2, 0])
TOKEN_LABELS = numpy.array([[1, 2, 0, 1, -100, -100],   # -100 (ignore_index) at the pads
                            [2, 2, 1, 0, 0, 1]])

BOS = 1
SOURCE = TOKENS                                          # padded source
TARGET = numpy.array([[2, 3, 4, 5, 2],
                      [5, 4, 2, PAD, PAD]])              # the second target is 3 tokens and 2 pads
TARGET_IN = numpy.array([[BOS, 2, 3, 4, 5],              # teacher forcing: BOS + target[:-1]
                         [BOS, 5, 4, 2, PAD]])


def labels_for(head):
    return SEQUENCE_LABELS if head == "sequence" else TOKEN_LABELS


# --- 1. finite differences ---------------------------------------------------------------------------
#
# float64, GELU, and larger weights than GPT-2's (see randomise_weights). The GPT variants are chosen
# so that every pair of options (norm × tying, norm × positions, tying × positions) appears together.

GPT_VARIANTS = [dict(norm="pre", tie_weights=True, positional="learned"),
                dict(norm="pre", tie_weights=False, positional="sinusoidal"),
                dict(norm="post", tie_weights=True, positional="sinusoidal"),
                dict(norm="post", tie_weights=False, positional="learned")]


@pytest.mark.parametrize("options", GPT_VARIANTS, ids=lambda o: "-".join(map(str, o.values())))
def test_gpt_gradients(options):
    idx, targets = gpt_batch()
    with backend.using("float64"):
        model = tiny_gpt(activation="gelu", **options)
        randomise_weights(model)
        assert_model_gradients(model, lambda: model(idx, targets)[1], "GPT")


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("head", ["sequence", "token"])
def test_encoder_gradients(norm, head):
    with backend.using("float64"):
        model = tiny_encoder(activation="gelu", norm=norm, head=head)
        randomise_weights(model)
        assert_model_gradients(model, lambda: model(TOKENS, labels_for(head))[1], "EncoderClassifier")


@pytest.mark.parametrize("norm, positional", [("pre", "sinusoidal"), ("post", "learned")])
def test_seq2seq_gradients(norm, positional):
    with backend.using("float64"):
        model = tiny_seq2seq(activation="gelu", norm=norm, positional=positional)
        randomise_weights(model)
        assert_model_gradients(model, lambda: model(SOURCE, TARGET_IN, TARGET)[1], "Seq2Seq")


# --- 2. the same models in PyTorch ----------------------------------------------------------------------
#
# Each model written again with torch's layers (float64, dropout 0), loaded with our weights through
# the tables of helpers/models.py; the loss and every gradient must agree to rounding.

def torch_layer_options(torch, config):
    return dict(dim_feedforward=4 * config.n_embd, dropout=0.0,
                activation=torch_activation(torch, config.activation), layer_norm_eps=1e-5, batch_first=True,
                norm_first=(config.norm == "pre"), dtype=torch.float64)


def torch_positions(torch, config, T):
    """(the learned table as a torch Parameter, or None; a function adding positions to x [B, T, d])."""
    if config.positional == "learned":
        table = torch.nn.Parameter(torch.zeros(config.block_size, config.n_embd, dtype=torch.float64))
        return table, lambda x: x + table[:T]
    fixed = torch.as_tensor(sinusoidal_table(T, config.n_embd))
    return None, lambda x: x + fixed


@pytest.mark.parametrize("options", [dict(norm="pre", tie_weights=True, positional="learned"),
                                     dict(norm="post", tie_weights=False, positional="sinusoidal")],
                         ids=["pre-tied-learned", "post-untied-sinusoidal"])
def test_gpt_matches_torch(torch, options):
    F = torch.nn.functional
    idx, targets = gpt_batch(seed=1)
    with backend.using("float64"):
        model = tiny_gpt(**options)
        randomise_weights(model, seed=2)
        model.zero_grad()
        logits, loss = model(idx, targets)
        model.backward()

    c = model.config
    T = idx.shape[1]
    wte = torch.nn.Embedding(c.vocab_size, c.n_embd, dtype=torch.float64)
    wpe, add_positions = torch_positions(torch, c, T)
    layers = [torch.nn.TransformerEncoderLayer(c.n_embd, c.n_head, **torch_layer_options(torch, c))
              for _ in range(c.n_layer)]
    ln_f = torch.nn.LayerNorm(c.n_embd, eps=1e-5, dtype=torch.float64)
    lm_head = (None if c.tie_weights
               else torch.nn.Linear(c.n_embd, c.vocab_size, bias=False, dtype=torch.float64))

    pairs = {"wte.weight": (wte.weight, lambda t: t), **layernorm_pairs("ln_f", ln_f)}
    if wpe is not None:
        pairs["wpe.weight"] = (wpe, lambda t: t)
    for i, layer in enumerate(layers):
        pairs.update(gpt_block_pairs(f"blocks.{i}.", layer, c.n_embd))
    if lm_head is not None:
        pairs["lm_head.weight"] = (lm_head.weight, lambda t: t.T)
    assert sorted(pairs) == sorted(name for name, _ in model.named_parameters())
    load_into_torch(torch, model, pairs)

    x = add_positions(wte(torch.as_tensor(idx)))                                # [B, T, d]
    for layer in layers:
        x = layer(x, src_mask=torch.as_tensor(~causal_mask(T)))                 # True = the future: hidden
    h = ln_f(x)
    logits_t = h @ wte.weight.T if c.tie_weights else lm_head(h)               # [B, T, vocab]
    loss_t = F.cross_entropy(logits_t.reshape(-1, c.vocab_size), torch.as_tensor(targets).reshape(-1))
    loss_t.backward()

    assert_matches_torch(logits, logits_t, "GPT vs torch", "logits")
    assert_matches_torch(loss, loss_t, "GPT vs torch", "loss")
    assert_torch_grads(model, pairs, "GPT vs torch")


@pytest.mark.parametrize("norm, head", [("pre", "sequence"), ("post", "token")])
def test_encoder_matches_torch(torch, norm, head):
    F = torch.nn.functional
    with backend.using("float64"):
        model = tiny_encoder(norm=norm, head=head)
        randomise_weights(model, seed=3)
        model.zero_grad()
        logits, loss = model(TOKENS, labels_for(head))
        model.backward()

    c = model.config
    T = TOKENS.shape[1]
    wte = torch.nn.Embedding(c.vocab_size, c.n_embd, dtype=torch.float64)
    wpe, add_positions = torch_positions(torch, c, T)
    layers = [torch.nn.TransformerEncoderLayer(c.n_embd, c.n_head, **torch_layer_options(torch, c))
              for _ in range(c.n_layer)]
    ln_f = torch.nn.LayerNorm(c.n_embd, eps=1e-5, dtype=torch.float64)
    classifier = torch.nn.Linear(c.n_embd, c.n_classes, dtype=torch.float64)

    pairs = {"wte.weight": (wte.weight, lambda t: t), "wpe.weight": (wpe, lambda t: t),
             **layernorm_pairs("ln_f", ln_f), **linear_pairs("head", classifier)}
    for i, layer in enumerate(layers):
        pairs.update(encoder_layer_pairs(f"blocks.{i}.", layer, c.n_embd))
    assert sorted(pairs) == sorted(name for name, _ in model.named_parameters())
    load_into_torch(torch, model, pairs)

    is_pad = torch.as_tensor(IS_PAD)
    x = add_positions(wte(torch.as_tensor(TOKENS)))
    for layer in layers:
        x = layer(x, src_key_padding_mask=is_pad)                               # True = a pad: hidden
    h = ln_f(x)                                                                 # [B, T, d]
    if head == "sequence":
        keep = (~is_pad)[:, :, None].double()
        h = (h * keep).sum(dim=1) / keep.sum(dim=1)                             # mean over real tokens
    logits_t = classifier(h)
    loss_t = F.cross_entropy(logits_t.reshape(-1, c.n_classes),
                             torch.as_tensor(labels_for(head)).reshape(-1), ignore_index=-100)
    loss_t.backward()

    assert_matches_torch(logits, logits_t, "EncoderClassifier vs torch", "logits")
    assert_matches_torch(loss, loss_t, "EncoderClassifier vs torch", "loss")
    assert_torch_grads(model, pairs, "EncoderClassifier vs torch")


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")   # an inference-only fast path, unused
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_seq2seq_stacks_match_torch_transformer(torch, norm, activation):
    """run_encoder / run_decoder (on embedded inputs) are nn.Transformer, final LayerNorms included."""
    rng = numpy.random.default_rng(4)
    B, S, T = SOURCE.shape[0], SOURCE.shape[1], TARGET_IN.shape[1]
    tgt_pad = TARGET_IN == PAD
    with backend.using("float64"):
        model = tiny_seq2seq(norm=norm, activation=activation, n_embd=8)
        randomise_weights(model, seed=5)
        d = model.config.n_embd
        x, y = backend.randn((B, S, d), rng=rng), backend.randn((B, T, d), rng=rng)
        dout = backend.randn((B, T, d), rng=rng)
        src_mask = padding_mask(IS_PAD)                                         # [B, 1, 1, S]
        tgt_mask = causal_mask(T) & padding_mask(tgt_pad)                       # [B, 1, T, T]
        memory = model.run_encoder(x, src_mask)
        out = model.run_decoder(y, memory, tgt_mask, src_mask)
        dy, dmemory = model.backward_decoder(dout)
        dx = model.backward_encoder(dmemory)

    c = model.config
    theirs = torch.nn.Transformer(d, c.n_head, c.n_encoder_layer, c.n_decoder_layer,
                                  **torch_layer_options(torch, c))
    pairs = {**layernorm_pairs("encoder_norm", theirs.encoder.norm),
             **layernorm_pairs("decoder_norm", theirs.decoder.norm)}
    for i, layer in enumerate(theirs.encoder.layers):
        pairs.update(encoder_layer_pairs(f"encoder_blocks.{i}.", layer, d))
    for i, layer in enumerate(theirs.decoder.layers):
        pairs.update(decoder_layer_pairs(f"decoder_blocks.{i}.", layer, d))
    stacks = [name for name, _ in model.named_parameters() if name.startswith(("encoder_", "decoder_"))]
    assert sorted(pairs) == sorted(stacks)
    load_into_torch(torch, model, pairs)

    x_t, y_t = to_torch(torch, x), to_torch(torch, y)
    out_t = theirs(x_t, y_t, tgt_mask=torch.as_tensor(~causal_mask(T)),     # torch: True = NOT allowed
                   src_key_padding_mask=torch.as_tensor(IS_PAD), tgt_key_padding_mask=torch.as_tensor(tgt_pad),
                   memory_key_padding_mask=torch.as_tensor(IS_PAD))
    out_t.backward(to_torch(torch, dout, requires_grad=False))

    label = "Seq2Seq vs nn.Transformer"
    assert_matches_torch(out, out_t, label, "decoder output")
    assert_matches_torch(dy, y_t.grad, label, "dy (target embeddings)")
    assert_matches_torch(dx, x_t.grad, label, "dx (source embeddings)")
    assert_torch_grads(model, pairs, label)


# --- 3. parameters, summary, initialisation, tying ---------------------------------------------------------

def gpt_parameter_count(c: GPTConfig) -> int:
    """Count GPT's parameters from its config alone, layer by layer."""
    d, b = c.n_embd, int(c.bias)
    attention = 4 * (d * d + b * d)                      # W_q, W_k, W_v, W_o and their biases
    ffn = (d * 4 * d + b * 4 * d) + (4 * d * d + b * d)  # fc1 d -> 4d, fc2 4d -> d
    layernorms = 2 * (d + b * d)                         # two LayerNorms, γ and (with bias) β
    block = attention + ffn + layernorms
    embeddings = c.vocab_size * d + (c.block_size * d if c.positional == "learned" else 0)
    output = 0 if c.tie_weights else d * c.vocab_size    # the tied output layer is the embedding table
    return embeddings + c.n_layer * block + (d + b * d) + output     # + the final LayerNorm


@pytest.mark.parametrize("tie_weights", [True, False])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("bias", [True, False])
def test_gpt_parameter_count_follows_from_the_config(tie_weights, positional, bias):
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=8, tie_weights=tie_weights,
                       positional=positional, bias=bias)
    assert GPT(config).num_parameters() == gpt_parameter_count(config)


def test_untying_adds_exactly_one_vocab_by_embedding_matrix():
    tied, untied = tiny_gpt(tie_weights=True), tiny_gpt(tie_weights=False)
    c = tied.config
    assert untied.num_parameters() - tied.num_parameters() == c.vocab_size * c.n_embd


@pytest.mark.parametrize("build", [tiny_gpt, tiny_encoder, tiny_seq2seq], ids=["GPT", "encoder", "seq2seq"])
def test_summary_lists_every_parameter_and_the_total(build):
    model = build()
    lines = model.summary().splitlines()
    assert lines[0] == type(model).__name__
    rows = [line.split() for line in lines[2:-1]]                   # name, shape (with spaces), count
    names = [row[0] for row in rows]
    counts = [int(row[-1].replace(",", "")) for row in rows]
    params = dict(model.named_parameters())
    assert names == list(params)
    assert counts == [p.data.size for p in params.values()]
    total = lines[-1].split()
    assert total[0] == "total"
    assert int(total[-1].replace(",", "")) == sum(counts) == model.num_parameters()


def assert_gpt2_init(model, n_layer):
    """Weights ~ N(0, 0.02²), the residual projections ~ N(0, (0.02/√(2·n_layer))²), biases 0, γ = 1.

    The sample std of n normal numbers is off from the true std by about 1/√(2n) relative; each table
    may be off by 6 of those (the two stds to tell apart differ by √(2·n_layer), 2.4 or more here).
    Returns how many weight tables were checked.
    """
    residual_std = 0.02 / math.sqrt(2 * n_layer)
    checked = 0
    for name, module in model.named_modules():
        if isinstance(module, (Linear, Embedding, LearnedPositionalEncoding)):
            weight = backend.to_numpy(module.weight.data)
            expected = residual_std if name.endswith(("out_proj", "fc2")) else 0.02
            tolerance = 6 / math.sqrt(2 * weight.size)
            std = weight.std()
            assert abs(std / expected - 1) < tolerance, f"{name}: std {std:.5f}, expected {expected:.5f}"
            assert abs(weight.mean()) < 6 * expected / math.sqrt(weight.size), f"{name}: mean {weight.mean()}"
            if isinstance(module, Linear) and module.bias is not None:
                assert (module.bias.data == 0).all(), f"{name}.bias is not 0"
            checked += 1
        elif isinstance(module, LayerNorm):
            assert (module.weight.data == 1).all(), f"{name}: γ is not 1"
            assert (module.bias.data == 0).all(), f"{name}: β is not 0"
    return checked


@pytest.mark.parametrize("field, value, message", [
    ("n_head", 0, "GPTConfig.n_head is 0: it must be a whole number >= 1"),       # was a ZeroDivisionError
    ("n_embd", -16, "GPTConfig.n_embd is -16"),
    ("n_layer", 2.0, "GPTConfig.n_layer is 2.0"),
    ("vocab_size", True, "GPTConfig.vocab_size is True"),
    ("n_head", 3, "GPTConfig.n_head 3 does not divide n_embd 32"),
    ("dropout", 1.0, "GPTConfig.dropout is 1.0: it must be a number in [0, 1)"),
    ("bias", "yes", "GPTConfig.bias is 'yes'"),
    ("seed", -1, "GPTConfig.seed is -1"),
])
def test_a_gpt_config_that_cannot_build_a_model_is_refused_with_the_field(field, value, message):
    """A config may come from a file: nonsense is refused when the config is made, before any layer."""
    with pytest.raises(ValueError, match=re.escape(message)):
        GPTConfig(**{**dict(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=32), field: value})


def test_gpt2_initialisation():
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=4, n_head=4, n_embd=64, tie_weights=False))
    assert assert_gpt2_init(model, n_layer=4) == 2 + 4 * 6 + 1   # wte, wpe, 6 Linear per block, lm_head


def test_encoder_gpt2_initialisation():
    model = EncoderClassifier(EncoderConfig(vocab_size=64, n_classes=8, block_size=32, n_layer=3, n_embd=64))
    assert assert_gpt2_init(model, n_layer=3) == 2 + 3 * 6 + 1


def test_seq2seq_gpt2_initialisation_counts_both_stacks_as_depth():
    config = Seq2SeqConfig(src_vocab_size=64, tgt_vocab_size=64, block_size=32, n_encoder_layer=2,
                           n_decoder_layer=3, n_embd=64, positional="learned")
    model = Seq2Seq(config)
    assert assert_gpt2_init(model, n_layer=2 + 3) == 4 + 2 * 6 + 3 * 10 + 1


def test_tied_gpt_has_no_output_layer_and_its_table_gets_both_gradients():
    """Tied: logits = h Eᵀ with E the embedding table, so E's gradient is the embedding's share plus the
    output layer's. An untied model with W_out = Eᵀ computes the same numbers and keeps the two apart."""
    idx, targets = gpt_batch(seed=3)
    with backend.using("float64"):
        tied, untied = tiny_gpt(tie_weights=True), tiny_gpt(tie_weights=False)
        assert tied.lm_head is None
        assert not any(name.startswith("lm_head") for name, _ in tied.named_parameters())
        state = tied.state_dict()
        state["lm_head.weight"] = state["wte.weight"].T.copy()
        untied.load_state_dict(state)
        for model in (tied, untied):
            model.zero_grad()
            model(idx, targets)
            model.backward()
    numpy.testing.assert_allclose(tied.wte.weight.grad, untied.wte.weight.grad + untied.lm_head.weight.grad.T,
                                  rtol=1e-12, atol=1e-15)
    # Only the tokens in the input get an embedding gradient; every token gets an output-layer one.
    absent = sorted(set(range(tied.config.vocab_size)) - set(idx.ravel().tolist()))
    assert absent, "choose a batch that leaves some token out"
    assert (untied.wte.weight.grad[absent] == 0).all()
    assert (tied.wte.weight.grad[absent] != 0).all()


# --- 4. errors, dtypes, backends, training ------------------------------------------------------------------

@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_too_long_input_is_explained(positional):
    gpt = tiny_gpt(positional=positional)                  # block_size 5
    with pytest.raises(ValueError, match="model context is 5, got 6"):
        gpt(numpy.zeros((1, 6), dtype=numpy.int64))
    encoder = tiny_encoder(positional=positional)          # block_size 6
    with pytest.raises(ValueError, match="model context is 6, got 7"):
        encoder(numpy.ones((1, 7), dtype=numpy.int64))
    seq2seq = tiny_seq2seq(positional=positional)          # block_size 6
    ok, too_long = numpy.ones((1, 6), dtype=numpy.int64), numpy.ones((1, 7), dtype=numpy.int64)
    with pytest.raises(ValueError, match=r"model context is 6, got 7 \(source ids \(1, 7\); they must be \[B, S\] with S ≤ block_size\)"):
        seq2seq(too_long, ok)
    with pytest.raises(ValueError, match=r"model context is 6, got 7 \(target ids \(1, 7\); they must be \[B, T\] with T ≤ block_size\)"):
        seq2seq(ok, too_long)


def test_token_ids_outside_the_vocabulary_are_explained():
    ok = numpy.ones((1, 4), dtype=numpy.int64)
    bad = numpy.array([[1, 2, 7, 1]])                      # 7 = vocab_size: one past the end
    negative = numpy.array([[1, -1, 2, 1]])
    gpt, encoder, seq2seq = tiny_gpt(), tiny_encoder(), tiny_seq2seq()
    for run in [lambda: gpt(bad), lambda: gpt(negative), lambda: encoder(bad), lambda: seq2seq(bad, ok)]:
        with pytest.raises(IndexError, match=r"is outside the vocabulary \[0, 7\)"):
            run()
    with pytest.raises(IndexError, match=r"token id 6 is outside the vocabulary \[0, 6\)"):
        seq2seq(ok, numpy.array([[1, 6]]))                 # the target vocabulary has 6 tokens
    with pytest.raises(IndexError, match=r"CrossEntropyLoss \(targets\): token id 7"):
        gpt(ok, bad)


def every_float_array(model):
    """(where, array) for every parameter, gradient, and array a layer kept from its forward."""
    for prefix, module in model.named_modules():
        for attr, value in vars(module).items():
            where = f"{prefix}.{attr}" if prefix else attr
            if isinstance(value, Parameter):
                yield where, value.data
                yield f"{where}.grad", value.grad
            elif hasattr(value, "dtype") and value.dtype.kind == "f":
                yield where, value


def each_model():
    """(name, a fresh model, its inputs) for every model family, built on the backend of the moment."""
    idx, targets = gpt_batch()
    return [("GPT", tiny_gpt(), (idx, targets)),
            ("encoder (sequence head)", tiny_encoder(), (TOKENS, SEQUENCE_LABELS)),
            ("encoder (token head)", tiny_encoder(head="token", positional="sinusoidal"),
             (TOKENS, TOKEN_LABELS)),
            ("seq2seq", tiny_seq2seq(), (SOURCE, TARGET_IN, TARGET))]


def forward_backward(model, inputs):
    """One forward (inputs copied onto the current backend) and one backward; -> (logits, loss)."""
    model.zero_grad()
    logits, loss = model(*(backend.asarray(a) for a in inputs))
    model.backward()
    return logits, loss


def test_float32_from_end_to_end():
    for name, model, inputs in each_model():
        logits, loss = forward_backward(model, inputs)
        assert logits.dtype == numpy.float32 and loss.dtype == numpy.float32, name
        upcast = [where for where, array in every_float_array(model) if array.dtype != numpy.float32]
        assert not upcast, f"{name}: float64 in {upcast}"


def test_models_under_the_standin_backend_give_numpys_numbers():
    """The stand-in is NumPy underneath with CuPy's rules on top: the same operations in the same order,
    so the numbers are not just close but identical."""
    with backend.using(backend="standin"):
        on_standin = [(model, *forward_backward(model, inputs)) for _, model, inputs in each_model()]
    for (name, model, inputs), (model_s, logits_s, loss_s) in zip(each_model(), on_standin):
        logits, loss = forward_backward(model, inputs)
        numpy.testing.assert_array_equal(backend.to_numpy(logits_s), logits, err_msg=name)
        assert float(loss_s) == float(loss), name
        grads_s = dict(model_s.named_parameters())
        for pname, p in model.named_parameters():
            numpy.testing.assert_array_equal(backend.to_numpy(grads_s[pname].grad), p.grad,
                                             err_msg=f"{name}: gradient of {pname}")


def test_adamw_lowers_each_models_loss_on_a_fixed_batch():
    for name, model, inputs in each_model():
        optimizer = AdamW(model.named_parameters(), lr=3e-2)
        losses = []
        for _ in range(25):
            _, loss = forward_backward(model, inputs)
            optimizer.step()
            losses.append(float(loss))
        assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"


# --- 5. the encoder's padding ---------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["sequence", "token"])
def test_encoder_padding_changes_nothing(head):
    """The first sequence's 4 real tokens give the same logits with 0, 1 or 2 pads after them."""
    with backend.using("float64"):
        model = tiny_encoder(head=head)
        randomise_weights(model, seed=6)
        real = TOKENS[:1, :4]
        alone, _ = model(real)
        for n_pads in (1, 2):
            padded, _ = model(numpy.concatenate([real, numpy.full((1, n_pads), PAD)], axis=1))
            at_real_tokens = padded if head == "sequence" else padded[:, :4]
            numpy.testing.assert_allclose(at_real_tokens, alone, rtol=0, atol=1e-13)


def test_encoder_ignores_what_the_padded_positions_hold():
    """Whatever vector sits at a padded position (here: a new pad embedding), the logits are the same."""
    with backend.using("float64"):
        model = tiny_encoder()
        randomise_weights(model, seed=7)
        logits, _ = model(TOKENS)
        hidden = model.encode(TOKENS).copy()
        new_pad_vector = backend.randn(model.config.n_embd, std=3.0, rng=numpy.random.default_rng(8))
        model.wte.weight.data[PAD] = new_pad_vector
        logits_after, _ = model(TOKENS)
        hidden_after = model.encode(TOKENS)
    assert not numpy.allclose(hidden_after[IS_PAD], hidden[IS_PAD])         # the pads did change ...
    numpy.testing.assert_allclose(hidden_after[~IS_PAD], hidden[~IS_PAD], rtol=0, atol=1e-13)
    numpy.testing.assert_allclose(logits_after, logits, rtol=0, atol=1e-13)  # ... and nothing else


# --- 6. backward belongs to the last forward, once -------------------------------------------------------
#
# Every layer keeps what its forward computed for its backward, so a backward is right only for the
# last forward, and only once. What would silently compute wrong gradients is refused, with the call
# that fixes it; accumulating gradients over batches (a forward and a backward each) stays possible.

def second_batch(name, inputs):
    """Another batch for the same model: different tokens, so different gradients."""
    if name == "GPT":
        return gpt_batch(seed=1)
    changed = numpy.where(IS_PAD, PAD, TOKENS % 6 + 1)                      # other tokens, same padding
    return (changed, *inputs[1:])


def gradients(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def test_gradient_accumulation_adds_the_gradients_of_each_batch():
    with backend.using("float64"):
        for name, model, first in each_model():
            second = second_batch(name, first)
            forward_backward(model, first)
            g_first = gradients(model)
            forward_backward(model, second)
            g_second = gradients(model)
            model.zero_grad()
            for inputs in (first, second):                                 # no zero_grad in between
                model(*inputs)
                model.backward()
            flat = [numpy.concatenate([g.ravel() for g in grads.values()]) for grads in (g_first, g_second)]
            assert not numpy.allclose(*flat), f"{name}: choose batches with different gradients"
            for pname, grad in gradients(model).items():
                numpy.testing.assert_allclose(grad, g_first[pname] + g_second[pname], rtol=1e-12, atol=1e-15,
                                              err_msg=f"{name}: {pname}")


@pytest.mark.parametrize("name, build, call", [("GPT", tiny_gpt, "model(idx, targets)"),
                                               ("EncoderClassifier", tiny_encoder, "model(idx, targets)"),
                                               ("Seq2Seq", tiny_seq2seq, "model(src, tgt_in, targets)")])
def test_backward_before_any_forward_is_refused(name, build, call):
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward\(\) was called before any forward: there is "
                                           rf"nothing to back-propagate\. Run `logits, loss = "
                                           rf"{re.escape(call)}` first, then backward\(\)\.$"):
        build().backward()


def test_a_second_backward_is_refused_and_adds_nothing():
    for name, model, inputs in each_model():
        forward_backward(model, inputs)
        once = gradients(model)
        with pytest.raises(RuntimeError, match=r"\.backward\(\) was already called for the last forward; a "
                                               r"second call would add the same gradients to param\.grad "
                                               r"again\. Run a forward before each backward"):
            model.backward()
        for pname, grad in gradients(model).items():
            numpy.testing.assert_array_equal(grad, once[pname], err_msg=f"{name}: {pname}")
        forward_backward(model, inputs)                                    # a new forward: allowed again
        for pname, grad in gradients(model).items():
            numpy.testing.assert_array_equal(grad, once[pname], err_msg=f"{name}: {pname}")


def test_backward_after_a_forward_without_targets_is_refused():
    """model(x1, y1); model(x2); model.backward() used to back-propagate x1's loss through x2's activations."""
    for name, model, first in each_model():
        second = second_batch(name, first)
        model.zero_grad()
        model(*first)
        logits, loss = model(*second[:-1])                                 # no targets: no loss
        assert loss is None
        with pytest.raises(RuntimeError, match=r"\.backward\(\) starts from the loss, but the last forward was "
                                               r"given no targets and computed none .* or give backward the "
                                               r"gradient of the logits: backward\(dlogits\)\."):
            model.backward()
        assert all(not p.grad.any() for p in model.parameters()), name      # nothing was added
        # backward(dlogits) with the second forward's dlogits is the way to go without a loss:
        model.loss_fn(logits, backend.asarray(second[-1]))
        model.backward(model.loss_fn.backward())
        expected = gradients(model)
        forward_backward(model, second)
        for pname, grad in gradients(model).items():
            numpy.testing.assert_allclose(grad, expected[pname], rtol=1e-6, atol=1e-7, err_msg=f"{name}: {pname}")


def test_backward_dlogits_of_another_shape_is_refused():
    for name, model, inputs in each_model():
        logits, _ = model(*inputs)
        wrong = backend.asarray(numpy.ones((1, *logits.shape[1:]), dtype=numpy.float32))
        with pytest.raises(ValueError, match=rf"\.backward\(dlogits\): dlogits has shape "
                                             rf"{re.escape(str(wrong.shape))}, but the last forward's logits "
                                             rf"have shape {re.escape(str(logits.shape))}\."):
            model.backward(wrong)


def replaced_message(by):
    return (rf"\.backward\(\): the activations kept for backward are not those of a finished forward: "
            rf"{re.escape(by)} replaced them\. Run the forward again, `logits, loss = model\(")


def test_backward_after_generation_or_a_partial_forward_is_refused():
    idx, targets = gpt_batch()
    gpt, encoder, seq2seq = tiny_gpt(), tiny_encoder(), tiny_seq2seq()
    memory = seq2seq.encode(SOURCE)                                        # for decode() on its own
    cases = [(gpt, "forward_cached() (generation)", lambda: gpt.forward_cached(idx[:, :2], [{}, {}])),
             (gpt, "forward_cached() (generation)", lambda: generate(gpt, idx[:, :2], 2)),
             (encoder, "encode()", lambda: encoder.encode(TOKENS)),
             (seq2seq, "encode()", lambda: greedy_decode(seq2seq, SOURCE, bos_id=BOS, max_len=2)),
             (seq2seq, "decode()", lambda: seq2seq.decode(memory, SOURCE, TARGET_IN)),
             (seq2seq, "run_encoder()", lambda: seq2seq.run_encoder(backend.randn((2, 6, 4)))),
             (gpt, "a forward that stopped with an error", lambda: gpt(idx, numpy.full_like(targets, 99)))]
    inputs = {id(gpt): (idx, targets), id(encoder): (TOKENS, SEQUENCE_LABELS),
              id(seq2seq): (SOURCE, TARGET_IN, TARGET)}
    for model, by, run in cases:
        model(*inputs[id(model)])
        try:
            run()
        except IndexError:                                                 # the forward with bad targets
            pass
        with pytest.raises(RuntimeError, match=replaced_message(by)):
            model.backward()
        model(*inputs[id(model)])                                          # a finished forward: allowed again
        model.backward()


# --- 7. what a model takes as token ids ---------------------------------------------------------------------

@pytest.mark.parametrize("name, run", [("GPT", lambda ids: tiny_gpt()(ids)),
                                       ("EncoderClassifier", lambda ids: tiny_encoder()(ids)),
                                       ("GPT.forward_cached",
                                        lambda ids: tiny_gpt().forward_cached(ids, [{}, {}]))])
def test_token_ids_must_be_a_non_empty_integer_batch(name, run):
    with pytest.raises(TypeError, match=rf"^{re.escape(name)} expects token ids as an integer array of shape "
                                        r"\[B, T\], got a list\. Convert it first: backend\.asarray\(ids\)"):
        run([[1, 2, 3]])
    with pytest.raises(TypeError, match=rf"^{re.escape(name)} expects integer token ids, got dtype float64\. "
                                        r"Token ids index the embedding table"):
        run(numpy.ones((1, 3)))
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} expects token ids of shape \[B, T\], got shape "
                                         r"\(3,\)\. One sequence of T ids is a batch of one: ids\[None, :\]"):
        run(numpy.ones(3, dtype=numpy.int64))
    for empty in [(2, 0), (0, 3)]:
        with pytest.raises(ValueError, match=rf"^{re.escape(name)} got empty token ids, shape "
                                             rf"{re.escape(str(empty))}: \[B, T\] needs at least one sequence "
                                             r"of at least one token\.$"):
            run(numpy.zeros(empty, dtype=numpy.int64))


def test_seq2seq_source_and_target_ids_are_checked():
    model, ok = tiny_seq2seq(), numpy.ones((2, 3), dtype=numpy.int64)
    with pytest.raises(TypeError, match=r"^Seq2Seq expects source ids as an integer array of shape \[B, S\], "
                                        r"got a list\."):
        model([[1, 2, 3]], ok)
    with pytest.raises(TypeError, match=r"^Seq2Seq expects target ids as an integer array of shape \[B, T\], "
                                        r"got a list\."):
        model(ok, [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"^Seq2Seq got empty source ids, shape \(2, 0\): \[B, S\] needs"):
        model(numpy.zeros((2, 0), dtype=numpy.int64), ok)
    with pytest.raises(ValueError, match=r"^Seq2Seq got empty target ids, shape \(2, 0\): \[B, T\] needs"):
        model(ok, numpy.zeros((2, 0), dtype=numpy.int64))
    with pytest.raises(ValueError, match=r"^source \(1, 3\) and target \(2, 3\) hold different numbers of "
                                         r"sequences: row b of the target is the translation of row b of the "
                                         r"source, so both need the same B\.$"):
        model(ok[:1], ok)
