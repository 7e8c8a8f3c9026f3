"""A training run's folder: what it holds, who owns it while it runs (a lock file), and what a killed run
left behind.

    ckpt.npz       the best model so far (lowest val loss); what sample.py loads by default
    last.npz       the latest state: written at every evaluation and when the run stops early (Ctrl-C,
                   a closed output pipe); ``--resume`` continues from it
    metrics.jsonl  one JSON record per log line and per evaluation
    loss.png       the loss curves
    run.lock       present while a run owns the folder (RunLock)

The lock is a file, ``run.lock``, holding the owner's pid, host and start time as JSON. It is created with
``os.link``, which fails when the name exists, so two runs starting at the same moment cannot both get
it, and it is never seen half-written. A run that was killed (``kill -9``, a power cut) cannot remove its
lock; the next run finds the pid dead and takes the folder over, saying so. A lock from another host
cannot be checked from here, so it is refused with the file's name: delete it once that run is gone.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from ..files import atomic_write, process_running
from ..module import is_int

CHECKPOINT_NAME = "ckpt.npz"   # the best model
LATEST_NAME = "last.npz"       # the latest state, to resume from
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"
LOCK_NAME = "run.lock"
_TEMPORARY = re.compile(r"\.tmp-(\d+)$")  # what files.atomic_write writes before its rename


def latest_checkpoint(out_dir) -> Path:
    """The checkpoint to resume from: last.npz, or ckpt.npz for a run saved before last.npz existed."""
    out_dir = Path(out_dir)
    latest = out_dir / LATEST_NAME
    return latest if latest.exists() or not (out_dir / CHECKPOINT_NAME).exists() else out_dir / CHECKPOINT_NAME


def previous_run_files(out_dir) -> list:
    """The files of a run that ``out_dir`` holds (empty for a new folder)."""
    names = (CHECKPOINT_NAME, LATEST_NAME, METRICS_NAME, PLOT_NAME)
    return [Path(out_dir) / name for name in names if (Path(out_dir) / name).exists()]


def read_metrics(path: Path, log=print) -> list:
    """The records of metrics.jsonl; a line that does not parse (torn by a full disk or a kill during
    an append) is dropped, with a note."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            log(f"{path}: dropped line {number}, which is not a whole JSON record ({err}); it was torn "
                "while being written, and the checkpoint does not depend on it")
    kept = [r for r in records if _well_formed(r)]
    if len(kept) < len(records):
        log(f"{path}: dropped {len(records) - len(kept)} record(s) without the fields a metrics record has "
            f"(kind, iter and its losses), e.g. {str(next(r for r in records if not _well_formed(r)))[:120]}")
    return kept


# The numbers each kind of record holds; plot_losses and a resumed run read them.
RECORD_FIELDS = {"train": ("loss",), "eval": ("train_loss", "val_loss")}


def _well_formed(record) -> bool:
    """A record written by Run.record: a known kind, a whole iteration >= 0, and its losses as numbers
    (or null: to_json writes a NaN loss so)."""
    if not isinstance(record, dict) or record.get("kind") not in RECORD_FIELDS:
        return False
    fields = RECORD_FIELDS[record["kind"]]
    return (is_int(record.get("iter")) and record["iter"] >= 0 and all(field in record for field in fields)
            and all(record[field] is None or isinstance(record[field], (int, float))
                    and not isinstance(record[field], bool) for field in fields))


class FolderInUse(Exception):
    """Another training run owns the folder; the message names it."""


class RunLock:
    """``with RunLock(folder, log):`` owns ``folder`` for the duration, or raises FolderInUse."""

    def __init__(self, folder, log=print):
        self.folder, self.log = Path(folder), log
        self.path = self.folder / LOCK_NAME
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> "RunLock":
        """Own the folder (made if missing), taking over a dead run's lock; FolderInUse if a live run has it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f"{LOCK_NAME}.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(self.owner) + "\n")
        try:
            for _ in range(2):  # the second time after taking over a stale lock
                try:
                    os.link(temporary, self.path)  # atomic; fails if a lock exists
                    return self
                except FileExistsError:
                    self._take_over_if_stale()
            raise FolderInUse(f"{self.folder} was locked again while this run took it over; try again.")
        finally:
            temporary.unlink()

    def _take_over_if_stale(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
            pid, host, started = int(holder["pid"]), holder["host"], holder["started"]
        except FileNotFoundError:
            return  # released in the meantime
        except (ValueError, KeyError, TypeError):
            raise FolderInUse(f"{self.path} is not a lock this code wrote; if no run uses {self.folder}, "
                              "delete it and start again.") from None
        if host != self.owner["host"]:
            raise FolderInUse(f"{self.folder} is in use by a training run on host {host} (pid {pid}, started "
                              f"{started}). Wait for it to finish, or choose another --out-dir; if that run "
                              f"is gone, delete {self.path}.")
        if process_running(pid) and pid != os.getpid():
            raise FolderInUse(f"{self.folder} is in use by another training run (pid {pid}, started "
                              f"{started}). Wait for it to finish or stop it (kill -INT {pid} saves its "
                              "state), or choose another --out-dir.")
        self.log(f"taking over {self.folder}: the run that locked it (pid {pid}, started {started}) is no "
                 "longer running")
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock, if it is still ours."""
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass  # nothing of ours to remove


def remove_stale_temporaries(folder, log=print) -> None:
    """Delete ``*.tmp-<pid>`` files whose writer is dead: a run killed while saving leaves one, as big as
    a checkpoint. A live writer's file (its pid runs) is left alone."""
    for path in Path(folder).glob("*.tmp-*"):
        match = _TEMPORARY.search(path.name)
        if match and int(match.group(1)) != os.getpid() and not process_running(int(match.group(1))):
            try:
                path.unlink()
                log(f"removed {path}, left by a run killed while saving (pid {match.group(1)})")
            except OSError:
                pass


def plot_losses(records: list, path: Path) -> None:
    """loss.png: training loss per logged iteration and the train/val estimates per evaluation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps:
        ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.5,
                label="train (batch)")
    if evals:
        ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train")
        ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda file: fig.savefig(file, dpi=100, format="png"))   # never a half-drawn file
    plt.close(fig)
