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
import math
import os
import zipfile
from collections import Counter

# The file format is host-side: arrays are copied off the device (backend.to_numpy) before writing and
# read back as host arrays, so NumPy itself is the right tool here, not ``xp``.
import numpy

from .. import backend
from ..files import atomic_write, strict_json_loads
from ..models.gpt import GPTConfig
from ..module import is_int

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
    """Read a checkpoint written by ``save_checkpoint``; raise CheckpointError if it is missing or bad.

    A checkpoint may come from another machine, so nothing in it is trusted: every entry's size is
    checked against the file before it is unpacked, the header's fields against what they must be, and
    every weight must be a finite float. A damaged or hostile file is an error that names the problem,
    never a memory bomb or a model that silently computes garbage.
    """
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
        entries = _read_entries(path)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError) as err:
        raise _invalid(path, f"cannot read the archive: {err}") from err

    if "header" not in entries:
        raise _invalid(path, "no header entry")
    try:
        # max_digits: the batch sampler's state (PCG64) holds 128-bit numbers, 39 digits.
        header = strict_json_loads(entries.pop("header").tobytes().decode("utf-8"), max_digits=40)
    except (UnicodeDecodeError, ValueError) as err:
        raise _invalid(path, f"the header is not UTF-8 JSON: {str(err)[:200]}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        found = header.get("format") if isinstance(header, dict) else None
        raise _invalid(path, f"format is {found!r}, expected {FORMAT_NAME!r}")
    if header.get("version") != FORMAT_VERSION:
        raise _invalid(path, f"format version {header.get('version')!r}, this code reads version "
                             f"{FORMAT_VERSION}",
                       fix="it was written by another version of tinytransformer — load it with that "
                           "version, or train again")
    _check_header(header, path)
    model_state, m, v = ({key[len(prefix):]: value for key, value in entries.items() if key.startswith(prefix)}
                         for prefix in ("model/", "optim/m/", "optim/v/"))
    _check_arrays(entries, model_state, (m, v) if header.get("optimizer") is not None else None, path)

    optimizer_state = None
    if header.get("optimizer") is not None:
        scalars = header["optimizer"]
        optimizer_state = {**scalars, "betas": tuple(scalars["betas"]),  # JSON turned the tuple into a list
                           "m": m, "v": v}
    return Checkpoint(config=header["config"], model_state=model_state, optimizer_state=optimizer_state,
                      tokenizer=header.get("tokenizer"), iteration=header["iteration"],
                      rng_state=header.get("rng_state"), extra=header.get("extra") or {})


# An .npz written by save_checkpoint is stored, not compressed: its entries unpack to about the file's
# size. A file whose entries claim far more is refused before anything is unpacked (a "zip bomb").
MAX_UNPACKED_PER_BYTE = 10


def _read_entries(path) -> dict:
    """Every .npy entry of the archive as a host array, reading one entry at a time, after checking the
    sizes the archive declares against the file's size and each entry's array header against its entry."""
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        twice = [name for name, count in Counter(info.filename for info in infos).items() if count > 1]
        if twice:   # numpy.load would keep one of them without a word
            raise ValueError(f"the entry {twice[0]!r} is in the archive twice")
        unpacked = sum(info.file_size for info in infos)
        if unpacked > MAX_UNPACKED_PER_BYTE * size:
            raise ValueError(f"its entries would unpack to {unpacked:,} bytes, {unpacked // size:,} times the "
                             f"file's {size:,} (a checkpoint's entries are stored uncompressed)")
        entries = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"the entry {info.filename!r} is not a .npy array")
            with archive.open(info) as member:
                entries[info.filename[:-len(".npy")]] = _read_npy(member, info)
    return entries


def _read_npy(member, info):
    """One .npy entry -> a writable array; its header's shape and dtype must account for its bytes."""
    version = numpy.lib.format.read_magic(member)
    read_header = (numpy.lib.format.read_array_header_1_0 if version == (1, 0)
                   else numpy.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(member)
    if dtype.hasobject:  # an object array is pickled: loading it could run code
        raise ValueError(f"the entry {info.filename!r} holds Python objects, which are never loaded")
    expected = math.prod(shape) * dtype.itemsize
    if member.tell() + expected != info.file_size:
        raise ValueError(f"the entry {info.filename!r} says it holds {dtype} of shape {shape} ({expected:,} "
                         f"bytes) but has {info.file_size - member.tell():,} bytes of data")
    data = bytearray(expected)
    if member.readinto(data) != expected:
        raise EOFError(f"the entry {info.filename!r} ends early")
    return numpy.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _check_header(header: dict, path) -> None:
    """Each field of the header has the type and range a checkpoint's has."""
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    for key in ("config", "iteration"):
        if key not in header:
            raise _invalid(path, f"the header has no {key!r}")
    if not isinstance(header["config"], dict):
        raise _invalid(path, f"the header's 'config' is {header.get('config')!r}, not a dict")
    iteration = header["iteration"]
    if not is_int(iteration) or iteration < 0:
        raise _invalid(path, f"the header's 'iteration' is {iteration!r}, not a whole number >= 0")
    for key in ("tokenizer", "rng_state", "extra"):
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise _invalid(path, f"the header's {key!r} is {header[key]!r}, not a dict")
    best = (header.get("extra") or {}).get("best_val_loss")
    if best is not None and not (number(best) or best == math.inf):
        raise _invalid(path, f"the header's extra.best_val_loss is {best!r}, not a number")
    scalars = header.get("optimizer")
    if scalars is None:
        return
    if not isinstance(scalars, dict):
        wrong = ["not a dict"]
    else:
        step, betas = scalars.get("step"), scalars.get("betas")
        wrong = [f"step {step!r}"] if not is_int(step) or step < 0 else []
        wrong += [f"{key} {scalars.get(key)!r}" for key in ("lr", "eps", "weight_decay")
                  if not number(scalars.get(key))]
        if not (isinstance(betas, list) and len(betas) == 2 and all(number(b) and 0 <= b < 1 for b in betas)):
            wrong.append(f"betas {betas!r}")
    if wrong:
        raise _invalid(path, f"the header's optimizer state is wrong ({', '.join(wrong)}): it needs a step >= 0, "
                             "numbers lr, eps and weight_decay, and two betas in [0, 1)")


def _check_arrays(entries: dict, model_state: dict, moments, path) -> None:
    """Only the entries a checkpoint has; every weight (and AdamW moment) a finite float; a moment for
    each weight, of its shape."""
    known = ("model/", "optim/m/", "optim/v/") if moments is not None else ("model/",)
    stray = sorted(key for key in entries if not key.startswith(known))
    if stray:
        raise _invalid(path, f"it has entries a checkpoint does not have: {stray[:5]}")
    for key, array in entries.items():
        if not numpy.issubdtype(array.dtype, numpy.floating):
            raise _invalid(path, f"{key} is {array.dtype}, not a float array")
        if not numpy.isfinite(array).all():
            raise _invalid(path, f"{key} holds NaN or infinite values (the run that saved it had diverged)",
                           fix="use an earlier checkpoint, or train again")
    for moment in moments or ():
        for name, array in model_state.items():
            if name not in moment or moment[name].shape != array.shape:
                raise _invalid(path, f"the optimizer state has no moment of shape {array.shape} for {name}")
        if set(moment) - set(model_state):
            raise _invalid(path, f"the optimizer state has moments for {sorted(set(moment) - set(model_state))[:5]}, "
                                 "which are not weights of the model")


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


def gpt_config_of(checkpoint: Checkpoint, path) -> GPTConfig:
    """The GPTConfig of a checkpoint's model (``config["model"]``, or the config itself), checked against
    the arrays the file holds before any model is built: a config from elsewhere could otherwise ask for
    a million layers or a 60,000-wide model from a file of a few kilobytes.

    The sizes that decide what building allocates (vocabulary, width, context, layers) must be those of
    the weights; ``restore`` then checks every other array's shape against the model built.
    """
    fields = checkpoint.config.get("model", checkpoint.config)
    if not isinstance(fields, dict) or not set(fields) <= set(GPTConfig.__dataclass_fields__):
        raise CheckpointError(f"{path} does not hold a GPT (its config is not a GPTConfig: "
                              f"{sorted(fields) if isinstance(fields, dict) else fields!r}); it was saved by "
                              "another model or program.")
    try:
        config = GPTConfig(**fields)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its model config is wrong: {err} The file is damaged or was not "
                              "written by tinytransformer.") from None
    state = checkpoint.model_state
    wants = {"wte.weight": (config.vocab_size, config.n_embd)}
    if config.positional == "learned":
        wants["wpe.weight"] = (config.block_size, config.n_embd)
    wrong = [f"{name} is {tuple(state[name].shape) if name in state else 'absent'}, the config says {want}"
             for name, want in wants.items() if name not in state or tuple(state[name].shape) != want]
    blocks = {name.split(".")[1] for name in state if name.startswith("blocks.")}
    if blocks != {str(i) for i in range(config.n_layer)}:
        wrong.append(f"it holds {len(blocks)} blocks, the config says n_layer {config.n_layer}")
    if wrong:
        raise CheckpointError(f"{path}: its model config does not describe the weights it holds "
                              f"({'; '.join(wrong)}). The file is damaged or was not written by tinytransformer.")
    return config


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
