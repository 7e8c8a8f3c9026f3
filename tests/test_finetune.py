"""Training beyond the character-level recipe: gradient accumulation, BPE tokens, and starting from
GPT-2's weights (``--init``), with the run folder's checkpoints, resume and sampling as for char runs.

Every model here is tiny (GPT-2 small is measured by hand, see the README); the texts are a few
kilobytes.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinytransformer import backend, files
from tinytransformer.data import split_text
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.pretrained import gpt2
from tinytransformer.tokenizers import BPETokenizer
from tinytransformer.tokenizers import gpt2 as gpt2_files
from tinytransformer.training import (TrainConfig, accumulate_gradients, load_checkpoint, new_run_config,
                                      resume_config, train)

from helpers.scripts import TINY, run_in_process as run


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
    def losses_of(name, batch_size, grad_accum):
        cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=batch_size,
                          grad_accum=grad_accum, max_iters=6, warmup_iters=0, lr=1e-2, eval_interval=100,
                          eval_iters=1, log_interval=1, sample_chars=1, dtype="float64",
                          data=str(text_file), out_dir=str(tmp_path / name))
        train(cfg, log=lambda *_: None)
        return train_losses(tmp_path / name)
    big, accumulated = losses_of("big", 8, 1), losses_of("accumulated", 4, 2)
    assert sorted(big) == list(range(6)) and len(set(big.values())) == 6      # the losses move
    for it in big:
        assert accumulated[it] == pytest.approx(big[it], rel=1e-12)
    # Like --batch-size, --grad-accum may change when a run is resumed.
    summary = train(resume_config(tmp_path / "accumulated", {"max_iters": 8, "grad_accum": 3}), log=lambda *_: None)
    assert summary["iters"] == 8
    assert load_checkpoint(tmp_path / "accumulated" / "last.npz").config["train"]["grad_accum"] == 3


# --- BPE tokens -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bpe_text(tmp_path_factory):
    """Lines of pangrams, and in the last tenth (the validation split) a word found nowhere else."""
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(108)]
    lines += ["zyzzyva zyzzyva zyzzyva zyzzyva zyzzyva zyzzyva\n"] * 12
    path = tmp_path_factory.mktemp("data") / "bpe.txt"
    path.write_text("".join(lines))
    assert "zyzzyva" not in split_text(path.read_text())[0] and "zyzzyva" in split_text(path.read_text())[1]
    return path


def test_a_bpe_run_trains_saves_resumes_and_samples_with_its_tokenizer(tmp_path, bpe_text, script, sampler,
                                                                       capsys, monkeypatch):
    common = [*TINY, "--tokenizer", "bpe", "--vocab-size", 300, "--eval-interval", 3, "--data", bpe_text]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run(script, capsys, *common, "--max-iters", 6, "--out-dir", whole)[0] == 0
    saved = load_checkpoint(whole / "ckpt.npz")
    tokenizer = BPETokenizer.from_dict(saved.tokenizer)
    assert tokenizer.vocab_size == 300 == saved.config["model"]["vocab_size"]
    # trained on the training split only: the validation text's word made no token
    assert not any(b"zyzz" in token for token in tokenizer.ranks)
    assert saved.config["train"]["tokenizer"] == "bpe" and saved.config["train"]["bpe_vocab_size"] == 300

    assert run(script, capsys, *common, "--max-iters", 3, "--out-dir", part)[0] == 0

    def no_training(*args, **kwargs):
        raise AssertionError("a resumed run trained a new tokenizer")
    monkeypatch.setattr(BPETokenizer, "train", no_training)
    code, out, err = run(script, capsys, "--resume", "--out-dir", part, "--max-iters", 6)
    assert code == 0, err
    assert train_losses(part) == train_losses(whole)     # the same tokens, the same steps
    assert load_checkpoint(part / "last.npz").tokenizer == saved.tokenizer

    code, out, err = run(sampler, capsys, "--out-dir", part, "--prompt", "the lazy", "--max-new-tokens", 12)
    assert code == 0, err
    assert out.startswith("the lazy") and len(out.split("\n" + "-" * 40)[0]) > len("the lazy")
    # the refusals of a changed tokenizer on resume
    for flags, message in ((["--vocab-size", 400], "--vocab-size 400: the run in"),
                           (["--tokenizer", "char"], "--tokenizer char: the run in")):
        code, _, err = run(script, capsys, "--resume", "--out-dir", part, "--max-iters", 9, *flags)
        assert code == 2 and message in err

    # a checkpoint written before the BPE's size was called bpe_vocab_size records it as vocab_size
    older = tmp_path / "older"
    older.mkdir()
    with np.load(part / "last.npz", allow_pickle=False) as archive:
        arrays = dict(archive)
    header = json.loads(bytes(arrays["header"]).decode())
    header["config"]["train"]["vocab_size"] = header["config"]["train"].pop("bpe_vocab_size")
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(older / "last.npz", **arrays)
    assert resume_config(older, {"max_iters": 9}).bpe_vocab_size == 300
    code, _, err = run(script, capsys, "--resume", "--out-dir", older, "--max-iters", 9, "--vocab-size", 400)
    assert code == 2 and "--vocab-size 400: the run in" in err and "--vocab-size 300" in err


def test_vocab_size_only_with_bpe(tmp_path, text_file, script, capsys):
    code, _, err = run(script, capsys, *TINY, "--vocab-size", 300, "--data", text_file, "--out-dir", tmp_path / "r")
    assert code == 2 and "--vocab-size 300: only --tokenizer bpe" in err
    code, _, err = run(script, capsys, *TINY, "--tokenizer", "bpe", "--vocab-size", 200, "--data", text_file,
                       "--out-dir", tmp_path / "r")
    assert code == 2 and "--vocab-size 200: must be an integer >= 257" in err
    assert not (tmp_path / "r").exists()


# --- starting from GPT-2's weights ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory, bpe_text):
    """A GPT-2 in GPT-2's own files, as save_pretrained writes them (model.safetensors, config.json,
    vocab.json, merges.txt), of a tiny size: 2 layers, width 16, a context of 32, 300 tokens."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = BPETokenizer.train(bpe_text.read_text(), 300)
    tokenizer.to_gpt2_files(folder)
    model = GPT(gpt2.gpt2_config("gpt2", vocab_size=300, block_size=32, n_layer=2, n_head=2, n_embd=16, seed=5))
    gpt2.save_gpt2(model, folder)
    return folder, model.state_dict(), tokenizer


def test_init_from_a_gpt2_folder_starts_from_its_weights_and_resumes(tmp_path, text_file, tiny_gpt2, script,
                                                                      sampler, capsys):
    folder, weights, tokenizer = tiny_gpt2
    folder = Path(shutil.copytree(folder, tmp_path / "model"))
    out = tmp_path / "run"
    common = ["--batch-size", 4, "--eval-iters", 1, "--log-interval", 1, "--sample-chars", 8, "--data", text_file]
    code, stdout, err = run(script, capsys, "--init", folder, "--block-size", 16, "--max-iters", 0, *common,
                            "--out-dir", out)
    assert code == 0, err
    start = load_checkpoint(out / "ckpt.npz")
    assert start.iteration == 0
    for name, value in weights.items():     # GPT-2's weights, the position table cropped to 16 rows
        np.testing.assert_array_equal(start.model_state[name], value[:16] if name == "wpe.weight" else value)
    model = start.config["model"]
    assert (model["n_layer"], model["n_embd"], model["block_size"], model["vocab_size"]) == (2, 16, 16, 300)
    assert start.tokenizer == tokenizer.to_dict()       # the tokenizer read from the folder's files
    assert start.config["train"]["tokenizer"] == "gpt2" and start.config["train"]["n_layer"] == 2

    shutil.rmtree(folder)               # a resumed run reads everything from its checkpoint
    code, stdout, err = run(script, capsys, "--resume", "--out-dir", out, "--max-iters", 3, "--eval-interval", 3)
    assert code == 0 and "resuming from" in stdout, err
    resumed = load_checkpoint(out / "last.npz")
    assert resumed.iteration == 3 and resumed.tokenizer == start.tokenizer
    assert not np.array_equal(resumed.model_state["wte.weight"], weights["wte.weight"])   # it trained
    code, stdout, err = run(sampler, capsys, "--out-dir", out, "--which", "last", "--prompt", "the",
                            "--max-new-tokens", 5)
    assert code == 0 and stdout.startswith("the"), err


def test_init_refuses_conflicting_settings_before_writing_anything(tmp_path, text_file, tiny_gpt2, script, capsys):
    folder, _, _ = tiny_gpt2
    out = tmp_path / "run"
    for flags, message in ((["--n-layer", 4], "--n-layer 4: the model of --init"),
                           (["--n-embd", 32, "--n-head", 2], "--n-embd 32: the model of --init"),
                           (["--block-size", 64], "--block-size 64: the model of --init"),
                           (["--tokenizer", "char"], "--tokenizer char: the weights of --init"),
                           (["--vocab-size", 400], "--vocab-size 400:")):
        code, _, err = run(script, capsys, "--init", folder, *flags, "--data", text_file, "--out-dir", out)
        assert code == 2 and message in err, (flags, err)
    code, _, err = run(script, capsys, "--init", tmp_path / "no-such-model", "--data", text_file, "--out-dir", out)
    assert code == 2 and "neither scratch, a GPT-2 size" in err
    assert not out.exists()


def test_missing_gpt2_vocabulary_files_are_named_with_where_to_get_them(tmp_path, text_file, tiny_gpt2,
                                                                         monkeypatch):
    folder, _, _ = tiny_gpt2
    bare = tmp_path / "bare"                        # the weights alone, without vocab.json and merges.txt
    bare.mkdir()
    (bare / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "empty-cache"))

    def no_network(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(files.urllib.request, "urlopen", no_network)
    cfg = new_run_config({"init": str(bare / "model.safetensors"), "data": str(text_file),
                          "out_dir": str(tmp_path / "run")})
    with pytest.raises(FileNotFoundError) as error:
        train(cfg, log=lambda *_: None)
    message = str(error.value)
    for needed in ("vocab.json", "merges.txt", gpt2_files.URL.format(name="gpt2", file="vocab.json"),
                   gpt2_files.URL.format(name="gpt2", file="merges.txt"), str(tmp_path / "empty-cache")):
        assert needed in message
    assert not (tmp_path / "run").exists()


def test_gpt2_random_pads_the_vocabulary_and_samples_only_the_tokenizers_ids(tmp_path, bpe_text, monkeypatch):
    """--init gpt2-random: GPT-2 small's shape (made tiny here) with a BPE of fewer tokens than its 50,257
    rows; the rows no token uses are never sampled (the tokenizer could not decode them)."""
    monkeypatch.setitem(gpt2.SIZES, "gpt2", (1, 2, 16))
    monkeypatch.setattr(gpt2, "VOCAB_SIZE", 600)
    monkeypatch.setattr(gpt2, "CONTEXT", 32)
    out = tmp_path / "run"
    settings = {"init": "gpt2-random", "bpe_vocab_size": 300, "batch_size": 2, "max_iters": 2, "eval_interval": 2,
                "eval_iters": 1, "sample_chars": 40, "data": str(bpe_text), "out_dir": str(out)}
    summary = train(new_run_config(settings), log=lambda *_: None)
    saved = load_checkpoint(out / "last.npz")
    assert saved.config["model"]["vocab_size"] == 600 and saved.config["model"]["block_size"] == 32
    assert BPETokenizer.from_dict(saved.tokenizer).vocab_size == 300
    assert saved.config["train"]["init"] == "gpt2-random" and saved.config["train"]["n_layer"] == 1
    assert len(summary["sample"]) > 0
    resumed = train(resume_config(out, {"max_iters": 4}), log=lambda *_: None)
    assert resumed["iters"] == 4
