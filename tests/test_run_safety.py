"""Training runs that never lose work and refuse nonsense: scripts/train_shakespeare.py and sample.py as a
user meets them.

Each test makes the mistake a user could make (a second run into the same folder, two runs at once, a
resume on the wrong text, a nonsense flag, a torn log line, Ctrl-C, a closed pipe, a full disk) and
checks the message, and, where work is at stake, that the earlier run's files are still there and
loadable. The runs are tiny (a 1-layer model on a few thousand characters), so each takes a second or two.
"""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinytransformer.training import checkpoint as checkpoint_module
from tinytransformer.training.checkpoint import load_checkpoint, save_checkpoint
from tinytransformer.models import GPT, GPTConfig, Seq2Seq, Seq2SeqConfig
from tinytransformer.training import SettingsError, TrainConfig, check_settings, train

from helpers.scripts import SAMPLE_SCRIPT, TINY, TRAIN_SCRIPT, run_in_process


def run_script(*args, timeout=120):
    return subprocess.run([sys.executable, str(TRAIN_SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN and Infinity, as strict parsers (JavaScript's, jq's) do."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(line, parse_constant=refuse)


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def pristine_run(tmp_path_factory, text_file, script):
    """A run of 4 iterations with evaluations at 0, 2 and 4 (trained once for this file)."""
    out = tmp_path_factory.mktemp("pristine") / "run"
    assert script.main([*TINY, "--max-iters", "4", "--eval-interval", "2", "--data", str(text_file),
                        "--out-dir", str(out)]) == 0
    return out


@pytest.fixture()
def finished_run(tmp_path, pristine_run):
    """A copy of pristine_run in tmp_path/run, for one test to change."""
    out = tmp_path / "run"
    shutil.copytree(pristine_run, out)
    return out


# --- 1. a second run into the same folder ----------------------------------------------------------

def test_a_second_run_refuses_a_folder_that_holds_a_run(finished_run, text_file, script, capsys):
    before = snapshot(finished_run)
    code, _, err = run_in_process(script, capsys, *TINY, "--max-iters", 2, "--data", text_file,
                                  "--out-dir", finished_run)
    assert code == 2
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err \
        and "another --out-dir" in err
    assert snapshot(finished_run) == before  # nothing of the first run was touched
    assert load_checkpoint(finished_run / "ckpt.npz").iteration in (2, 4)

    code, out, _ = run_in_process(script, capsys, *TINY, "--max-iters", 2, "--eval-interval", 2, "--data",
                                  text_file, "--out-dir", finished_run, "--overwrite")
    assert code == 0 and "--overwrite: deleted the previous run's ckpt.npz, last.npz" in out
    assert load_checkpoint(finished_run / "last.npz").iteration == 2


# --- 2. two runs at once -----------------------------------------------------------------------------

def write_lock(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                 "started": "2026-01-01 00:00:00 UTC"}))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_folder_in_use_is_refused_and_a_stale_lock_taken_over(tmp_path, text_file, script, capsys):
    out = tmp_path / "run"
    write_lock(out, os.getppid())  # a live process (this one's parent), as a running run would be
    code, _, err = run_in_process(script, capsys, *TINY, "--max-iters", 1, "--data", text_file, "--out-dir", out)
    assert code == 2 and f"in use by another training run (pid {os.getppid()}" in err
    assert not (out / "metrics.jsonl").exists()

    pid = dead_pid()  # a run killed with kill -9 leaves its lock behind
    write_lock(out, pid)
    code, stdout, _ = run_in_process(script, capsys, *TINY, "--max-iters", 1, "--data", text_file,
                                     "--out-dir", out)
    assert code == 0 and f"taking over {out}: the run that locked it (pid {pid}" in stdout
    assert not (out / "run.lock").exists()  # released at the end


def test_two_real_runs_at_once(tmp_path, text_file):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--max-iters", "100000",
                              "--eval-interval", "100000", "--data", str(text_file), "--out-dir", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "last.npz").exists():
            time.sleep(0.05)
        second = run_script(*TINY, "--max-iters", 2, "--data", text_file, "--out-dir", out, "--resume")
        assert second.returncode == 2 and f"(pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130
    assert load_checkpoint(out / "last.npz").iteration > 0  # the first run's work was saved


# --- 3. resume reads the run's settings back ----------------------------------------------------------

def test_resume_reads_the_settings_back(finished_run, text_file, tmp_path, script, capsys):
    # No --data and no model flags: all come from the checkpoint (the default would be Tiny Shakespeare
    # and a 4-layer model).
    code, out, _ = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 6)
    assert code == 0 and "resuming from" in out
    ckpt = load_checkpoint(finished_run / "last.npz")
    assert ckpt.iteration == 6 and ckpt.config["model"]["n_layer"] == 1
    assert ckpt.config["data"]["path"] == str(text_file.resolve())
    iters = [json.loads(line)["iter"] for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert iters == sorted(iters) and iters[-1] == 6


def test_resume_refuses_what_cannot_change(finished_run, text_file, tmp_path, script, capsys):
    before = snapshot(finished_run)
    other = tmp_path / "other.txt"
    other.write_text(text_file.read_text().upper())
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--data", other)
    assert code == 2 and f"the run in {finished_run} was trained with --data {text_file.resolve()}" in err
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--n-embd", 32)
    assert code == 2 and "--n-embd 32: the run in" in err and "trained with --n-embd 16" in err
    # at or below the checkpoint's iteration: said, not done (the logged records stay)
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 3)
    assert code == 2 and "--max-iters 3: the run in" in err and "already at iteration 4" in err
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run)
    assert code == 2 and "has finished: it is at iteration 4 of --max-iters 4" in err
    assert snapshot(finished_run) == before

    # the same text under another name (the SHA-256 matches) may be given
    text_file_copy = tmp_path / "moved.txt"
    text_file_copy.write_bytes(text_file.read_bytes())
    code, out, _ = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--data",
                                  text_file_copy, "--max-iters", 5)
    assert code == 0


def test_resume_refuses_a_corpus_whose_content_changed(tmp_path, script, capsys):
    data = tmp_path / "text.txt"
    data.write_text("".join(f"row {i}: pack my box with five dozen liquor jugs.\n" for i in range(100)))
    out = tmp_path / "run"
    assert run_in_process(script, capsys, *TINY, "--max-iters", 2, "--eval-interval", 2, "--data", data,
                          "--out-dir", out)[0] == 0
    data.write_text(data.read_text().replace("box", "bag"))  # same characters, another text
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", out, "--max-iters", 4)
    assert code == 2 and "not the text the run in" in err and "SHA-256" in err


# --- 4. nonsense settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, rule", [
    ("--batch-size", "0", "must be an integer >= 1"),
    ("--lr", "-1e-3", "must be a finite number > 0"),
    ("--lr", "nan", "must be a finite number > 0"),
    ("--beta1", "1.5", "must be in [0, 1)"),
    ("--max-iters", "-5", "must be an integer >= 0"),
    ("--eval-iters", "0", "must be an integer >= 1"),
    ("--eval-interval", "0", "must be an integer >= 1"),
    ("--log-interval", "0", "must be an integer >= 1"),
    ("--n-layer", "0", "must be an integer >= 1"),
    ("--n-embd", "0", "must be an integer >= 1"),
    ("--block-size", "0", "must be an integer >= 1"),
    ("--grad-clip", "-1", "0 turns clipping off"),
    ("--dropout", "1", "must be a probability in [0, 1)"),
])
def test_nonsense_settings_are_refused_before_anything_is_written(tmp_path, text_file, script, capsys,
                                                                   flag, value, rule):
    out = tmp_path / "run"
    code, _, err = run_in_process(script, capsys, *TINY, f"{flag}={value}", "--data", text_file, "--out-dir", out)
    assert code == 2
    assert f"{flag} {float(value) if flag in ('--lr', '--beta1', '--grad-clip', '--dropout') else int(value)}" \
        in err and rule in err
    assert not out.exists()


def test_check_settings_names_every_problem():
    with pytest.raises(SettingsError, match=r"(?s)--n-head 3: must divide --n-embd 16.*--min-lr"):
        check_settings(TrainConfig(n_head=3, n_embd=16, min_lr=1.0))
    with pytest.raises(SettingsError, match="--resume and --overwrite: choose one"):
        check_settings(TrainConfig(resume=True, overwrite=True))
    check_settings(TrainConfig())  # the defaults are fine


def test_grad_clip_zero_means_no_clipping(tmp_path, text_file):
    def losses(grad_clip, name):
        cfg = TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=4,
                          warmup_iters=0, lr=1e-2, eval_interval=100, eval_iters=1, log_interval=1,
                          sample_chars=1, grad_clip=grad_clip, data=str(text_file), out_dir=str(tmp_path / name))
        train(cfg, log=lambda *_: None)
        return [json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "train"]
    unclipped = losses(0.0, "zero")
    assert unclipped == losses(1e9, "huge")          # 0 = no bound at all
    assert unclipped[-1] < unclipped[0] - 0.05       # and it learns (zeroed gradients would not)


# --- 5. a torn last line of metrics.jsonl ---------------------------------------------------------------

def test_resume_survives_a_torn_metrics_line(finished_run, script, capsys):
    metrics = finished_run / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"kind": "train", "iter": 4, "lo')  # a disk that filled during an append
    code, out, _ = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 5)
    assert code == 0 and f"{metrics}: dropped line" in out and "torn" in out
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line parses again
    assert records[-1]["iter"] == 5


# --- 6. leftovers of a kill during a save ---------------------------------------------------------------

def test_stale_temporaries_are_removed_and_live_ones_kept(finished_run, script, capsys):
    stale = finished_run / f"ckpt.npz.tmp-{dead_pid()}"
    live = finished_run / f"ckpt.npz.tmp-{os.getppid()}"  # a live process: maybe another run writing
    stale.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    code, out, _ = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 5)
    assert code == 0 and f"removed {stale}" in out
    assert not stale.exists() and live.exists()


# --- 7. the best model and the latest state are kept apart ----------------------------------------------

def test_sample_chooses_best_or_last(finished_run, sampler, capsys):
    best, last = load_checkpoint(finished_run / "ckpt.npz"), load_checkpoint(finished_run / "last.npz")
    assert last.iteration == 4 and best.extra["best_val_loss"] == last.extra["best_val_loss"]
    for which in ("best", "last"):
        assert sampler.main(["--out-dir", str(finished_run), "--which", which, "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.count("-" * 40) == 2


# --- errors that used to come out as tracebacks ----------------------------------------------------------

def test_out_dir_that_is_a_file(tmp_path, text_file, script, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    code, _, err = run_in_process(script, capsys, *TINY, "--data", text_file, "--out-dir", a_file)
    assert code == 2 and f"--out-dir {a_file} is a file, not a folder" in err


def test_out_dir_that_cannot_be_written(tmp_path, text_file, script, capsys):
    if os.geteuid() != 0:
        out = tmp_path / "read-only"
        out.mkdir()
        out.chmod(0o500)
        target = out / "run"
    else:  # root may write anywhere, except on a read-only file system such as /sys
        target = Path("/sys/fs/tinytransformer-test-run")
        try:
            target.mkdir()
            target.rmdir()
            pytest.skip("no read-only folder to try here")
        except OSError:
            pass
    code, _, err = run_in_process(script, capsys, *TINY, "--data", text_file, "--out-dir", target)
    assert code == 2 and f"cannot write to --out-dir {target}" in err and "Traceback" not in err


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(finished_run, script, capsys, monkeypatch):
    saves = {"n": 0}
    savez = np.savez

    def fills_up(file, **arrays):
        saves["n"] += 1
        savez(file, **arrays)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.numpy, "savez", fills_up)
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 6)
    assert saves["n"] == 1
    assert code == 2 and "No space left on device" in err and "The checkpoints saved before are kept" in err
    assert load_checkpoint(finished_run / "last.npz").iteration == 4
    assert not list(finished_run.glob("*.tmp-*")) and not (finished_run / "run.lock").exists()


def test_data_that_is_not_utf8(tmp_path, script, capsys):
    data = tmp_path / "latin1.txt"
    data.write_bytes("café au lait\n".encode("latin-1") * 100)
    code, _, err = run_in_process(script, capsys, *TINY, "--data", data, "--out-dir", tmp_path / "run")
    assert code == 2 and f"--data {data} is not UTF-8 text" in err and "iconv" in err


@pytest.mark.parametrize("flags, message", [
    (["--temperature", "-1"], "--temperature -1.0: must be 0"),
    (["--temperature", "nan"], "--temperature nan: must be 0"),
    (["--temperature", "1e-45"], "--temperature 1e-45: must be 0"),
    (["--top-k", "0"], "--top-k 0: must be at least 1"),
    (["--num-samples", "-2"], "--num-samples -2: must be at least 1"),
    (["--max-new-tokens", "-5"], "--max-new-tokens -5: must be at least 0"),
    (["--seed", "-1"], "--seed -1: must be at least 0"),
    (["--prompt", "ROMEO\udcff:"], "--prompt holds the byte 0xFF at character 5, which is not UTF-8 text"),
])
def test_sample_flags_are_checked(sampler, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        sampler.main(["--out-dir", "nowhere", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_sample_refuses_checkpoints_it_cannot_sample_from(tmp_path, sampler, capsys):
    library = tmp_path / "library"
    save_checkpoint(library / "ckpt.npz", model=GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1,
                                                              n_embd=4)),
                    config=GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    seq2seq = tmp_path / "seq2seq"
    config = Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, block_size=4, n_encoder_layer=1,
                           n_decoder_layer=1, n_head=1, n_embd=4)
    save_checkpoint(seq2seq / "ckpt.npz", model=Seq2Seq(config), config=config, tokenizer={"itos": list("abcde")})
    for folder in (library, seq2seq):
        assert sampler.main(["--out-dir", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "does not hold a GPT with its tokenizer" in err


def test_ctrl_c_during_start_up(tmp_path, text_file, script, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    from tinytransformer.training import loop
    monkeypatch.setattr(loop, "read_text", interrupted)  # Ctrl-C while the corpus is read
    code, _, err = run_in_process(script, capsys, *TINY, "--data", text_file, "--out-dir", tmp_path / "run")
    assert code == 130 and err.strip() == "interrupted during start-up; no training step was run"


def test_ctrl_c_during_a_long_evaluation_stops_it(tmp_path, text_file):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--eval-iters", "1000000",
                             "--data", str(text_file), "--out-dir", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("model:")  # the evaluation at iteration 0 begins
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)       # acknowledged within seconds, not 10⁶ batches
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert "Ctrl-C: saving the run" in stderr
    summary = strict_json(stdout.strip().splitlines()[-1])  # valid JSON though no step ran (no timing)
    assert summary["ms_per_iter"] is None and summary["interrupted"] is True
    saved = load_checkpoint(out / "last.npz")
    assert saved.iteration == 0 and saved.extra["evaluated"] is False  # a resumed run evaluates it again


def test_a_closed_pipe_saves_the_run(tmp_path, text_file):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *TINY, "--max-iters", "100000",
                             "--eval-interval", "100000", "--data", str(text_file), "--out-dir", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(3):                 # `| head -3`: read three lines, then go away
        proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "the output was closed: saved iteration" in stderr
    assert load_checkpoint(out / "last.npz").iteration > 0
    assert not (out / "run.lock").exists()


def test_help_shows_each_presets_defaults_and_what_resume_does():
    cpu = subprocess.run([sys.executable, str(TRAIN_SCRIPT), "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    gpu = subprocess.run([sys.executable, str(TRAIN_SCRIPT), "--preset", "gpu", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    flat_cpu, flat_gpu = " ".join(cpu.split()), " ".join(gpu.split())
    assert "(default: 4 with --preset cpu; gpu: 6)" in flat_cpu
    assert "(default: 6 with --preset gpu; cpu: 4)" in flat_gpu
    assert "(default: 1.0 with --preset cpu)" in flat_cpu and "0: no clipping" in flat_cpu
    assert "--resume reads the run's settings back" in flat_cpu
    for line in ("--n-layer", "--lr ", "--max-iters", "--eval-interval", "--grad-clip", "--data", "--out-dir"):
        assert line in cpu
    sample = subprocess.run([sys.executable, str(SAMPLE_SCRIPT), "--help"], capture_output=True, text=True,
                            timeout=60).stdout
    flat_sample = " ".join(sample.split())
    assert "(default: best)" in flat_sample and "(default: 0.8)" in flat_sample



# --- a damaged or hostile checkpoint: refused before the run folder is touched ---------------------------

def damage(path: Path, change) -> None:
    """Rewrite the checkpoint at ``path`` with ``change(header, arrays)`` applied (both changed in place)."""
    with np.load(path) as npz:
        arrays = {key: npz[key].copy() for key in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    change(header, arrays)
    with open(path, "wb") as file:
        np.savez(file, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)


DAMAGES = {
    "negative iteration": (lambda h, a: h.update(iteration=-40), "'iteration' is -40"),
    "iteration a string": (lambda h, a: h.update(iteration="4"), "'iteration' is '4'"),
    "empty optimizer": (lambda h, a: h.update(optimizer={}), "optimizer state is wrong"),
    "no random state": (lambda h, a: h.update(rng_state=None), "its random state cannot be restored"),
    "no best val loss": (lambda h, a: h["extra"].pop("best_val_loss"), "its extra has no best_val_loss"),
    "a million layers": (lambda h, a: [h["config"][part].update(n_layer=10**6) for part in ("model", "train")],
                         "it holds 1 blocks, the config says n_layer 1000000"),
    "60000 wide": (lambda h, a: [h["config"][part].update(n_embd=60000) for part in ("model", "train")], "wte.weight is (40, 16), the config says (40, 60000)"),
    "no heads": (lambda h, a: h["config"]["model"].update(n_head=0), "GPTConfig.n_head is 0"),
    "negative width": (lambda h, a: h["config"]["model"].update(n_embd=-16), "GPTConfig.n_embd is -16"),
    "NaN weights": (lambda h, a: a["model/wte.weight"].__setitem__((0, 0), np.nan), "holds NaN or infinite"),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_last_checkpoint_is_refused_and_the_run_left_as_it_was(finished_run, script, sampler, capsys,
                                                                          name):
    change, message = DAMAGES[name]
    damage(finished_run / "last.npz", change)
    before = snapshot(finished_run)
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 6)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert snapshot(finished_run) == before     # metrics.jsonl, both checkpoints: byte for byte
    code, _, err = run_in_process(sampler, capsys, "--out-dir", finished_run, "--which", "last")
    if name not in ("empty optimizer", "no random state", "no best val loss"):   # sampling needs none of them
        assert code == 2 and message in err, err


def test_a_metrics_record_without_its_loss_is_dropped_not_fatal(finished_run, script, capsys):
    """A record without its loss used to crash every later evaluation (the plot reads every record)."""
    metrics = finished_run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = json.dumps({key: value for key, value in json.loads(lines[1]).items() if key != "loss"})
    metrics.write_text("\n".join(lines) + "\n")
    code, out, err = run_in_process(script, capsys, "--resume", "--out-dir", finished_run, "--max-iters", 6)
    assert code == 0 and "dropped 1 record(s) without the fields" in out, err


def test_a_sample_the_terminal_cannot_show_is_printed_with_question_marks(tmp_path, script, capsys):
    """A model of text with accents, sampled to a terminal that shows ASCII only: '?' where a character
    cannot be shown, exit 0 (it was a UnicodeEncodeError after generating)."""
    text = tmp_path / "accents.txt"
    text.write_text("naïve café, déjà vu: ça va très bien.\n" * 150, encoding="utf-8")
    out = tmp_path / "run"
    assert script.main([*TINY, "--max-iters", "2", "--data", str(text), "--out-dir", str(out)]) == 0
    capsys.readouterr()
    result = subprocess.run([sys.executable, str(SAMPLE_SCRIPT), "--out-dir", str(out), "--prompt", "café",
                             "--max-new-tokens", "20"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("caf?")


# --- 6. today's architecture from the command line ---------------------------------------------------

LLAMA_STYLE = ["--positional", "rope", "--normalization", "rmsnorm", "--activation", "swiglu",
               "--no-tie-weights", "--n-kv-head", "1", "--window", "8", "--ffn-hidden", "24"]


def test_a_llama_style_run_trains_and_resumes_exactly(tmp_path, text_file, script, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    common = [*TINY, *LLAMA_STYLE, "--eval-interval", "2", "--data", text_file]
    assert script.main([*map(str, common), "--max-iters", "4", "--out-dir", str(whole)]) == 0
    assert script.main([*map(str, common), "--max-iters", "2", "--out-dir", str(part)]) == 0
    code, out, _ = run_in_process(script, capsys, "--resume", "--out-dir", part, "--max-iters", 4)
    assert code == 0 and "resuming from" in out
    model = load_checkpoint(part / "last.npz").config["model"]
    assert (model["positional"], model["normalization"], model["activation"], model["n_kv_head"],
            model["window"], model["tie_weights"]) == ("rope", "rmsnorm", "swiglu", 1, 8, False)
    resumed, uninterrupted = (load_checkpoint(run / "last.npz").model_state for run in (part, whole))
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        assert np.array_equal(resumed[name], value), name          # bit for bit
    # the architecture is part of the run: a resume may not change it
    code, _, err = run_in_process(script, capsys, "--resume", "--out-dir", part, "--max-iters", 6,
                                  "--window", "4")
    assert code == 2 and "--window 4: the run in" in err and "trained with --window 8" in err


@pytest.mark.parametrize("flags, message", [
    (["--n-kv-head", "3"], "--n-kv-head 3: must divide --n-head"),
    (["--positional", "rope", "--n-embd", "6", "--n-head", "2"], "head size --n-embd / --n-head = 3 must be even"),
    (["--window", "0"], "--window 0: must be an integer >= 1"),
    (["--init", "gpt2-random", "--positional", "rope"], "--init gpt2-random with --positional 'rope'"),
])
def test_architecture_flags_that_cannot_work_stop_before_anything_runs(flags, message, tmp_path, text_file,
                                                                       script, capsys):
    code, _, err = run_in_process(script, capsys, *TINY, *flags, "--data", text_file, "--out-dir", tmp_path / "x")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
