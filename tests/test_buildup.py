"""StageModel: the GPT with each idea switched on or off (lessons 10 and 15).

1. every stage's gradients against finite differences (float64, tiny configs);
2. with every switch on it is GPT's architecture: the same logits from the same weights;
3. each switch does what it says: the bigram reads only the current token, no stage sees the future,
   a residual connection passes the gradient on unchanged when its branches are zero.
"""
import numpy
import pytest

from helpers.models import assert_model_gradients, randomise_weights
from tinytransformer import backend
from tinytransformer.models import GPT, GPTConfig, StageConfig, StageModel
from tinytransformer.models.buildup import gpt_names

STAGES = {
    "bigram": dict(n_head=0),
    "one head": dict(n_head=1, n_layer=1),
    "multi-head": dict(n_head=2, n_layer=1),
    "mlp": dict(n_head=2, n_layer=1, mlp=True),
    "deep": dict(n_head=2, mlp=True),
    "residual": dict(n_head=2, mlp=True, residual=True),
    "layernorm": dict(n_head=2, mlp=True, residual=True, layernorm=True),
    "layernorm, no residual": dict(n_head=2, mlp=True, layernorm=True),
}


def tiny_stage(**switches):
    """Vocabulary 7, context 5, two layers, n_embd 4; ``switches`` override config fields."""
    return StageModel(StageConfig(**{**dict(vocab_size=7, block_size=5, n_embd=4, n_layer=2), **switches}))


def batch(seed=0, shape=(2, 5)):
    rng = numpy.random.default_rng(seed)
    return rng.integers(0, 7, shape), rng.integers(0, 7, shape)      # idx, targets


# Every switch, in and out of combination with the others, at about a second each.
CHECKED = ["bigram", "one head", "deep", "residual", "layernorm", "layernorm, no residual"]


@pytest.mark.parametrize("stage", CHECKED)
def test_stage_gradients(stage):
    idx, targets = batch()
    with backend.using("float64"):
        model = tiny_stage(**STAGES[stage])
        randomise_weights(model)
        assert_model_gradients(model, lambda: model(idx, targets)[1], "StageModel")


def test_every_switch_on_is_gpts_architecture():
    idx, targets = batch(1)
    with backend.using("float64"):
        stage = tiny_stage(**STAGES["layernorm"])
        randomise_weights(stage)
        gpt = GPT(GPTConfig(vocab_size=7, block_size=5, n_layer=2, n_head=2, n_embd=4, tie_weights=False))
        gpt.load_state_dict(gpt_names(stage.state_dict()))  # raises if a name or shape has no place in GPT
        stage_logits, stage_loss = stage(idx, targets)
        gpt_logits, gpt_loss = gpt(idx, targets)
    numpy.testing.assert_allclose(stage_logits, gpt_logits, rtol=0, atol=1e-12)
    assert abs(float(stage_loss) - float(gpt_loss)) < 1e-12


def test_the_bigram_reads_only_the_current_token():
    idx, _ = batch(2)
    changed = idx.copy()
    changed[:, :-1] = (changed[:, :-1] + 1) % 7                       # every token but the last
    model = tiny_stage(**STAGES["bigram"])
    assert model.num_parameters() == 7 * 4 + 4 * 7                    # the table E and the output W only
    before, after = model(idx)[0], model(changed)[0]
    numpy.testing.assert_array_equal(before[:, -1], after[:, -1])
    assert not numpy.allclose(before[:, :-1], after[:, :-1])


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "bigram"])
def test_no_stage_sees_the_future(stage):
    idx, _ = batch(3)
    changed = idx.copy()
    changed[:, 3:] = (changed[:, 3:] + 1) % 7                         # positions 3 and 4
    model = tiny_stage(**STAGES[stage])
    before, after = model(idx)[0], model(changed)[0]
    numpy.testing.assert_array_equal(before[:, :3], after[:, :3])
    assert not numpy.allclose(before[:, 3:], after[:, 3:])


@pytest.mark.parametrize("residual", [True, False])
def test_with_zero_branches_only_the_residual_path_passes_the_gradient(residual):
    """Zero every sublayer's last Linear: with residuals each block is the identity and the gradient
    reaches the embeddings unchanged; without them nothing reaches the embeddings at all."""
    idx, targets = batch(4)
    model = tiny_stage(**{**STAGES["residual"], "residual": residual})
    for name, module in model.named_modules():
        if name.endswith(("out_proj", "fc2")):
            module.weight.data.fill(0)
            module.bias.data.fill(0)
    model(idx, targets)
    model.backward()
    position_grad = backend.to_numpy(model.wpe.weight.grad)
    assert (numpy.abs(position_grad).max() > 1e-4) == residual


def test_stage_config_errors_are_explained():
    with pytest.raises(ValueError, match="n_head=3 must divide n_embd=4"):
        tiny_stage(n_head=3)
    model = tiny_stage(n_head=2)
    with pytest.raises(ValueError, match="context is 5, got 6"):
        model(numpy.zeros((1, 6), dtype=numpy.int64))
