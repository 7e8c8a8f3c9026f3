"""Saving and resuming training: one ``.npz`` file per checkpoint.

The file is an ordinary NumPy archive that plain NumPy can read without this package::

    ckpt = numpy.load(path, allow_pickle=False)
    ckpt["model/blocks.0.attn.q_proj.weight"]      # the weights, by parameter name
    ckpt["optim/m/<name>"], ckpt["optim/v/<name>"]  # AdamW's moments (when an optimizer was saved)
    json.loads(bytes(ckpt["header"]).decode())      # everything else, as a JSON document

The header holds the format name and version, the model config, the tokenizer, the iteration, the
optimizer's scalars, the random-number state and an ``extra`` dict (e.g. best_val_loss). Nothing is
pickled, so loading a checkpoint cannot run code.

Saving is atomic: the file is written under a temporary name, forced to disk, and renamed over the
old checkpoint in one step. A run killed at any moment leaves the old checkpoint or the new one, never
half of one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zipfile

# The file format is host-side: arrays are copied off the device (backend.to_numpy) before writing and
# read back as host arrays, so NumPy itself is the right tool here, not ``xp``.
import numpy

from .. import backend
from ..files import atomic_write

FORMAT_NAME = "tinytransformer-checkpoint"
FORMAT_VERSION = 1

_CORRUPT_FIX = "it may be truncated — delete it and train again, or use an earlier checkpoint"


class CheckpointError(Exception):
    """A checkpoint is missing, damaged, or does not fit the model; the message says how to fix it."""


@dataclasses.dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns: every array as a host NumPy array."""

    config: dict
    model_state: dict            # parameter name -> array, for Module.load_state_dict
    optimizer_state: dict | None  # AdamW.state_dict() form, or None when no optimizer was saved
    tokenizer: dict | None
    iteration: int
    rng_state: dict | None
    extra: dict


def _as_dict(config) -> dict:
    """A config dataclass (e.g. a model's config) or a dict -> a dict."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


# --- saving -------------------------------------------------------------------------------------------

def save_checkpoint(path, *, model, config, optimizer=None, tokenizer=None, iteration=0, rng_state=None,
                    extra=None) -> None:
    """Write model weights, optimizer state and run information to ``path`` (one .npz file), atomically.

    ``config``, ``tokenizer``, ``rng_state`` and ``extra`` must be JSON-able (numbers, strings, lists,
    dicts); ``rng_state`` is typically ``numpy_generator.bit_generator.state``.
    """
    path = os.fspath(path)
    optimizer_state = optimizer.state_dict() if optimizer is not None else None
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": _as_dict(config),
        "tokenizer": tokenizer,
        "iteration": int(iteration),
        "optimizer": None if optimizer_state is None else {
            key: optimizer_state[key] for key in ("step", "lr", "betas", "eps", "weight_decay")},
        "rng_state": rng_state,
        "extra": dict(extra or {}),
    }
    try:
        header_bytes = json.dumps(header).encode("utf-8")
    except TypeError as err:
        raise TypeError(f"The checkpoint header must be JSON-able ({err}). Pass config, tokenizer, "
                        "rng_state and extra as dicts of numbers, strings and lists.") from err

    arrays = {"header": numpy.frombuffer(header_bytes, dtype=numpy.uint8)}
    # state_dict() gives host copies already; to_numpy makes sure of it for any model-like object.
    for name, value in model.state_dict().items():
        arrays[f"model/{name}"] = backend.to_numpy(value)
    if optimizer_state is not None:
        for name, value in optimizer_state["m"].items():
            arrays[f"optim/m/{name}"] = backend.to_numpy(value)
        for name, value in optimizer_state["v"].items():
            arrays[f"optim/v/{name}"] = backend.to_numpy(value)

    # An open file object, because numpy.savez appends ".npz" to a file *name* that lacks it.
    atomic_write(path, lambda file: numpy.savez(file, **arrays))


# --- loading ------------------------------------------------------------------------------------------

def _invalid(path, reason, fix=_CORRUPT_FIX) -> CheckpointError:
    return CheckpointError(f"{path} is not a valid tinytransformer checkpoint ({reason}); {fix}.")


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; raise CheckpointError if it is missing or bad."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}; train first (scripts/train_shakespeare.py "
                              "--out-dir DIR) or pass the right --out-dir")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a directory; pass the checkpoint file inside it")
    with open(path, "rb") as file:
        if file.read(2) != b"PK":  # every zip archive, and so every .npz, starts with "PK"
            raise _invalid(path, "not a zip/.npz archive")
    try:
        # Read every entry now, inside the try: a damaged entry fails here with a CRC or EOF error.
        with numpy.load(path, allow_pickle=False) as npz:
            entries = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise _invalid(path, f"cannot read the archive: {err}") from err

    if "header" not in entries:
        raise _invalid(path, "no header entry")
    try:
        header = json.loads(entries["header"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _invalid(path, f"the header is not UTF-8 JSON: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        found = header.get("format") if isinstance(header, dict) else None
        raise _invalid(path, f"format is {found!r}, expected {FORMAT_NAME!r}")
    if header.get("version") != FORMAT_VERSION:
        raise _invalid(path, f"format version {header.get('version')!r}, this code reads version "
                             f"{FORMAT_VERSION}",
                       fix="it was written by another version of tinytransformer — load it with that "
                           "version, or train again")
    for key in ("config", "iteration"):
        if key not in header:
            raise _invalid(path, f"the header has no {key!r}")

    def arrays_under(prefix):
        return {key[len(prefix):]: value for key, value in entries.items() if key.startswith(prefix)}

    optimizer_state = None
    if header.get("optimizer") is not None:
        scalars = header["optimizer"]
        optimizer_state = {**scalars, "betas": tuple(scalars["betas"]),  # JSON turned the tuple into a list
                           "m": arrays_under("optim/m/"), "v": arrays_under("optim/v/")}
    return Checkpoint(config=header["config"], model_state=arrays_under("model/"),
                      optimizer_state=optimizer_state, tokenizer=header.get("tokenizer"),
                      iteration=header["iteration"], rng_state=header.get("rng_state"),
                      extra=header.get("extra") or {})


# --- using a checkpoint -------------------------------------------------------------------------------

def check_config(saved, current) -> None:
    """Raise CheckpointError listing every field where the checkpoint's config and the model's differ.

    Compare only what must match (the fields that fix the parameter shapes) if some may change on
    resume, e.g. dropout.
    """
    # Through JSON, as the saved one went: a tuple and the list it became then compare equal.
    saved = json.loads(json.dumps(_as_dict(saved)))
    current = json.loads(json.dumps(_as_dict(current)))
    absent = "(absent)"
    differences = [f"{key}: checkpoint {saved.get(key, absent)}, model {current.get(key, absent)}"
                   for key in sorted(set(saved) | set(current))
                   if saved.get(key, absent) != current.get(key, absent)]
    if differences:
        raise CheckpointError("The checkpoint was saved with another config: " + "; ".join(differences)
                              + ". Build the model from the checkpoint's config, or start a fresh run.")


def restore(checkpoint: Checkpoint, model, optimizer=None) -> None:
    """Copy the checkpoint's weights into ``model`` and, if given, its state into ``optimizer``.

    The arrays go onto the current backend's device in the parameters' dtype, so a checkpoint saved on
    a GPU resumes on a CPU and the other way round.
    """
    try:
        model.load_state_dict(checkpoint.model_state)
    except (KeyError, ValueError) as err:
        reason = err.args[0] if err.args else err  # str(KeyError) would add quotes around the message
        raise CheckpointError(f"The checkpoint's weights do not fit this model: {reason} Build the model "
                              "from the checkpoint's config (checkpoint.config).") from err
    if optimizer is None:
        return
    if checkpoint.optimizer_state is None:
        raise CheckpointError("The checkpoint has no optimizer state (it was saved without an "
                              "optimizer). Restore with optimizer=None and start the optimizer fresh.")
    try:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (KeyError, ValueError) as err:
        reason = err.args[0] if err.args else err
        raise CheckpointError(f"The checkpoint's optimizer state does not fit this optimizer: {reason}") \
            from err
