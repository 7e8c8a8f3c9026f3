"""Characters <-> ids: the tokenizer of a character-level model (Tiny Shakespeare has 65 characters)."""
from __future__ import annotations

import reprlib                        # repr, shortened: for values in error messages
from collections import Counter

# Tokenizers run on the host: ids are built in Python lists and handed over as NumPy arrays.
import numpy

from .. import backend


class CharTokenizer:
    """Characters <-> integers: the vocabulary is the sorted set of characters of a text.

    Tiny Shakespeare has 65 distinct characters, so ids are 0..64. Encoding a character that is not in
    the vocabulary is an error that names it: the model has no embedding for it.
    """

    def __init__(self, chars):
        self.chars = "".join(chars)
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("Tokenizer characters must be distinct.")
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> numpy.ndarray:
        unseen = sorted(set(text) - set(self.stoi))
        if unseen:
            raise ValueError(f"Characters not in the vocabulary: {''.join(unseen)!r} "
                             f"({', '.join(repr(c) for c in unseen)}). The model knows only these "
                             f"{self.vocab_size} characters: {self.chars!r}. Remove or replace the others.")
        return numpy.array([self.stoi[ch] for ch in text], dtype=numpy.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in backend.to_numpy(ids).reshape(-1))

    def to_dict(self) -> dict:
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, state: dict, source: str = "the tokenizer description") -> "CharTokenizer":
        """The tokenizer of a to_dict() (e.g. a checkpoint's). Its 'chars' must be a string of distinct
        characters (or a list of one-character strings): character i has the id i, so one character
        missing, doubled or longer than one would shift every id after it."""
        if not isinstance(state, dict) or state.get("kind") != "char":
            found = "no tokenizer" if state is None else f"a tokenizer of kind {state.get('kind')!r}" \
                if isinstance(state, dict) else reprlib.repr(state)
            raise ValueError(f"Not a character tokenizer ({found}): a checkpoint of "
                             "scripts/train_shakespeare.py holds one.")
        chars = state.get("chars")
        fix = "CharTokenizer.to_dict() makes one; a checkpoint of scripts/train_shakespeare.py holds one."
        if not chars:                                                    # missing, None, "" or []
            raise ValueError(f"{source}: the character tokenizer has no 'chars' ({reprlib.repr(chars)}): "
                             f"no id stands for a character. {fix}")
        if not isinstance(chars, (str, list)):
            raise ValueError(f"{source}: its 'chars' is {reprlib.repr(chars)}, not a string of characters. {fix}")
        bad = next((ch for ch in chars if not (isinstance(ch, str) and len(ch) == 1)), None)
        if bad is not None:
            raise ValueError(f"{source}: its 'chars' holds {reprlib.repr(bad)}, which is not one character. {fix}")
        counts = Counter(chars)
        doubled = next((ch for ch in chars if counts[ch] > 1), None)
        if doubled is not None:
            raise ValueError(f"{source}: its 'chars' holds {doubled!r} {counts[doubled]} times; each character "
                             f"has one id. {fix}")
        return cls(chars)
