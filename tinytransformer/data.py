"""Text data for language modelling: the Tiny Shakespeare corpus and random batches of token ids.

This is the host side of training, as in nanoGPT: the corpus lives in host memory as token ids, and each
batch is drawn there and copied to the backend's device.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

# Host-side data pipeline: the corpus and the batch indices live in host memory (NumPy); only the
# finished batch is moved to the device with backend.asarray.
import numpy

from . import backend, files
from .tokenizers import CharTokenizer

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SIZE = 1_115_394  # characters (and bytes: the file is ASCII)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


# --- finding the corpus --------------------------------------------------------------------------------

def _is_valid_shakespeare(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return len(data) == SHAKESPEARE_SIZE and hashlib.sha256(data).hexdigest() == SHAKESPEARE_SHA256


def _shared_copies() -> list:
    """``shared/data/tinyshakespeare.txt`` beside the checkout: next to the repository's folder, or next
    to the current directory (for an installed, non-editable package run from inside a checkout)."""
    beside_package = Path(__file__).resolve().parent.parent.parent
    return [folder / "shared" / "data" / "tinyshakespeare.txt" for folder in (beside_package, Path.cwd().parent)]


def find_shakespeare(path=None, download: bool = True, log=print) -> Path:
    """Locate Tiny Shakespeare, in this order:

    1. ``path`` (e.g. ``--data``), used as given;
    2. the cached copy ``~/.cache/tinytransformer/tinyshakespeare.txt`` (or ``$TINYTRANSFORMER_CACHE``);
    3. a download from the char-rnn repository, verified by size and SHA-256, then cached;
    4. ``../shared/data/tinyshakespeare.txt`` beside the checkout (verified, then cached).

    If none works, the error says how to get the file.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No corpus at {path}. Pass the path of a text file with --data, or "
                                    "leave --data out to use the cached or downloaded Tiny Shakespeare.")
        return path
    cached = files.cache_dir() / "tinyshakespeare.txt"
    if _is_valid_shakespeare(cached):
        return cached
    problems = []
    if download:
        try:
            files.download(SHAKESPEARE_URL, cached, (SHAKESPEARE_SIZE, SHAKESPEARE_SHA256), log, timeout=30)
            return cached
        except Exception as err:  # no network, or a bad download: fall through to the shared copy
            problems.append(f"download failed ({err})")
    for shared in _shared_copies():
        if _is_valid_shakespeare(shared):
            try:
                data = shared.read_bytes()
                files.atomic_write(cached, lambda file: file.write(data))
                return cached
            except OSError:
                return shared  # read-only home: use the shared copy where it is
        problems.append(f"no valid copy at {shared}")
    raise FileNotFoundError(
        "Tiny Shakespeare was not found: " + "; ".join(problems) + ". Download it with\n"
        f"    curl -o tinyshakespeare.txt {SHAKESPEARE_URL}\n"
        f"and pass --data tinyshakespeare.txt, or put it at {cached}.")


def read_text(path) -> str:
    """The text of a corpus file; a clear error when it is not UTF-8 text (e.g. a binary or Latin-1 file)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"--data {path} is not UTF-8 text: byte {data[err.start]:#04x} at position "
                         f"{err.start} is not valid UTF-8. Pass a plain text file, or convert this one, e.g. "
                         f"iconv -f latin1 -t utf-8 {path} > converted.txt") from None


# --- the data set --------------------------------------------------------------------------------------

def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The text's first (1 − val_fraction) for training and the rest for validation, as nanoGPT splits.

    The split is made in characters, before any tokenizer sees the text, so that a tokenizer trained on
    the training part (a BPE) learns nothing from the validation text it is then measured on.
    """
    split = int(len(text) * (1.0 - val_fraction))
    return text[:split], text[split:]


class TextDataset:
    """A text as token ids (``train`` and ``val``, split by ``split_text``), encoded once by any tokenizer
    with ``encode(text) -> int64 array``: characters by default, BPE sub-words, GPT-2's vocabulary."""

    def __init__(self, text: str, tokenizer=None, val_fraction: float = 0.1):
        self.tokenizer = tokenizer or CharTokenizer.from_text(text)
        train_text, val_text = split_text(text, val_fraction)
        self.train, self.val = self.tokenizer.encode(train_text), self.tokenizer.encode(val_text)

    def get_batch(self, split: str, batch_size: int, block_size: int, rng: numpy.random.Generator):
        """Random windows of block_size tokens: x [B, T] and the same windows shifted by one, y [B, T].

        One window holds block_size training examples at once: x[:t+1] -> y[t] for every t.
        """
        data = self.train if split == "train" else self.val
        if len(data) <= block_size:
            raise ValueError(f"The {split} split has {len(data)} tokens, too few for block_size "
                             f"{block_size}: use a longer text or a smaller block_size.")
        starts = rng.integers(0, len(data) - block_size, size=batch_size)             # [B]
        offsets = starts[:, None] + numpy.arange(block_size)                          # [B, T]
        return backend.asarray(data[offsets]), backend.asarray(data[offsets + 1])     # x, y: [B, T]
