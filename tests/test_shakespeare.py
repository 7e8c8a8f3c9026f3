"""Char-level Shakespeare: tokenizer, corpus discovery, batches, and the training and sampling scripts.

The training runs here are tiny (a 2-layer model on a slice of the corpus) so that the whole file takes
well under a minute; the full recipe is measured in the README.
"""
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinytransformer import backend, data, files
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.tokenizers import CharTokenizer
from tinytransformer.models.gpt import GPT
from tinytransformer.training import TrainConfig, TrainingDiverged, train

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = ROOT / "scripts" / "train_shakespeare.py"
SAMPLE_SCRIPT = ROOT / "scripts" / "sample.py"
TINY = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
        "--eval-iters", "2", "--log-interval", "1", "--sample-chars", "20"]


@pytest.fixture(scope="module")
def corpus_text():
    return find_shakespeare(log=lambda *_: None).read_text()


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory, corpus_text):
    """The first 60,000 characters: enough to learn character statistics in a few dozen steps."""
    path = tmp_path_factory.mktemp("data") / "slice.txt"
    path.write_text(corpus_text[:60_000])
    return path


def run_script(script, *args, check=True, timeout=120):
    result = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{script.name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def summary_of(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def train_losses(out_dir: Path) -> dict:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["iter"]: r["loss"] for r in records if r["kind"] == "train"}


# --- tokenizer and data ----------------------------------------------------------------------------------

def test_corpus_is_tiny_shakespeare(corpus_text):
    assert len(corpus_text) == 1_115_394
    assert CharTokenizer.from_text(corpus_text).vocab_size == 65


def test_tokenizer_round_trip_and_unseen_characters(corpus_text):
    tok = CharTokenizer.from_text(corpus_text)
    text = "ROMEO:\nWhat light through yonder window breaks?"
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match=r"not in the vocabulary: '#é'"):
        tok.encode("Romeo # é")
    assert CharTokenizer.from_dict(tok.to_dict()).chars == tok.chars


def test_split_and_batches_are_shifted_by_one(corpus_text):
    ds = TextDataset(corpus_text)
    assert len(ds.train) == int(0.9 * len(corpus_text)) and len(ds.train) + len(ds.val) == len(corpus_text)
    x, y = ds.get_batch("val", 4, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 16)
    assert np.array_equal(x[:, 1:], y[:, :-1])  # y[t] is the character after x[t]
    text = ds.tokenizer.decode(np.concatenate([x[0], y[0, -1:]]))
    assert text in corpus_text[int(0.9 * len(corpus_text)):]


def test_corpus_search_order(tmp_path, monkeypatch, corpus_text):
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
    # 1. an explicit path wins, used as given
    explicit = tmp_path / "mine.txt"
    explicit.write_text("hello")
    assert find_shakespeare(explicit) == explicit
    with pytest.raises(FileNotFoundError, match="No corpus at .*--data"):
        find_shakespeare(tmp_path / "missing.txt")

    # 3. a download is verified, then cached (here the "network" serves the right bytes)
    calls = []

    class Response:
        headers = {}                                 # no Content-Length announced

        def __init__(self, payload):
            self.payload = payload

        def read(self, size=-1):                     # the payload, then the end of the stream
            payload, self.payload = self.payload, b""
            return payload

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def serve(payload):
        def urlopen(url, timeout):
            calls.append(url)
            return Response(payload)
        return urlopen

    monkeypatch.setattr(data, "_shared_copies", lambda: [tmp_path / "no-shared.txt"])
    monkeypatch.setattr(files.urllib.request, "urlopen", serve(corpus_text.encode()))
    found = find_shakespeare(log=lambda *_: None)
    assert found == tmp_path / "cache" / "tinyshakespeare.txt" and calls == [data.SHAKESPEARE_URL]
    # 2. the cached copy is used next time, without asking the network
    assert find_shakespeare(log=lambda *_: None) == found and len(calls) == 1

    # a corrupt download is rejected; with no shared copy either, the error says how to get the file
    found.unlink()
    monkeypatch.setattr(files.urllib.request, "urlopen", serve(b"not shakespeare"))
    with pytest.raises(FileNotFoundError, match="(?s)but the published file has.*curl -o tinyshakespeare.txt"):
        find_shakespeare(log=lambda *_: None)

    # 4. the shared copy beside the checkout is the last resort
    shared = tmp_path / "shared.txt"
    shared.write_text(corpus_text)
    monkeypatch.setattr(data, "_shared_copies", lambda: [shared])
    assert find_shakespeare(log=lambda *_: None) == found
    assert hashlib.sha256(found.read_bytes()).hexdigest() == data.SHAKESPEARE_SHA256


# --- training -------------------------------------------------------------------------------------------

def test_tiny_model_learns(tmp_path, corpus_slice):
    result = run_script(TRAIN_SCRIPT, *TINY, "--batch-size", "16", "--max-iters", "150", "--eval-interval",
                        "75", "--lr", "1e-2", "--warmup-iters", "10", "--lr-decay-iters", "150", "--data",
                        corpus_slice, "--out-dir", tmp_path)
    summary = summary_of(result)
    vocab_size = len(set(corpus_slice.read_text()))
    assert abs(train_losses(tmp_path)[0] - math.log(vocab_size)) < 0.3  # starts at chance, ln(vocab)
    # Well below chance, and below 3.36, the validation loss of the best context-free (unigram) model
    # fitted to this slice: the model has learned to use the characters before each one.
    assert summary["best_val_loss"] < 3.15
    for key in ("best_val_loss", "iters", "ms_per_iter", "tokens_per_s", "wall_s", "steps_s", "device"):
        assert key in summary
    # steps_s sums the 150 step times: at least the half of them at or above their median, and less than
    # the whole run, which also evaluated three times and saved checkpoints
    assert 75 * summary["ms_per_iter"] / 1000 <= summary["steps_s"] < summary["wall_s"]
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "ckpt.npz").exists()


def test_resume_in_a_fresh_process_equals_an_uninterrupted_run(tmp_path, corpus_slice):
    # dropout > 0 so that the dropout generators' state must be restored too
    common = [*TINY, "--dropout", "0.1", "--warmup-iters", "2", "--eval-interval", "8", "--data", corpus_slice]
    whole, part = tmp_path / "whole", tmp_path / "part"
    uninterrupted = run_script(TRAIN_SCRIPT, *common, "--max-iters", "16", "--out-dir", whole)
    run_script(TRAIN_SCRIPT, *common, "--max-iters", "8", "--out-dir", part)   # stops after iteration 8's eval
    from tinytransformer.training.checkpoint import load_checkpoint
    assert load_checkpoint(part / "ckpt.npz").iteration == 8
    resumed = run_script(TRAIN_SCRIPT, *common, "--max-iters", "16", "--out-dir", part, "--resume")
    assert "resuming from" in resumed.stdout
    assert train_losses(part) == train_losses(whole)  # exactly equal, every iteration
    assert summary_of(resumed)["best_val_loss"] == summary_of(uninterrupted)["best_val_loss"]


def test_sigkill_at_any_moment_resumes_from_the_last_checkpoint(tmp_path, corpus_slice):
    # three workers share each batch of 8 rows (2 + 3 + 3): the shared step resumes bit for bit too
    common = [*TINY, "--n-embd", "16", "--block-size", "16", "--max-iters", "150", "--eval-interval", "10",
              "--workers", "3", "--data", corpus_slice]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *common, "--out-dir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (killed / "ckpt.npz").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # somewhere in the middle of later steps, maybe inside a checkpoint write
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-run, not already finished
    from tinytransformer.training.checkpoint import load_checkpoint
    assert 0 <= load_checkpoint(killed / "ckpt.npz").iteration < 150
    run_script(TRAIN_SCRIPT, *common, "--out-dir", killed, "--resume")
    run_script(TRAIN_SCRIPT, *common, "--out-dir", whole)
    assert train_losses(killed) == train_losses(whole)


def test_ctrl_c_saves_and_exits_cleanly(tmp_path, corpus_slice):
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--max-iters", "100000",
                             "--eval-interval", "100000", "--data", str(corpus_slice), "--out-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    metrics = tmp_path / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and '"train"' in metrics.read_text()):
        time.sleep(0.05)  # until a training step has been logged: Ctrl-C then lands during training
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr  # 128 + SIGINT, the convention after Ctrl-C
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted: saved")
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True and "continue with --resume" in stdout
    from tinytransformer.training.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path / "last.npz").iteration == summary["iters"] > 0
    # the best model (the only evaluation was at iteration 0) is kept apart from the latest state
    assert load_checkpoint(tmp_path / "ckpt.npz").iteration == 0


def test_ctrl_c_to_the_whole_group_stops_worker_processes_cleanly(tmp_path, corpus_slice):
    """A terminal's Ctrl-C reaches every process of its group, the step's worker processes too: they
    ignore it, and the run saves at the next step and exits 130 as with one worker, then resumes."""
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--workers", "2", "--max-iters", "100000",
                             "--eval-interval", "100000", "--data", str(corpus_slice), "--out-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,      # a process group of its own, as a terminal's
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = []
    for line in proc.stdout:
        started.append(line)
        if line.startswith("iter 3:"):
            break                                        # training, with its workers started
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted: saved")
    assert "2 workers share each batch" in "".join(started)
    iters = json.loads(stdout.strip().splitlines()[-1])["iters"]
    resumed = run_script(TRAIN_SCRIPT, "--resume", "--out-dir", tmp_path, "--max-iters", iters + 2)
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["iters"] == iters + 2


def test_a_worker_process_killed_mid_run_ends_the_run_with_a_clear_error(tmp_path, corpus_slice):
    """kill -9 of a worker (the system's out-of-memory killer, say): exit 2 with the worker and its exit
    code named, no traceback, and the run resumes from its last checkpoint."""
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--workers", "2", "--max-iters", "100000",
                             "--eval-interval", "100000", "--data", str(corpus_slice), "--out-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("iter 3:"):
            break
    worker = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    os.kill(worker, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert f"worker process 1 (pid {worker}) ended unexpectedly, exit code -9" in stderr
    assert "continue with --resume" in stderr
    resumed = run_script(TRAIN_SCRIPT, "--resume", "--out-dir", tmp_path, "--max-iters", 2)
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["iters"] == 2


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, corpus_slice, monkeypatch):
    cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=50,
                      warmup_iters=0, eval_interval=5, eval_iters=1, log_interval=1, out_dir=str(tmp_path),
                      data=str(corpus_slice), sample_chars=5, workers=1)   # one backward per iteration
    backward = GPT.backward
    calls = {"n": 0}

    def poisoned_backward(self, dlogits=None):
        backward(self, dlogits)
        calls["n"] += 1
        if calls["n"] == 8:  # iteration 7: a gradient turns into NaN
            self.wte.weight.grad[0, 0] = np.nan

    monkeypatch.setattr(GPT, "backward", poisoned_backward)
    with pytest.raises(TrainingDiverged, match="iteration 7: .*gradient norm nan"):
        train(cfg, log=lambda *_: None)
    from tinytransformer.training.checkpoint import load_checkpoint
    ckpt = load_checkpoint(tmp_path / "ckpt.npz")
    assert ckpt.iteration == 5  # the evaluation before the NaN; nothing was written after it
    assert all(np.isfinite(v).all() for v in ckpt.model_state.values())


def test_gpu_code_path_through_the_standin_backend(tmp_path, corpus_slice):
    result = run_script(TRAIN_SCRIPT, *TINY, "--max-iters", "6", "--eval-interval", "3", "--device",
                        "standin", "--data", corpus_slice, "--out-dir", tmp_path)
    assert summary_of(result)["backend"] == "standin"
    sample = run_script(SAMPLE_SCRIPT, "--out-dir", tmp_path, "--device", "standin", "--max-new-tokens", "10")
    assert len(sample.stdout) > 10


# --- sampling -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, corpus_slice):
    out = tmp_path_factory.mktemp("trained")
    run_script(TRAIN_SCRIPT, *TINY, "--max-iters", "10", "--eval-interval", "5", "--data", corpus_slice,
               "--out-dir", out)
    return out


def test_sampling_is_deterministic_under_a_seed(trained_dir):
    args = ["--out-dir", trained_dir, "--prompt", "ROMEO:", "--max-new-tokens", "40", "--num-samples", "2"]
    first = run_script(SAMPLE_SCRIPT, *args, "--seed", "1").stdout
    again = run_script(SAMPLE_SCRIPT, *args, "--seed", "1").stdout
    other = run_script(SAMPLE_SCRIPT, *args, "--seed", "2").stdout
    assert first == again and first != other
    assert first.startswith("ROMEO:")
    uncached = run_script(SAMPLE_SCRIPT, *args, "--seed", "1", "--no-cache").stdout
    assert uncached == first


def test_sampling_errors(trained_dir, tmp_path):
    bad_prompt = run_script(SAMPLE_SCRIPT, "--out-dir", trained_dir, "--prompt", "ROMEO~", check=False)
    assert bad_prompt.returncode == 2 and "not in the vocabulary: '~'" in bad_prompt.stderr
    missing = run_script(SAMPLE_SCRIPT, "--out-dir", tmp_path / "nothing", check=False)
    assert missing.returncode == 2 and "no checkpoint at" in missing.stderr
    corrupt_dir = tmp_path / "corrupt"
    corrupt_dir.mkdir()
    good = (trained_dir / "ckpt.npz").read_bytes()
    (corrupt_dir / "ckpt.npz").write_bytes(good[: len(good) // 2])
    corrupt = run_script(SAMPLE_SCRIPT, "--out-dir", corrupt_dir, check=False)
    assert corrupt.returncode == 2 and "not a valid tinytransformer checkpoint" in corrupt.stderr


def test_gpu_preset_without_cupy_says_how_to_install_it(tmp_path, corpus_slice):
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here: the gpu preset would run")
    except ImportError:
        pass
    result = run_script(TRAIN_SCRIPT, "--preset", "gpu", "--max-iters", "1", "--data", corpus_slice,
                        "--out-dir", tmp_path, check=False)
    assert result.returncode == 2 and "pip install" in result.stderr and "cupy-cuda12x" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_corpus_error(tmp_path, monkeypatch):
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.setattr(data, "_shared_copies", lambda: [tmp_path / "none.txt"])
    monkeypatch.setattr(files.urllib.request, "urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("no network")))
    with pytest.raises(FileNotFoundError, match="Tiny Shakespeare was not found: download failed"):
        find_shakespeare(log=lambda *_: None)
    assert backend.name() == "numpy"


def test_a_time_limit_stops_the_run_after_an_evaluation(tmp_path, corpus_slice):
    result = run_script(TRAIN_SCRIPT, *TINY, "--max-iters", "100000", "--eval-interval", "100000",
                        "--max-seconds", "3", "--data", corpus_slice, "--out-dir", tmp_path)
    summary = summary_of(result)
    assert summary["time_limit_reached"] and 0 < summary["iters"] < 100000
    assert f"reached: stopping at iteration {summary['iters']}" in result.stdout
    evals = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert [e["iter"] for e in evals] == [0, summary["iters"]]   # evaluated where it stopped
    assert summary["best_val_loss"] == min(e["val_loss"] for e in evals)
    assert 3 <= summary["wall_s"] < 60


def test_the_loss_plot_is_redrawn_at_most_every_plot_every_s_and_at_the_end(tmp_path, corpus_slice, monkeypatch):
    """Drawing loss.png costs about as much as a dozen steps: during the run it is redrawn only once the
    last drawing is plot_every_s old, and once more at the end, with every evaluation in it."""
    from tinytransformer.training import run as run_module
    drawn = []
    monkeypatch.setattr(run_module, "plot_losses", lambda records, path: drawn.append(list(records)))
    cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=8, eval_interval=2,
                      eval_iters=1, log_interval=1, sample_chars=1, data=str(corpus_slice), out_dir=str(tmp_path))
    train(cfg, log=lambda *_: None)                          # evaluations at 0, 2, 4, 6, 8
    assert len(drawn) == 2                                   # the first evaluation's, and the end's
    assert [r["iter"] for r in drawn[-1] if r["kind"] == "eval"] == [0, 2, 4, 6, 8]
    drawn.clear()
    monkeypatch.setattr(run_module.Run, "plot_every_s", 0.0)
    train(TrainConfig(**{**cfg.__dict__, "overwrite": True}), log=lambda *_: None)
    assert len(drawn) == 6                                   # at every evaluation, and at the end


def test_every_step_clips_the_gradient_of_every_parameter(tmp_path, corpus_slice, monkeypatch):
    """The loop lists the model's parameters once (run.parameters); each step clips all of them together,
    the model's own: the arrays the optimizer then reads, every one of them and no replica's."""
    from tinytransformer.training import loop as loop_module
    from tinytransformer.training.run import Run
    clipped, runs = [], []
    original_init = Run.__init__

    def remembered(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        runs.append(self)

    monkeypatch.setattr(Run, "__init__", remembered)
    monkeypatch.setattr(loop_module, "clip_grad_norm",
                        lambda parameters, bound: clipped.append([id(p.grad) for p in parameters]) or 0.5)
    cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=3, eval_interval=3,
                      eval_iters=1, log_interval=1, sample_chars=1, workers=2, data=str(corpus_slice),
                      out_dir=str(tmp_path))
    train(cfg, log=lambda *_: None)
    model_grads = [id(p.grad) for p in runs[0].model.parameters()]
    assert len(clipped) == 3 and all(ids == model_grads for ids in clipped)
