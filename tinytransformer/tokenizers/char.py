"""Characters <-> ids: the tokenizer of a character-level model (Tiny Shakespeare has 65 characters)."""
from __future__ import annotations

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
    def from_dict(cls, state: dict) -> "CharTokenizer":
        if not isinstance(state, dict) or state.get("kind") != "char":
            found = "no tokenizer" if state is None else f"a tokenizer of kind {state.get('kind')!r}" \
                if isinstance(state, dict) else repr(state)
            raise ValueError(f"Not a character tokenizer ({found}): a checkpoint of "
                             "scripts/train_shakespeare.py holds one.")
        return cls(state["chars"])
