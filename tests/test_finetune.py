"""Training beyond the character-level recipe: gradient accumulation, BPE tokens, and starting from
GPT-2's weights (``--init``), with the run folder's checkpoints, resume and sampling as for char runs.

Every model here is tiny (GPT-2 small is measured by hand, see the README); the texts are a few
kilobytes.
"""
import json

import numpy as np
import pytest

from tinytransformer import backend
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.trainer import TrainConfig, accumulate_gradients, train


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(120)))
    return path


def train_losses(out_dir) -> dict:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["iter"]: r["loss"] for r in records if r["kind"] == "train"}


# --- gradient accumulation ------------------------------------------------------------------------------

def test_accumulated_gradient_equals_the_gradient_of_one_big_batch():
    with backend.using(dtype="float64"):
        config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=True)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 11, (6, 8))
        y = rng.integers(0, 11, (6, 8))
        whole, accumulated = GPT(config), GPT(config)
        loss_whole = accumulate_gradients(whole, x, y, grad_accum=1)
        loss_accumulated = accumulate_gradients(accumulated, x, y, grad_accum=3)   # 3 micro-batches of 2
        assert float(loss_accumulated) == pytest.approx(float(loss_whole), rel=1e-13)
        for (name, p), q in zip(whole.named_parameters(), accumulated.parameters()):
            assert np.abs(p.grad).max() > 0, name
            np.testing.assert_allclose(q.grad, p.grad, rtol=1e-10, atol=1e-15, err_msg=name)
        # A second step starts from zero: the previous step's gradients are not carried over.
        accumulate_gradients(accumulated, x, y, grad_accum=3)
        for (name, p), q in zip(whole.named_parameters(), accumulated.parameters()):
            np.testing.assert_allclose(q.grad, p.grad, rtol=1e-10, atol=1e-15, err_msg=name)


def test_a_run_with_accumulation_follows_the_run_with_the_big_batch(tmp_path, text_file):
    """grad_accum 2 × batch 4 draws the same windows as batch 8 and takes the same steps (float64)."""
    def run(name, batch_size, grad_accum):
        cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=batch_size,
                          grad_accum=grad_accum, max_iters=6, warmup_iters=0, lr=1e-2, eval_interval=100,
                          eval_iters=1, log_interval=1, sample_chars=1, dtype="float64",
                          data=str(text_file), out_dir=str(tmp_path / name))
        train(cfg, log=lambda *_: None)
        return train_losses(tmp_path / name)
    big, accumulated = run("big", 8, 1), run("accumulated", 4, 2)
    assert sorted(big) == list(range(6)) and len(set(big.values())) == 6      # the losses move
    for it in big:
        assert accumulated[it] == pytest.approx(big[it], rel=1e-12)
