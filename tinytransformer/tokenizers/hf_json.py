"""Hugging Face's tokenizer.json (the `tokenizers` library's file) as a BPETokenizer: byte-level BPE only.

Llama 3, Mistral's newer models, GPT-2 and most byte-level BPE models ship their tokenizer as one
tokenizer.json: ``model`` (type "BPE": ``vocab`` token -> id in GPT-2's printable form of bytes, and
``merges`` in priority order, as "a b" strings or [a, b] pairs), ``added_tokens`` (special tokens, each
with its id), and the ``pre_tokenizer`` that splits the text before merging. That is exactly what
BPETokenizer holds (bpe.py), with one difference of rule: BPETokenizer merges the adjacent pair whose
*merged token* has the lowest id (tiktoken's rule), tokenizers the pair listed first among ``merges``.
The two give the same tokens when every merged token's id follows its merge's place in the list and
each token's own bytes merge back into exactly its listed pair; both are checked here, so a file for
which the two rules could differ is refused rather than encoded differently.

    tokenizer = tokenizer_from_hf_json("path/to/tokenizer.json")
    ids = tokenizer.encode("Hello world")       # = tokenizers' encode(..., add_special_tokens=False).ids

Refused, each with the field and the reason: a pre-tokenizer pattern that is not one of KNOWN_PATTERNS
(a pattern is a program, and guessing another would give other tokens), a normalizer (SentencePiece-style
Llama 1/2 and Mistral 7B v0.1 files: not byte-level), BPE dropout, byte fallback, subword prefixes.
What a post-processor adds (a BOS token, as Llama 3's) is not added by encode: prepend it yourself.
"""
from __future__ import annotations

import reprlib
from pathlib import Path

from ..files import strict_json_loads
from .bpe import GPT2_PATTERN, KNOWN_PATTERNS, UNICODE_TO_BYTE, BPETokenizer, check_ids, unicode_to_token

MAX_BYTES = 256 << 20       # Llama 3's tokenizer.json has 9 MB; no tokenizer needs 256 MB
FIX = "Give the tokenizer.json that the model was published with, as the `tokenizers` library writes it."


def tokenizer_from_hf_json(path, trusted_pattern: str | None = None) -> BPETokenizer:
    """The BPETokenizer of a byte-level BPE tokenizer.json, every field checked before it is used.

    trusted_pattern: a split pattern you trust that is not one of KNOWN_PATTERNS (as in
    BPETokenizer.from_dict); the file's pattern is used only if it is exactly that one."""
    path = Path(path)
    where = str(path)
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path} has {path.stat().st_size:,} bytes: no tokenizer.json is that large. {FIX}")
    try:
        state = strict_json_loads(path.read_bytes().decode("utf-8"))
    except ValueError as err:                              # UnicodeDecodeError is a ValueError too
        raise ValueError(f"{path} is not a valid tokenizer.json: {err}. {FIX}") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        found = reprlib.repr(model.get("type")) if isinstance(model, dict) else "no 'model' object"
        raise ValueError(f"{where}: model.type is {found}, not \"BPE\": only byte-level BPE tokenizers are read "
                         "(a Unigram or WordPiece tokenizer is not one BPETokenizer can hold).")
    _check_options(state, model, where)
    pattern = _pattern(state.get("pre_tokenizer"), where, trusted_pattern)
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not all(isinstance(key, str) for key in vocab):
        raise ValueError(f"{where}: model.vocab is {reprlib.repr(vocab)}, not an object token -> id. {FIX}")
    if not isinstance(merges, list):
        raise ValueError(f"{where}: model.merges is {reprlib.repr(merges)}, not a list of merges. {FIX}")
    specials = _added_tokens(state.get("added_tokens", []), vocab, where)
    ordinary = {text: i for text, i in vocab.items() if text not in specials}
    check_ids([(f"model.vocab entry {reprlib.repr(text)}", i) for text, i in ordinary.items()]
              + [(f"added token {reprlib.repr(text)}", i) for text, i in specials.items()], where, FIX)
    ranks, pairs = _ranks(ordinary, merges, where)
    tokenizer = BPETokenizer(ranks, pattern, specials)
    if tokenizer.merges() != pairs:           # tiktoken's rule (lowest merged id) would differ from tokenizers'
        first = next(k for k, (ours, theirs) in enumerate(zip(tokenizer.merges(), pairs)) if ours != theirs)
        raise ValueError(f"{where}: model.merges[{first}] joins {pairs[first]!r}, but its token's bytes merge "
                         "first into another pair by the earlier merges: for this vocabulary, merging by the "
                         "merged token's id (BPETokenizer's rule) would give other tokens than the merge "
                         "list's order, so it is not read.")
    return tokenizer


def _check_options(state: dict, model: dict, where: str) -> None:
    """Refuse the options that would make tokenizers encode otherwise than BPETokenizer does."""
    wrong = [f"model.{key} is {reprlib.repr(model.get(key))}" for key, allowed in
             (("dropout", (None, 0, 0.0)), ("byte_fallback", (None, False)),
              ("continuing_subword_prefix", (None, "")), ("end_of_word_suffix", (None, "")))
             if model.get(key) not in allowed]
    if state.get("normalizer") is not None:
        wrong.append(f"normalizer is {reprlib.repr(state['normalizer'])}")
    decoder = state.get("decoder")
    if decoder is not None and (not isinstance(decoder, dict) or decoder.get("type") != "ByteLevel"):
        wrong.append(f"decoder is {reprlib.repr(decoder)}")
    if wrong:
        raise ValueError(f"{where}: {'; '.join(wrong)}. BPETokenizer is a plain byte-level BPE (no normalizer, "
                         "no dropout, no byte fallback, no subword prefix or suffix, a ByteLevel decoder): this "
                         "tokenizer (a SentencePiece-style one, as Llama 2's?) would encode otherwise.")


def _pattern(pre: object, where: str, trusted: str | None) -> str:
    """The split pattern of a ByteLevel pre-tokenizer (GPT-2's), or of Split(Regex) + ByteLevel(use_regex
    false), as Llama 3's; it must be known (or trusted): a pattern from a file is not compiled blindly."""
    steps = pre.get("pretokenizers") if isinstance(pre, dict) and pre.get("type") == "Sequence" else [pre]
    if not isinstance(steps, list) or not steps or not all(isinstance(step, dict) for step in steps) \
            or steps[-1].get("type") != "ByteLevel" or steps[-1].get("add_prefix_space", False):
        raise ValueError(f"{where}: pre_tokenizer is {reprlib.repr(pre)}, but a byte-level BPE tokenizer.json "
                         "ends it with ByteLevel (add_prefix_space false): this is not one BPETokenizer reads.")
    byte_level, before = steps[-1], steps[:-1]
    if not before and byte_level.get("use_regex", True):
        pattern = GPT2_PATTERN                            # ByteLevel's own split is GPT-2's
    elif len(before) == 1 and not byte_level.get("use_regex", True) and before[0].get("type") == "Split" \
            and before[0].get("behavior") == "Isolated" and not before[0].get("invert", False) \
            and isinstance(before[0].get("pattern"), dict) and list(before[0]["pattern"]) == ["Regex"]:
        pattern = before[0]["pattern"]["Regex"]
    else:
        raise ValueError(f"{where}: pre_tokenizer is {reprlib.repr(pre)}: BPETokenizer splits with one pattern, "
                         "as ByteLevel (use_regex true) or one Split (Regex, Isolated) before ByteLevel (use_regex "
                         "false) do; this combination it does not reproduce.")
    if pattern not in KNOWN_PATTERNS.values() and pattern != trusted:
        raise ValueError(f"{where}: the pre-tokenizer's pattern {reprlib.repr(pattern)} is not one of "
                         f"tinytransformer's split patterns ({', '.join(KNOWN_PATTERNS)}); a pattern from a file "
                         "could hang encoding, and another pattern gives other tokens. If you trust it, pass it "
                         "as trusted_pattern= to tokenizer_from_hf_json.")
    return pattern


def _added_tokens(added: object, vocab: dict, where: str) -> dict:
    """{content: id} of added_tokens (special tokens); one that is also in model.vocab must have its id."""
    if not isinstance(added, list) or not all(isinstance(token, dict) for token in added):
        raise ValueError(f"{where}: added_tokens is {reprlib.repr(added)}, not a list of tokens. {FIX}")
    specials = {}
    for token in added:
        content, i = token.get("content"), token.get("id")
        if not isinstance(content, str) or not content or content in specials:
            problem = "given twice" if content in specials else "not a non-empty string"
            raise ValueError(f"{where}: added token {reprlib.repr(token)}: its content is {problem}. {FIX}")
        if content in vocab and vocab[content] != i:
            raise ValueError(f"{where}: added token {content!r} has id {i!r}, but model.vocab gives it "
                             f"{vocab[content]!r}. {FIX}")
        specials[content] = i
    return specials


def _ranks(vocab: dict, merges: list, where: str) -> tuple[dict, list]:
    """The vocabulary as bytes -> id, and the merges as byte pairs; each checked: a merge joins two tokens
    of the vocabulary into a third, with ids growing in the merges' order; every other token is a byte."""
    try:
        ranks = {bytes([UNICODE_TO_BYTE[text]]): i for text, i in vocab.items() if len(text) == 1}
    except KeyError as err:
        raise ValueError(f"{where}: model.vocab has {err}, not a character of GPT-2's byte table. {FIX}") from None
    if len(ranks) < 256:
        raise ValueError(f"{where}: model.vocab holds {len(ranks)} of the 256 single bytes (in GPT-2's printable "
                         f"form): it is not a byte-level BPE vocabulary. {FIX}")
    pairs, previous, made = [], -1, set()
    for number, merge in enumerate(merges):
        parts = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(part, str) for part in parts):
            raise ValueError(f"{where}: model.merges[{number}] is {reprlib.repr(merge)}, not two tokens (\"a b\" or "
                             f"[\"a\", \"b\"]). {FIX}")
        merged = parts[0] + parts[1]
        unknown = [part for part in (*parts, merged) if part not in vocab]
        if unknown or merged in made:
            problem = f"{unknown[0]!r} is not in model.vocab" if unknown else f"{merged!r} was made by an earlier merge"
            raise ValueError(f"{where}: model.merges[{number}] ({reprlib.repr(merge)}): {problem}. {FIX}")
        if vocab[merged] <= previous:
            raise ValueError(f"{where}: model.merges[{number}] makes {merged!r} with id {vocab[merged]}, not larger "
                             f"than the previous merge's ({previous}): BPETokenizer takes a token's id as its "
                             "merge's rank, so ids must follow the order of the merges.")
        previous = vocab[merged]
        made.add(merged)
        try:
            pairs.append((unicode_to_token(parts[0]), unicode_to_token(parts[1])))
        except KeyError as err:
            raise ValueError(f"{where}: model.merges[{number}] has {err}, not a character of GPT-2's byte table. "
                             f"{FIX}") from None
        ranks[pairs[-1][0] + pairs[-1][1]] = vocab[merged]
    stray = [text for text in vocab if text not in made and not (len(text) == 1 and text in UNICODE_TO_BYTE)]
    if stray:
        raise ValueError(f"{where}: model.vocab has {len(stray)} token(s) that are neither a byte nor made by a "
                         f"merge, nor in added_tokens (e.g. {reprlib.repr(stray[0])}): BPE could never produce "
                         f"them. {FIX}")
    return ranks, pairs
