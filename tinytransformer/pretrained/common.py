"""What the GPT-2 and the Llama loaders share: reading a config.json, refusing NaN weights, checking that
a GPT has the family's architecture, and which files of a folder a writer keeps."""
from __future__ import annotations

from pathlib import Path

import numpy

from ..files import strict_json_loads

MAX_CONFIG_BYTES = 1 << 20                             # a Hugging Face config.json has about 1 KB


def read_config_json(path, family: str, fix: str) -> dict:
    """A config.json as a dict, or a ValueError that names the file and what is wrong with it.
    ``family`` and ``fix``: the model family the file is read for, and what the error advises."""
    path = Path(path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} has {path.stat().st_size:,} bytes, but a {family} config.json has about 1 KB: "
                         f"it is not one. {fix}")
    try:
        hf = strict_json_loads(path.read_bytes().decode("utf-8"))
    except ValueError as err:                              # UnicodeDecodeError is a ValueError too
        raise ValueError(f"{path} is not a valid config.json: {err}. {fix}") from None
    if not isinstance(hf, dict):
        raise ValueError(f"{path} holds a JSON {type(hf).__name__}, not an object of settings such as "
                         f'{{"model_type": ..., "vocab_size": ..., ...}}. {fix}')
    return hf


def check_finite(tensors: dict, path, block: int = 1 << 20) -> None:
    """Refuse a NaN or infinite weight, naming the tensor: a model holding one computes NaN and samples
    garbage without an error. Checked a million numbers at a time, so that a memory-mapped file is read
    from disk with a few MB of memory, whatever its size."""
    for name, array in tensors.items():
        if not numpy.issubdtype(array.dtype, numpy.floating):
            continue
        flat = array.reshape(-1)
        for start in range(0, flat.size, block):
            finite = numpy.isfinite(flat[start:start + block])
            if not finite.all():
                first = start + int(numpy.argmin(finite))
                place = [int(i) for i in numpy.unravel_index(first, array.shape)]
                raise ValueError(f"{path}: {name} holds {flat[first]} at {place}: a model with a NaN or infinite "
                                 "weight computes NaN. The file is damaged, or was saved from a run that "
                                 "diverged: use an earlier checkpoint.")


def check_sizes(held: dict, path, source) -> None:
    """Refuse a config whose sizes are not the file's: ``held`` maps each field to (what ``source`` gives,
    what the tensors of ``path`` hold, where they hold it)."""
    for field, (said, found, what) in held.items():
        if said != found:
            raise ValueError(f"{source} gives {field} {said}, but {path} holds {found} ({what}): the two do not "
                             "belong together. Give the config.json written with these weights, or correct "
                             f"{field} to {found}.")


def check_architecture(config, needs: dict, family: str) -> None:
    """Refuse a GPTConfig whose fields differ from ``needs``, the choices of ``family`` (GPT-2, Llama)."""
    wrong = [f"{field}={getattr(config, field)!r} ({family} has {value!r})" for field, value in needs.items()
             if getattr(config, field) != value]
    if wrong:
        raise ValueError(f"{family}'s architecture cannot hold this model: {', '.join(wrong)}. Only a GPT built "
                         f"with {', '.join(f'{k}={v!r}' for k, v in needs.items())} has {family}'s parameters "
                         f"and computes what {family} computes.")


def files_to_keep(folder: Path, saved, writer: str) -> list:
    """The files of ``folder`` that ``writer`` (save_gpt2, save_llama) carries into the new folder, or an
    error: ``saved`` are the files it writes itself."""
    if not folder.is_dir():
        return []
    others = sorted(path.name for path in folder.iterdir() if path.name not in saved)
    if others and any((folder / name).exists() for name in saved):
        raise ValueError(f"{folder} holds a saved model and also {', '.join(others)}, which {writer} does not "
                         "write: beside the new weights they could describe the old model (a vocab.json of "
                         "another vocabulary). Move them away first, or save into a new folder.")
    folders = [name for name in others if not (folder / name).is_file()]
    if folders:
        raise ValueError(f"{folder} holds {', '.join(folders)}, which is not a file: {writer} writes the folder "
                         "as a whole and carries over files only. Save into a new folder.")
    return others
