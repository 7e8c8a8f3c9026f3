"""Training a GPT, as nanoGPT's train.py does, with every step visible.

    for it in 0 .. max_iters:
        every eval_interval: estimate train and val loss; save last.npz, and ckpt.npz when val improves
        x, y = random batch;  loss = model(x, y);  model.backward()   (in grad_accum micro-batches,
                                                                       each shared out among the workers)
        clip the gradient norm;  AdamW step with the cosine learning rate

``training_loop`` is that loop, and reads top to bottom. ``train`` is what comes before and after it:
every setting and file is checked before the run's folder is touched, the folder is owned by a lock
while the run writes to it, and Ctrl-C or a closed output pipe stop the loop between two steps with the
state saved (``StopSignal``). Resuming is exact: the checkpoint holds the weights, AdamW's moments, the
batch sampler's random state and the dropout generators' states, so a resumed run computes the same
losses as one that was never interrupted. ``scripts/train_shakespeare.py`` is the command line around
``train``; the run's folder and its files are described in run_folder.py.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path

from .. import backend
from ..data import TextDataset, find_shakespeare, read_text
from ..files import file_sha256
from ..optim import clip_grad_norm, cosine_lr
from ..tokenizers import tokenizer_from_dict
from .checkpoint import check_config, gpt_config_of, load_checkpoint
from .run import Run, check_resumable
from .run_folder import RunLock, latest_checkpoint, previous_run_files, remove_stale_temporaries
from .settings import DEVICES, MODEL_SHAPE_FIELDS, SettingsError, TrainConfig, check_settings, model_config
from .start import start_from_init


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN or inf."""


class WriteFailed(OSError):
    """The run could not write to its folder (read-only, full, not a folder); what was saved is kept."""


class Interrupted(Exception):
    """Ctrl-C ended the run; the message says what was saved."""


def training_loop(run: Run, stop: "StopSignal", deadline: float) -> int:
    """Train from ``run.start_iter`` up to ``max_iters``; returns the iteration the run stopped at.

    One iteration: (1) at every eval_interval, at the last iteration and when time is up, estimate the
    losses and checkpoint; (2) stop there if asked to (Ctrl-C, a closed pipe), at max_iters, or at the
    time limit; (3) forward and backward over the batch, in grad_accum micro-batches; (4) clip the
    gradient's global norm; (5) an AdamW step at the schedule's learning rate; (6) log.
    """
    cfg = run.cfg
    it = run.start_iter
    for it in range(run.start_iter, cfg.max_iters + 1):
        # (1) evaluate and checkpoint
        out_of_time = time.perf_counter() >= deadline   # then this iteration ends the run, as max_iters
        evaluated = True
        if it % cfg.eval_interval == 0 or it == cfg.max_iters or out_of_time:
            evaluated = run.evaluate_and_save(it, stop)   # False: Ctrl-C cut it short
        # (2) stop?
        if stop.reason is not None:
            run.save(run.latest_path, it, evaluated=evaluated)
            stop.say(f"{stop.reason}: saved iteration {it} to {run.latest_path}; continue with --resume")
            break
        if it == cfg.max_iters:
            break
        if out_of_time:
            stop.say(f"time limit of {cfg.max_seconds:g} s reached: stopping at iteration {it}, saved in "
                     f"{run.latest_path}; continue with --resume")
            run.time_limit_reached = True
            break

        # (3) forward and backward; all grad_accum micro-batches drawn at once, as one batch of that size
        t0 = time.perf_counter()
        lr = cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                       lr_decay_iters=cfg.lr_decay_iters)
        x, y = run.dataset.get_batch("train", cfg.batch_size * cfg.grad_accum, cfg.block_size, run.rng)
        loss = run.parallel.accumulate_gradients(x, y, cfg.grad_accum)   # shared out among the workers
        # (4) clip
        grad_norm = clip_grad_norm(run.parameters, run.clip)
        run.last_loss = float(loss)  # copies one number from the device: also waits for the GPU
        if not (math.isfinite(run.last_loss) and math.isfinite(grad_norm)):
            raise TrainingDiverged(
                f"iteration {it}: loss {run.last_loss}, gradient norm {grad_norm}. Training stopped before "
                f"the update; the last good checkpoints ({run.ckpt_path}, {run.latest_path}) are untouched. "
                "Try a lower --lr or --dtype float64.")
        # (5) step
        run.optimizer.step(lr, spread=run.parallel.spread)   # each worker updates its share of the weights
        backend.synchronize()
        run.step_times.append(time.perf_counter() - t0)

        # (6) log
        if it % cfg.log_interval == 0:
            run.log_step(it, lr, stop.say)
    return it


class StopSignal:
    """``with StopSignal(log, latest_path) as stop:`` a first Ctrl-C, or a closed output pipe, sets
    ``stop.reason``, and the loop stops between two steps (an evaluation between two batches), so that
    the state it saves is consistent. A second Ctrl-C stops at once, without saving."""

    def __init__(self, log, latest_path: Path):
        self.log, self.latest_path, self.reason = log, latest_path, None

    def on_ctrl_c(self, *_) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        self.reason = "interrupted"
        try:  # os.write, not print: a signal handler may run in the middle of a print
            os.write(2, b"\nCtrl-C: saving the run and stopping (press Ctrl-C again to stop without saving)\n")
        except OSError:
            pass  # no terminal to tell; the run stops and saves all the same

    def say(self, message: str) -> None:
        """Log, unless the output has been closed (e.g. piped into `head`, which has exited): then stop."""
        if self.reason == "output closed":
            return
        try:
            self.log(message)
        except BrokenPipeError:
            self.reason = "output closed"

    def __enter__(self) -> "StopSignal":
        self._previous_handler = signal.signal(signal.SIGINT, self.on_ctrl_c)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        signal.signal(signal.SIGINT, self._previous_handler)
        if kind is KeyboardInterrupt:
            raise Interrupted(f"interrupted again: stopped without saving; {self.latest_path} holds the state "
                              "of the last evaluation; continue with --resume") from None


@contextlib.contextmanager
def owning(out_dir: Path, log):
    """Hold the run's folder (RunLock) for the duration; OSErrors become WriteFailed, naming the folder."""
    lock = RunLock(out_dir, log)
    try:
        lock.acquire()
    except OSError as err:
        raise WriteFailed(f"cannot write to --out-dir {out_dir} ({err.strerror or err}): choose a folder "
                          "you can write to.") from err
    try:
        remove_stale_temporaries(out_dir, log)
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted during start-up; no training step was run") from None
    except OSError as err:
        raise WriteFailed(f"writing to {out_dir} failed ({err}). The checkpoints saved before are kept; "
                          "free some space or choose a writable --out-dir, then continue with --resume.") from err
    finally:
        lock.release()


def train(cfg: TrainConfig, log=print) -> dict:
    """Run (or resume) a training run; returns the summary that the script prints as JSON.

    Raises SettingsError (a bad setting, or a folder that holds another run), CheckpointError,
    FolderInUse (another run owns ``out_dir``), WriteFailed, TrainingDiverged, or Interrupted (a second
    Ctrl-C, or one outside the training loop). A first Ctrl-C, or a closed output pipe, ends the run at
    the next step with the state saved in last.npz; the summary says ``"interrupted": true``.
    """
    start_time = time.perf_counter()
    check_settings(cfg)
    out_dir = Path(cfg.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SettingsError(f"--out-dir {out_dir} is a file, not a folder: choose another --out-dir.")

    # Everything is read and checked before the folder is touched.
    resumed_from = latest_checkpoint(out_dir) if cfg.resume else None
    checkpoint = load_checkpoint(resumed_from) if cfg.resume else None
    if checkpoint:
        check_resumable(checkpoint, resumed_from)
        saved_config = gpt_config_of(checkpoint, resumed_from)   # its sizes are its arrays'
    corpus, text, corpus_record = _read_corpus(cfg, checkpoint, log)
    if not cfg.resume:
        _refuse_a_previous_run(cfg)  # before the slow part (a BPE to train, GPT-2's weights to read)
    backend.use(DEVICES[cfg.device], dtype=cfg.dtype)
    if checkpoint:
        tokenizer = tokenizer_from_dict(checkpoint.tokenizer, source=str(resumed_from))
        model_rows, initial_state = saved_config.vocab_size, None
    else:
        cfg, tokenizer, model_rows, initial_state = start_from_init(cfg, text, log)
    dataset = TextDataset(text, tokenizer)
    for split in ("train", "val"):
        if len(getattr(dataset, split)) <= cfg.block_size:
            raise SettingsError(f"--data {corpus}: its {split} split has {len(getattr(dataset, split))} "
                                f"tokens, too few for --block-size {cfg.block_size}. Use a longer text "
                                "or a smaller --block-size.")
    gpt_config = model_config(cfg, model_rows)
    if checkpoint:
        check_config({k: getattr(saved_config, k) for k in MODEL_SHAPE_FIELDS},
                     {k: getattr(gpt_config, k) for k in MODEL_SHAPE_FIELDS})

    with owning(out_dir, log):
        if not cfg.resume:
            previous = _refuse_a_previous_run(cfg)
            for path in previous:
                path.unlink()
            if previous:
                log(f"--overwrite: deleted the previous run's {', '.join(p.name for p in previous)} in {out_dir}")
        run = Run(cfg, dataset, gpt_config, corpus_record, log)
        run.start_from(checkpoint, initial_state)
        deadline = start_time + cfg.max_seconds if cfg.max_seconds > 0 else math.inf
        try:
            with StopSignal(log, run.latest_path) as stop:
                stop.say(run.describe())
                it = training_loop(run, stop, deadline)
            run.plot()                       # every record, whenever the last evaluation drew it
        finally:
            run.parallel.close()
        try:
            sample = run.sample() if stop.reason is None else ""
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted while sampling; the run is complete and saved in {out_dir}") from None
        return run.summary(it, stop.reason, time.perf_counter() - start_time, sample)


def _read_corpus(cfg: TrainConfig, checkpoint, log) -> tuple[Path, str, dict]:
    """The training text's path, the text, and its record (path, SHA-256); a resumed run's must be the
    text it began on."""
    corpus = find_shakespeare(cfg.data, log=log)
    text = read_text(corpus)
    record = {"path": str(corpus.resolve()), "sha256": file_sha256(corpus)}
    recorded = (checkpoint.config.get("data") or {}) if checkpoint else {}
    if recorded.get("sha256") and recorded["sha256"] != record["sha256"]:
        raise SettingsError(f"--data {corpus}: not the text the run in {cfg.out_dir} was trained on "
                            f"({recorded.get('path')}, SHA-256 {recorded['sha256'][:16]}...; this file's "
                            f"is {record['sha256'][:16]}...). Resume on that text, or start a new "
                            "run in another --out-dir.")
    return corpus, text, record


def _refuse_a_previous_run(cfg: TrainConfig) -> list:
    """The files of a previous run in out_dir (to delete with --overwrite); SettingsError without it."""
    out_dir = Path(cfg.out_dir)
    previous = previous_run_files(out_dir)
    if previous and not cfg.overwrite:
        raise SettingsError(
            f"--out-dir {out_dir} already holds a training run ({', '.join(p.name for p in previous)}). "
            "Continue it with --resume, replace it with --overwrite (deletes those files), or "
            "choose another --out-dir.")
    return previous
