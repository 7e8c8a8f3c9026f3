"""The demo training scripts, run as a user runs them: small, fast versions that must show learning.

Each script runs in a subprocess. "Learning happened" means a loss far below what a model that learned
nothing gets, and below what a model gets that missed the point of the task:

- Reversal (train_seq2seq.py). An untrained model's loss is about ln 29 = 3.37 (29 tokens: PAD, BOS,
  EOS and 26 letters). A decoder that ignores the source can learn at best that letters are equally
  likely, about 2.8 nats. The threshold is 0.1 · ln 29 = 0.34: only a decoder that reads the source
  through cross-attention gets there, and it must also get 90% of held-out strings exactly right.
- Balanced brackets (train_classifier.py). An untrained model's loss is about ln 2 = 0.69. Counting each
  kind of bracket cannot tell balanced strings from those with two brackets swapped; the best any
  counting model can do on this data is 0.47 nats and 75% accuracy. The threshold is 0.5 · ln 2 = 0.35
  on the training and on the held-out loss, and 85% held-out accuracy: only a model that uses the order
  of the brackets gets there.

``test_an_untrained_model_is_above_the_thresholds`` checks the first half of each claim on the same data
and model: the loss at iteration 0, before any update, is above the threshold.
"""
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SUMMARY_KEYS = {"accuracy", "n_test", "wall_s", "iters", "final_loss", "device"}

# A few seconds each, and enough to learn the task well.
SEQ2SEQ_FAST = ["--iters", "300", "--batch-size", "32", "--n-layer", "1", "--n-embd", "32", "--n-head", "2",
                "--max-len", "6", "--n-train", "3000", "--n-test", "200"]
SEQ2SEQ_LOSS = 0.1 * math.log(29)
CLASSIFIER_FAST = ["--iters", "400", "--batch-size", "64", "--n-layer", "2", "--n-embd", "128",
                   "--n-head", "8", "--lr", "7e-4", "--warmup-iters", "50", "--max-len", "8",
                   "--n-train", "2000", "--n-test", "200", "--curriculum-iters", "80"]
CLASSIFIER_LOSS = 0.5 * math.log(2)
QUIET = ["--log-interval", "100", "--eval-interval", "100000"]


def run_script(name, *args, timeout=120):
    """Run scripts/<name> with args; -> (the JSON summary on its last line, all of stdout)."""
    env = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    result = subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    last_line = result.stdout.strip().splitlines()[-1]
    summary = json.loads(last_line)
    assert SUMMARY_KEYS <= set(summary), f"the summary lacks {SUMMARY_KEYS - set(summary)}: {last_line}"
    assert 0.0 <= summary["accuracy"] <= 1.0
    return summary, result.stdout


@pytest.mark.parametrize("seed", [1337, 0, 1])
def test_seq2seq_learns_to_reverse(tmp_path, seed):
    """At the default seed and two others: a recipe that learns at one seed only fails here."""
    summary, stdout = run_script("train_seq2seq.py", *SEQ2SEQ_FAST, *QUIET, "--seed", str(seed),
                                 "--out-dir", str(tmp_path))
    assert summary["iters"] == 300 and summary["n_test"] == 200 and summary["device"] == "cpu"
    assert summary["final_loss"] < SEQ2SEQ_LOSS, stdout
    assert summary["accuracy"] >= 0.9, stdout
    assert "iter 100: loss" in stdout                       # nanoGPT-style progress lines
    heatmap = tmp_path / "cross_attention.png"
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a PNG file was written
    assert summary["heatmap"] == str(heatmap)
    assert (tmp_path / "ckpt.npz").is_file()


def test_classifier_learns_balanced_brackets(tmp_path):
    summary, stdout = run_script("train_classifier.py", *CLASSIFIER_FAST, *QUIET, "--out-dir", str(tmp_path))
    assert summary["iters"] == 400 and summary["n_test"] == 200 and summary["device"] == "cpu"
    assert summary["final_loss"] < CLASSIFIER_LOSS, stdout
    assert summary["test_loss"] < CLASSIFIER_LOSS, stdout
    assert summary["accuracy"] >= 0.85, stdout
    assert "iter 100: loss" in stdout
    assert (tmp_path / "ckpt.npz").is_file()


# The classifier's default recipe (its model, data, learning rate and curriculum), shortened from 3000
# iterations to 1000 (--curriculum-iters scaled with it). Before the curriculum, the full recipe's loss
# sat at ln 2 for a seed-dependent while: seed 1337 ended at 92% on one machine and 99% on another.
CLASSIFIER_SHORT = ["--iters", "1000", "--curriculum-iters", "200", "--log-interval", "1000",
                    "--eval-interval", "100000"]
CLASSIFIER_SHORT_ACCURACY = 0.95


def test_the_classifier_recipe_reaches_its_bar_at_every_seed(tmp_path):
    """The shortened default recipe at seeds 1337 and 0, run side by side (one BLAS thread each): every
    seed reaches 95% held-out accuracy (2,000 strings). A change that makes the recipe depend on luck
    fails here: without the curriculum (--curriculum-iters 0) the same runs end at 92.55% and 94.6% (on an
    Intel Xeon)."""
    env = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    runs = {seed: subprocess.Popen([sys.executable, str(SCRIPTS / "train_classifier.py"), *CLASSIFIER_SHORT,
                                    "--seed", str(seed), "--out-dir", str(tmp_path / str(seed))],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for seed in (1337, 0)}
    accuracy = {}
    for seed, process in runs.items():
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, f"seed {seed}:\n{stdout}\n{stderr}"
        summary = json.loads(stdout.strip().splitlines()[-1])
        assert summary["iters"] == 1000 and summary["curriculum_iters"] == 200 and summary["n_test"] == 2000
        accuracy[seed] = summary["accuracy"]
    assert min(accuracy.values()) >= CLASSIFIER_SHORT_ACCURACY, accuracy


@pytest.mark.parametrize("name, fast, threshold, chance", [
    pytest.param("train_seq2seq.py", SEQ2SEQ_FAST, SEQ2SEQ_LOSS, math.log(29), id="seq2seq"),
    pytest.param("train_classifier.py", CLASSIFIER_FAST, CLASSIFIER_LOSS, math.log(2), id="classifier"),
])
def test_an_untrained_model_is_above_the_thresholds(tmp_path, name, fast, threshold, chance):
    """With one iteration the reported loss is the untrained model's (it is computed before the update)."""
    summary, stdout = run_script(name, *fast, "--iters", "1", "--out-dir", str(tmp_path))
    assert summary["final_loss"] > 0.9 * chance, stdout       # an untrained model guesses
    assert summary["final_loss"] > threshold, stdout


@pytest.mark.parametrize("name", ["train_seq2seq.py", "train_classifier.py"])
def test_help(name):
    result = subprocess.run([sys.executable, str(SCRIPTS / name), "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ["--iters", "--batch-size", "--n-layer", "--n-embd", "--n-head", "--lr", "--seed", "--device",
                 "--out-dir"]:
        assert flag in result.stdout


@pytest.mark.parametrize("name", ["train_seq2seq.py", "train_classifier.py"])
def test_runs_on_the_gpu_code_path(tmp_path, name):
    """--device standin runs the code as under CuPy: a host array mixed into device arithmetic fails."""
    tiny = ["--iters", "2", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--max-len", "6",
            "--n-train", "200", "--n-test", "20", "--eval-interval", "1"]
    summary, _ = run_script(name, *tiny, "--device", "standin", "--out-dir", str(tmp_path))
    assert summary["device"] == "standin" and summary["iters"] == 2
    assert math.isfinite(summary["final_loss"])


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_gpu_without_cupy_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "train_seq2seq.py"), "--device", "gpu",
                             "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--device gpu is not available here" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["train_seq2seq.py", "train_classifier.py"])
def test_a_seed_gives_the_same_run(tmp_path, name):
    tiny = ["--iters", "5", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--max-len", "6",
            "--n-train", "200", "--n-test", "20"]
    first, _ = run_script(name, *tiny, "--seed", "7", "--out-dir", str(tmp_path / "a"))
    again, _ = run_script(name, *tiny, "--seed", "7", "--out-dir", str(tmp_path / "b"))
    other, _ = run_script(name, *tiny, "--seed", "8", "--out-dir", str(tmp_path / "c"))
    assert first["final_loss"] == again["final_loss"] and first["accuracy"] == again["accuracy"]
    assert other["final_loss"] != first["final_loss"]


def run_raw(name, *args, timeout=120):
    env = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("name", ["train_seq2seq.py", "train_classifier.py"])
def test_nonsense_settings_are_refused_before_any_work(tmp_path, name):
    result = run_raw(name, "--lr=-1e-3", "--dropout", "1", "--grad-clip=-1", "--beta2", "1.5",
                     "--weight-decay=-0.1", "--seed=-3", "--out-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for message in ["--lr -0.001: must be a finite number > 0", "--dropout 1.0: must be a probability in [0, 1)",
                    "--grad-clip -1.0: must be a finite number >= 0 (0 turns clipping off)",
                    "--beta2 1.5: must be in [0, 1)", "--weight-decay -0.1: must be a finite number >= 0",
                    "--seed -3: must be an integer >= 0"]:
        assert message in result.stderr
    assert not (tmp_path / "run").exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = run_raw(name, "--out-dir", str(a_file))
    assert result.returncode == 2 and f"--out-dir {a_file}: is a file, not a folder" in result.stderr


def test_grad_clip_zero_means_no_clipping(tmp_path):
    tiny = ["--iters", "6", "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--max-len", "6",
            "--n-train", "200", "--n-test", "20", "--log-interval", "1", "--lr", "1e-2", "--warmup-iters", "0"]
    unclipped, _ = run_script("train_seq2seq.py", *tiny, "--grad-clip", "0", "--out-dir", str(tmp_path / "a"))
    unbounded, _ = run_script("train_seq2seq.py", *tiny, "--grad-clip", "1e9", "--out-dir", str(tmp_path / "b"))
    assert unclipped["final_loss"] == unbounded["final_loss"]


def test_ctrl_c_exits_130_without_a_traceback(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    # The script starts with Ctrl-C's default action, as from a terminal, even when the tests themselves
    # run in the background (`pytest &` in a script), where SIGINT is ignored and children inherit that.
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "train_classifier.py"), "--iters", "100000",
                             "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--n-train", "200",
                             "--n-test", "20", "--log-interval", "1", "--out-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.stdout.readline()
    assert proc.stdout.readline().startswith("iter 0")  # training
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip() == ("interrupted (Ctrl-C); the demos save their checkpoint only at the end, so "
                              "nothing was saved")
