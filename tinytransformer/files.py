"""Files: the cache folder, writing a file so that nobody ever sees half of it, checked downloads, and
strict JSON.

Every file the project writes for keeps (checkpoints, safetensors, tokenizers, the metrics log, a
downloaded corpus) goes through ``atomic_write``: the bytes go to a temporary beside the target, are
forced to disk, and the temporary is renamed over the target in one step. A process killed at any
moment leaves the old file or the new one. The temporary is named ``<name>.tmp-<pid>``, so that
``training.run_folder.remove_stale_temporaries`` can tell a dead writer's leftovers from a live one's.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import urllib.request
from pathlib import Path

CACHE_ENV = "TINYTRANSFORMER_CACHE"


def cache_dir() -> Path:
    """Where downloads are kept: ``$TINYTRANSFORMER_CACHE``, or ``~/.cache/tinytransformer``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "tinytransformer"))


def temporary_name(path: Path) -> Path:
    """The name a file is written under before its rename: beside it, so the rename stays on one disk."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary beside ``path`` (opened "wb"), then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())   # the bytes are on disk before the rename makes them the file
        os.replace(temporary, path)   # atomic within one file system, hence the same folder
    except BaseException:             # also KeyboardInterrupt: never leave a half-written temporary
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)      # make the rename itself survive a power cut


def write_text_atomically(path, text: str) -> None:
    """``atomic_write`` of a UTF-8 text."""
    atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def link_atomically(source, target) -> None:
    """Make ``target`` the same file as ``source`` in one rename, without copying a byte (a GPT-2
    checkpoint is 1.5 GB). Safe only for files that are never written in place, as everything written by
    ``atomic_write``: its next version is a new file renamed over ``source``, and ``target`` keeps this one."""
    source, target = Path(source), Path(target)
    temporary = temporary_name(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:                  # a file system without hard links: copy
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def fsync_directory(directory) -> None:
    """Flush a directory entry to disk where the system allows it (not on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target, known=None, log=print, timeout: float = 60) -> None:
    """Stream ``url`` into ``target``; its length (the server's, and ``known = (size, sha256)`` where the
    published file's are recorded) is checked before the file appears under its name. Raises OSError (no
    network: URLError is one) or ValueError (a bad download); ``target`` is then left as it was."""
    log(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")

        def write(file):
            digest, received = hashlib.sha256(), 0
            while chunk := response.read(1 << 20):
                file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
            if length is not None and received != int(length):
                raise ValueError(f"received {received:,} bytes of the {int(length):,} announced")
            if known is not None and (received, digest.hexdigest()) != tuple(known):
                raise ValueError(f"received {received:,} bytes with SHA-256 {digest.hexdigest()}, but the "
                                 f"published file has {known[0]:,} bytes and SHA-256 {known[1]}")
        atomic_write(target, write)


def json_safe(value):
    """``value`` with every NaN or infinity replaced by None, so that json.dumps writes strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def to_json(value) -> str:
    """Strict JSON (NaN and infinity become null), which every JSON parser reads."""
    return json.dumps(json_safe(value), allow_nan=False)
