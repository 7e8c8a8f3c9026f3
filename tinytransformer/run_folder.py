"""A training run's folder: who owns it while it runs (a lock file), and what a killed run left behind.

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

LOCK_NAME = "run.lock"
_TEMPORARY = re.compile(r"\.tmp-(\d+)$")  # what checkpoint.save_checkpoint writes before its rename


class FolderInUse(Exception):
    """Another training run owns the folder; the message names it."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class RunLock:
    """``with RunLock(folder, log):`` owns ``folder`` for the duration, or raises FolderInUse."""

    def __init__(self, folder, log=print):
        self.folder, self.log = Path(folder), log
        self.path = self.folder / LOCK_NAME
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    def __enter__(self) -> "RunLock":
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
        if pid_alive(pid) and pid != os.getpid():
            raise FolderInUse(f"{self.folder} is in use by another training run (pid {pid}, started "
                              f"{started}). Wait for it to finish or stop it (kill -INT {pid} saves its "
                              "state), or choose another --out-dir.")
        self.log(f"taking over {self.folder}: the run that locked it (pid {pid}, started {started}) is no "
                 "longer running")
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
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
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            try:
                path.unlink()
                log(f"removed {path}, left by a run killed while saving (pid {match.group(1)})")
            except OSError:
                pass
