"""Files: the cache folder, writing a file (or a whole folder) so that nobody ever sees half of it,
checked downloads, and strict JSON, written and read.

Every file the project writes for keeps (checkpoints, safetensors, tokenizers, the metrics log, a
downloaded corpus) goes through ``atomic_write``: the bytes go to a temporary beside the target, are
forced to disk, and the temporary is renamed over the target in one step. A process killed at any
moment leaves the old file or the new one. The temporary is named ``<name>.tmp-<pid>``, so that
``training.run_folder.remove_stale_temporaries`` can tell a dead writer's leftovers from a live one's.
``replace_folder`` does the same for a folder of files (a saved model): see its docstring.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
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


# --- reading JSON that came from elsewhere ---------------------------------------------------------------

MAX_JSON_DIGITS = 20   # 2⁶⁴ has 20 digits: no count or size in a file needs more


def strict_json_loads(text, max_digits: int = MAX_JSON_DIGITS):
    """``json.loads`` for a file someone else wrote: the same value, or a ValueError that says what is
    wrong (the caller adds which file), also where json.loads would keep only the last of two equal keys
    (a tensor named twice), spend seconds on a 5,000-digit number, or recurse until the stack runs out.
    ``max_digits``: the longest whole number read (a random generator's 128-bit state needs 39)."""
    def refuse_repeated_keys(pairs):
        table = {}
        for key, value in pairs:
            if key in table:
                raise ValueError(f"the key {key!r} appears twice in one object")
            table[key] = value
        return table

    def short_int(digits):
        if len(digits.lstrip("-")) > max_digits:
            raise ValueError(f"it holds a number of {len(digits.lstrip('-')):,} digits (at most "
                             f"{max_digits} are read)")
        return int(digits)
    try:
        return json.loads(text, object_pairs_hook=refuse_repeated_keys, parse_int=short_int)
    except RecursionError:
        raise ValueError("it is nested too deeply (lists or objects inside each other thousands of times)") \
            from None
    except json.JSONDecodeError as err:
        raise ValueError(f"it is not JSON ({err})") from None


# --- replacing a whole folder ----------------------------------------------------------------------------

def replace_folder(folder, fill, keep=(), log=print) -> None:
    """Make ``folder`` hold exactly what ``fill(new)`` writes into the empty folder ``new`` (and the files
    named in ``keep``, carried over from the old folder), never a mix of old and new files.

    1. ``fill`` writes into ``<name>.tmp-<pid>`` beside ``folder``; every file is then forced to disk.
    2. The old folder is renamed aside, to ``<name>.old-<pid>``.
    3. The new folder is renamed to ``folder``, and the old one is deleted.

    Each rename is atomic. Killed before step 2, the process leaves the old folder as it was; after
    step 3, the new one. Killed between 2 and 3 (two renames, microseconds apart), it leaves no
    ``folder`` for a moment, but both complete folders under their temporary names: the new one was
    complete before the old one moved, so ``finish_replacing_folder`` (which the next replace_folder and
    ``load_gpt2`` call) renames it into place.
    """
    folder = Path(folder).resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder: give the folder to write (it may not exist yet).")
    if folder == Path.cwd() or folder in Path.cwd().parents:
        raise ValueError(f"{folder} is the current folder (or holds it): a folder is replaced by renaming it, "
                         "so give a folder below the current one.")
    finish_replacing_folder(folder, log)
    new, aside = temporary_name(folder), folder.with_name(f"{folder.name}.old-{os.getpid()}")
    shutil.rmtree(new, ignore_errors=True)
    try:
        new.mkdir(parents=True)
        for name in keep:
            try:
                os.link(folder / name, new / name)   # the same file under a second name: no bytes copied
            except OSError:                          # a file system without hard links
                shutil.copyfile(folder / name, new / name)
        fill(new)
        _fsync_tree(new)
    except BaseException:                            # also KeyboardInterrupt: the old folder is untouched
        shutil.rmtree(new, ignore_errors=True)
        raise
    if folder.exists():
        os.rename(folder, aside)
        try:
            os.rename(new, folder)
        except BaseException:
            os.rename(aside, folder)                 # put the old one back
            raise
        fsync_directory(folder.parent)
        shutil.rmtree(aside, ignore_errors=True)   # (what an error leaves, the next call deletes)
    else:
        os.rename(new, folder)
        fsync_directory(folder.parent)


def finish_replacing_folder(folder, log=print) -> None:
    """Tidy up beside ``folder`` after a ``replace_folder`` that was killed (its pid no longer runs):
    killed between its two renames, it left no ``folder`` and a complete new one, which is renamed into
    place; the old folder it had set aside, and a new one it had not finished, are deleted."""
    folder = Path(folder)
    leftovers = re.compile(re.escape(folder.name) + r"\.(tmp|old)-(\d+)")
    try:
        found = sorted((match.group(1), int(match.group(2)), path) for path in folder.parent.iterdir()
                       if (match := leftovers.fullmatch(path.name)) and path.is_dir())
    except OSError:                              # no such folder, or one we may not read: nothing to do
        return
    for kind, pid, path in found:                # "old" before "tmp": each set-aside folder first
        if (pid != os.getpid() and process_running(pid)) or not path.exists():
            continue                             # a live writer's, or already renamed into place
        new = folder.with_name(f"{folder.name}.tmp-{pid}")
        if kind == "old" and not folder.exists():
            if new.is_dir():                     # killed between the two renames: finish the swap
                os.rename(new, folder)
                log(f"finished replacing {folder}: the process that wrote it (pid {pid}) was stopped between "
                    f"its two renames; the new folder was complete, the old one is deleted")
            else:                                # (the new one is gone: keep the old one)
                os.rename(path, folder)
                log(f"put back {folder}, set aside by a process stopped while replacing it (pid {pid})")
                continue
        shutil.rmtree(path, ignore_errors=True)
    if found:
        fsync_directory(folder.parent)


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 checks without sending anything)."""
    if os.name == "nt":       # there os.kill(pid, 0) would end the process: assume it runs, keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, under another user
        return True
    return True


def _fsync_tree(folder) -> None:
    """Force every file under ``folder``, and the folders' own entries, to disk."""
    for directory, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(directory, name), "rb") as file:
                os.fsync(file.fileno())
        fsync_directory(directory)
