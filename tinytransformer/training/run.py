"""The state of one training run: the model, AdamW, the batch sampler, the best val loss, the metrics,
and how they are saved, restored and evaluated. ``loop.training_loop`` drives it."""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from pathlib import Path

from .. import backend
from ..files import json_safe, link_atomically, to_json, write_text_atomically
from ..generate import generate
from ..layers.dropout import dropout_states, set_dropout_states
from ..models.gpt import GPT
from ..optim import AdamW, clip_bound
from .checkpoint import CheckpointError, restore, save_checkpoint
from .processes import data_parallel
from .step import workers_of
from .run_folder import (CHECKPOINT_NAME, LATEST_NAME, METRICS_NAME, PLOT_NAME, latest_checkpoint, plot_losses,
                         read_metrics)


def check_resumable(checkpoint, path) -> None:
    """A checkpoint a run can continue from: AdamW's state, the batch sampler's (and dropout's) random
    state, and the best val loss so far. Checked before the run folder is touched, so that a damaged
    last.npz stops the run with a message instead of rewriting metrics.jsonl first."""
    problems = []
    if checkpoint.optimizer_state is None:
        problems.append("it holds no optimizer state")
    if "best_val_loss" not in checkpoint.extra:
        problems.append("its extra has no best_val_loss")
    states = checkpoint.rng_state if isinstance(checkpoint.rng_state, dict) else {}
    try:
        backend.new_host_rng(0).bit_generator.state = states["batches"]   # refused here if malformed
        for state in (states.get("dropout") or {}).values():
            backend.DeviceRNG(0).set_state(state)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problems.append(f"its random state cannot be restored ({type(err).__name__}: {str(err)[:100]})")
    if problems:
        raise CheckpointError(f"{path} cannot be resumed: {'; '.join(problems)}. It was not written by "
                              "scripts/train_shakespeare.py, or it is damaged: use an earlier checkpoint, or "
                              "start a new run.")


class Run:
    """Everything a run holds between iterations, built for a new run or restored from a checkpoint."""

    # loss.png is redrawn at an evaluation only if the last drawing is this old, and always when the run
    # ends: drawing it takes about half a second, as long as a dozen training steps.
    plot_every_s = 30.0

    def __init__(self, cfg, dataset, gpt_config, corpus_record, log=print):
        self.cfg, self.dataset, self.gpt_config, self.corpus_record = cfg, dataset, gpt_config, corpus_record
        out_dir = Path(cfg.out_dir)
        self.ckpt_path, self.latest_path = out_dir / CHECKPOINT_NAME, out_dir / LATEST_NAME
        self.metrics_path, self.plot_path = out_dir / METRICS_NAME, out_dir / PLOT_NAME
        self.model = GPT(gpt_config)
        self.optimizer = AdamW(self.model.named_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               weight_decay=cfg.weight_decay)
        self.parallel = data_parallel(self.model, workers_of(cfg), self.optimizer)   # they share each step's rows
        self.parameters = self.model.parameters()  # listed once: walking the modules at every step costs time
        self.rng = backend.new_host_rng(cfg.seed)  # draws the training batches
        self.clip = clip_bound(cfg.grad_clip)      # 0: no clipping
        self.start_iter, self.best_val, self.records, self.evaluated_at_start = 0, math.inf, [], False
        self.step_times, self.last_loss, self.time_limit_reached = [], None, False
        self.plotted_at = -math.inf
        self.log = log

    def start_from(self, checkpoint=None, initial_state=None) -> None:
        """Load --init's weights (AdamW starts afresh), or everything a resumed run saved; then metrics.jsonl
        is rewritten with the records that come before the state it starts from."""
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
            initial_state.clear()             # its arrays are in the model now: free the host copies
        if checkpoint:
            restore(checkpoint, self.model, self.optimizer)
            self.rng.bit_generator.state = checkpoint.rng_state["batches"]
            if "dropout" in checkpoint.rng_state:  # absent when the run was saved under CuPy
                set_dropout_states(self.model, checkpoint.rng_state["dropout"])
            self.start_iter, best_val = checkpoint.iteration, checkpoint.extra["best_val_loss"]
            self.best_val = math.inf if best_val is None else best_val
            self.evaluated_at_start = checkpoint.extra.get("evaluated", True)
            if self.metrics_path.exists():  # forget what the interrupted run logged after its checkpoint
                self.records = [r for r in read_metrics(self.metrics_path, self.log)
                                if r["iter"] < self.start_iter or (r["kind"] == "eval" and self.evaluated_at_start
                                                                   and r["iter"] == self.start_iter)]
            self.log(f"resuming from {latest_checkpoint(self.latest_path.parent)} at "
                     f"iteration {self.start_iter} (best val loss {self.best_val:.4f}), settings as recorded "
                     f"there; training on to iteration {self.cfg.max_iters}")
        write_text_atomically(self.metrics_path, "".join(to_json(r) + "\n" for r in self.records))

    def describe(self) -> str:
        """The run's first line: the model's size, the data, the backend."""
        tokenizer, rows = self.dataset.tokenizer, self.gpt_config.vocab_size
        unused_rows = rows - tokenizer.vocab_size   # gpt2-random: GPT-2's rows, fewer tokens
        return (f"model: {self.model.num_parameters():,} parameters; data: {len(self.dataset.train):,} train "
                f"and {len(self.dataset.val):,} val tokens, vocabulary {tokenizer.vocab_size}"
                + (f" (in the model's {rows:,} rows)" if unused_rows else "")
                + f"; backend {backend.name()} {self.cfg.dtype}"
                + (f"; {self.parallel.workers} workers share each batch" if self.parallel.workers > 1 else ""))

    def record(self, entry: dict) -> None:
        """One line of metrics.jsonl, appended (a torn last line is dropped when the run is resumed)."""
        self.records.append(entry)
        with open(self.metrics_path, "a") as f:
            f.write(to_json(entry) + "\n")

    def save(self, path: Path, it: int, evaluated: bool) -> None:
        """A checkpoint of iteration ``it``: everything ``start_from`` needs to continue bit for bit."""
        rng_state = {"batches": self.rng.bit_generator.state}
        if backend.name() != "cupy":  # CuPy's generators cannot report their state
            rng_state["dropout"] = dropout_states(self.model)
        save_checkpoint(path, model=self.model, optimizer=self.optimizer, iteration=it, rng_state=rng_state,
                        config={"model": self.gpt_config.to_dict(), "train": dataclasses.asdict(self.cfg),
                                "data": self.corpus_record},
                        tokenizer=self.dataset.tokenizer.to_dict(),
                        extra={"best_val_loss": json_safe(self.best_val), "evaluated": evaluated})

    def evaluate_and_save(self, it: int, stop) -> bool:
        """Estimate the losses, log them, save last.npz (and ckpt.npz when val improved). False when
        Ctrl-C cut the evaluation short: a resumed run evaluates this iteration again."""
        if it == self.start_iter and self.evaluated_at_start:
            return True                        # the resumed checkpoint was saved right after this evaluation
        losses = estimate_loss(self.parallel, self.dataset, self.cfg, it,
                               should_stop=lambda: stop.reason is not None)
        if losses is None:
            return False
        stop.say(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        self.record({"kind": "eval", "iter": it, "train_loss": losses["train"], "val_loss": losses["val"]})
        if time.monotonic() - self.plotted_at >= self.plot_every_s:
            self.plot()
        improved = losses["val"] < self.best_val
        self.best_val = min(self.best_val, losses["val"])
        self.save(self.latest_path, it, evaluated=True)  # first: resume needs it, and ckpt.npz may wait
        if improved:
            link_atomically(self.latest_path, self.ckpt_path)  # the same state: no second write
        return True

    def plot(self) -> None:
        """Draw loss.png from the records so far."""
        plot_losses(self.records, self.plot_path)
        self.plotted_at = time.monotonic()

    def log_step(self, it: int, lr: float, say) -> None:
        """The log line of a step: its loss, learning rate, time (median of the last log_interval)."""
        cfg = self.cfg
        ms = 1000 * statistics.median(self.step_times[-cfg.log_interval:])
        eta = (cfg.max_iters - it - 1) * ms / 1000
        minutes, seconds = divmod(int(eta), 60)
        say(f"iter {it}: loss {self.last_loss:.4f}, lr {lr:.2e}, time {ms:.1f}ms, "
            f"{self.tokens_per_step / ms * 1000:,.0f} tok/s, ETA {minutes}m{seconds:02d}s")
        self.record({"kind": "train", "iter": it, "loss": self.last_loss, "lr": lr, "ms": ms})

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.cfg.block_size

    def sample(self) -> str:
        """The closing sample: sample_chars tokens after a newline, at temperature 0.8."""
        self.model.eval()
        tokenizer = self.dataset.tokenizer
        prompt = backend.asarray(tokenizer.encode("\n")[None, :])
        return tokenizer.decode(generate(self.model, prompt, self.cfg.sample_chars, temperature=0.8,
                                         seed=self.cfg.seed, vocab_size=tokenizer.vocab_size)[0])

    def summary(self, it: int, stop_reason, wall_s: float, sample: str) -> dict:
        """What ``train`` returns, and the script prints as its last line."""
        ms_per_iter = 1000 * statistics.median(self.step_times) if self.step_times else float("nan")
        return {
            "best_val_loss": self.best_val,
            "final_train_loss": self.last_loss,
            "iters": it,
            "ms_per_iter": ms_per_iter,
            "tokens_per_s": self.tokens_per_step / ms_per_iter * 1000 if self.step_times else float("nan"),
            "wall_s": wall_s,
            # the training steps alone; wall_s − steps_s is the rest: start-up, evaluation, checkpoints,
            # logging, the loss plot and the sample
            "steps_s": sum(self.step_times),
            "device": self.cfg.device,
            "backend": backend.name(),
            "dtype": self.cfg.dtype,
            "n_params": self.model.num_parameters(),
            "checkpoint": str(self.ckpt_path),
            "latest": str(self.latest_path),
            "interrupted": stop_reason is not None,
            "stop_reason": stop_reason,
            "time_limit_reached": self.time_limit_reached,
            "sample": sample,
        }


def estimate_loss(parallel, dataset, cfg, it: int, should_stop=lambda: False) -> dict | None:
    """Mean loss over eval_iters batches of each split, dropout off; None if ``should_stop()`` turned
    true on the way (Ctrl-C during a long evaluation).

    The batches come from a generator seeded by (seed, iteration), not the training sampler, so
    evaluating does not change which batches training sees (and resume stays exact). ``parallel`` is the
    run's DataParallel: its workers share each batch's rows.
    """
    parallel.eval()
    out = {}
    try:
        for i, split in enumerate(("train", "val")):
            rng = backend.new_host_rng([cfg.seed, it, i])
            losses = []
            for _ in range(cfg.eval_iters):
                if should_stop():
                    return None
                x, y = dataset.get_batch(split, cfg.batch_size, cfg.block_size, rng)
                losses.append(parallel.loss(x, y))
            out[split] = sum(losses) / len(losses)
    finally:
        parallel.train()
    return out
