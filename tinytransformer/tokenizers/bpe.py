"""Byte-level BPE: text <-> integer ids, as in GPT-2, minbpe and tiktoken.

A byte-level BPE tokenizer (byte-pair encoding, as in GPT-2, minbpe and tiktoken) starts from the 256
byte values, so it can encode any text at all, and learns merges of frequent neighbouring tokens into
longer ones (" the", "ing", "\\n\\n"), so a text becomes fewer, longer tokens: a model's context of
block_size tokens then covers more text. GPT-2 has 256 bytes + 50,000 merges + ``<|endoftext|>`` =
50,257 tokens.

Learning the merges is bpe_train.py; this file applies them (encode; bpe_merge.py is the fast merge
loop), undoes them (decode), and writes and reads the vocabulary: as a JSON-able dict
(``to_dict``/``from_dict``) that a checkpoint holds, and in GPT-2's vocab.json + merges.txt, whose byte
strings are written in GPT-2's printable form. What is read from a file is checked before it is used.
"""
from __future__ import annotations

import json
import reprlib                        # repr, shortened: for values in error messages
from collections import Counter
from pathlib import Path

# Tokenizers run on the host: ids are built in Python lists and handed over as NumPy arrays.
import numpy

from .. import backend
from ..files import strict_json_loads, write_text_atomically
from .bpe_merge import bpe_merge
from .bpe_train import train_merges, train_merges_naive

# GPT-2's pre-tokenization split (its encoder.py): contractions, runs of letters, runs of digits, runs
# of other symbols, each optionally with one leading space, and whitespace. A merge never crosses a
# boundary between these pieces, so "dog." and "dog!" share the token " dog". \p{L} (any letter) and
# \p{N} (any digit) are Unicode classes that Python's re lacks; the `regex` package has them.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
# The split patterns a tokenizer read from a file may use. A pattern is a program: on "aaa...a!" a crafted
# one such as (a|a)+$ takes twice as long for each "a" more (2 s for 22), so a file cannot bring its own.
KNOWN_PATTERNS = {"GPT2_PATTERN": GPT2_PATTERN}


# --- GPT-2's printable form of bytes ----------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table byte -> printable character, used to write byte strings in vocab.json/merges.txt.

    The 188 bytes that are printable characters in Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
    themselves; the 68 others (control characters, space, ...) are shifted to chr(256), chr(257), ...
    in byte order. So the space byte is written 'Ġ' (chr(288)) and newline 'Ċ': " the" is "Ġthe".
    """
    printable = ([*range(ord("!"), ord("~") + 1)] + [*range(ord("¡"), ord("¬") + 1)]
                 + [*range(ord("®"), ord("ÿ") + 1)])
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_TO_UNICODE = bytes_to_unicode()
UNICODE_TO_BYTE = {ch: b for b, ch in BYTE_TO_UNICODE.items()}


def token_to_unicode(token: bytes) -> str:
    """b' the' -> 'Ġthe': a token's bytes in GPT-2's printable form."""
    return "".join(BYTE_TO_UNICODE[b] for b in token)


def unicode_to_token(text: str) -> bytes:
    """'Ġthe' -> b' the'; a KeyError for a character that is not in GPT-2's table."""
    return bytes(UNICODE_TO_BYTE[ch] for ch in text)


def _compile(pattern: str):
    try:
        import regex
    except ImportError:
        raise ImportError("BPETokenizer needs the `regex` package for its split pattern (\\p{L}, \\p{N}): "
                          "pip install regex (it is in tinytransformer's install_requires).") from None
    return regex.compile(pattern)


def check_ids(named_ids, where: str, fix: str = "") -> None:
    """Token ids must be the integers 0, 1, ..., V-1, each given once, for V tokens (special tokens
    included): the rows of a model's embedding. `named_ids`: (what the token is called, its id) pairs.

    Checked before the id -> token table of V entries is made: one id of 2·10⁹ in a file is then an
    error, not a 16 GB list. Ids in 0..V-1 that are all distinct are all of 0..V-1, so no hole is left."""
    named_ids, owner = list(named_ids), {}                               # owner: id -> the token that has it
    for name, i in named_ids:
        # bool is an int to Python (True == 1) but no id; nor are 3.0, "3", NaN or Infinity.
        if not isinstance(i, (int, numpy.integer)) or isinstance(i, bool):
            problem = f"the id {reprlib.repr(i)} (a {type(i).__name__}); token ids are integers"
        elif not 0 <= i < len(named_ids):
            problem = (f"the id {i}, but the {len(named_ids)} tokens (special tokens included) must have the "
                       f"ids 0..{len(named_ids) - 1}, each once")
        elif i in owner:
            problem = f"the id {i}, as {owner[i]} has; each token needs its own"
        else:
            owner[i] = name
            continue
        raise ValueError(f"{where}: {name} has {problem}. {fix}".rstrip())


# --- the tokenizer ------------------------------------------------------------------------------------

class BPETokenizer:
    """Byte-level BPE: text -> UTF-8 bytes -> pre-tokens -> merged byte strings -> ids, and back.

    The vocabulary is ``ranks``: byte string -> id. It holds the 256 single bytes and every merged byte
    string; a token's id is also its rank, the order in which its merge was learned (for a tokenizer
    trained here: ids 0..255 are the bytes, and each merge takes the next id). Special tokens
    (``<|endoftext|>``) have ids after all of these and are never produced by merging.

    Encoding, as tiktoken does it:
      1. split the text with the pattern (GPT-2's by default) into pre-tokens, e.g. "Hello world!" ->
         ["Hello", " world", "!"];
      2. in each pre-token, start from its single bytes, and repeatedly merge the adjacent pair whose
         merged bytes have the lowest rank (the earliest merge learned; the leftmost such pair on ties),
         until no adjacent pair is in the vocabulary;
      3. the ids of the resulting tokens, one pre-token after the other.
    Step 2 depends only on the pre-token, so its result is cached (as GPT-2's encoder does): a corpus has
    far fewer distinct words than words (the cache grows with the distinct pre-tokens seen; clear_cache()
    empties it). Decoding joins the tokens' bytes, so any byte string round-trips.
    """

    def __init__(self, ranks: dict[bytes, int], pattern: str = GPT2_PATTERN,
                 special_tokens: dict[str, int] | None = None):
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.special_tokens = dict(special_tokens or {})
        missing = [b for b in range(256) if bytes([b]) not in self.ranks]
        if missing:
            raise ValueError(f"A byte-level BPE vocabulary must hold all 256 single bytes; {len(missing)} are "
                             f"missing (e.g. {bytes(missing[:5])!r}), so some texts could not be encoded.")
        check_ids([(f"the token {reprlib.repr(token)}", i) for token, i in self.ranks.items()]
                  + [(f"the special token {reprlib.repr(name)}", i) for name, i in self.special_tokens.items()],
                  "BPETokenizer")
        self._split = _compile(pattern)
        table = {i: token for token, i in self.ranks.items()} | \
            {i: name.encode("utf-8") for name, i in self.special_tokens.items()}
        self._id_to_bytes = [table[i] for i in range(len(table))]       # id -> bytes (the ids are 0..V-1)
        self._cache: dict[str, list[int]] = {}                   # pre-token -> its ids

    @property
    def vocab_size(self) -> int:
        """Rows a model's embedding needs: the number of tokens, special tokens included (ids 0..V-1)."""
        return len(self._id_to_bytes)

    # --- training -------------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = GPT2_PATTERN, special_tokens=None, log=None,
              naive: bool = False) -> "BPETokenizer":
        """Learn merges on `text` until the vocabulary has `vocab_size` tokens, special tokens included.

        special_tokens: names, given the last ids; None means GPT-2's ``<|endoftext|>``, () none. They are
        cut out of the text before training, so they are never merged with their neighbours.
        log: e.g. print, to see some of the merges as they are learned.
        naive: use the plain loop that rescans the text every merge (the same result, slowly).

        Pre-tokens are counted once (Counter of the pieces of the split); merging then works on the
        distinct pre-tokens, each weighted by its count: a pair inside " the" counts as often as " the"
        occurs."""
        special_tokens = [ENDOFTEXT] if special_tokens is None else list(special_tokens)
        n_tokens = vocab_size - len(special_tokens)
        if n_tokens < 256:
            raise ValueError(f"vocab_size {vocab_size} is too small: a byte-level BPE needs the 256 bytes "
                             f"plus {len(special_tokens)} special token(s). Use at least "
                             f"{256 + len(special_tokens)}.")
        split = _compile(pattern)
        pieces = _split_on_specials(text, special_tokens)[0::2]       # the ordinary text between specials
        word_counts = Counter()
        for piece in pieces:
            word_counts.update(split.findall(piece))
        word_counts = {_to_bytes(word): count for word, count in word_counts.items()}
        merges = (train_merges_naive(word_counts, n_tokens) if naive
                  else train_merges(word_counts, n_tokens, log=log))
        vocab = [bytes([b]) for b in range(256)]
        for (left, right), new_id in merges:
            if new_id == len(vocab):
                vocab.append(vocab[left] + vocab[right])
        ranks = {token: i for i, token in enumerate(vocab)}
        return cls(ranks, pattern, {name: n_tokens + k for k, name in enumerate(special_tokens)})

    # --- encoding -------------------------------------------------------------------------------------
    def _bpe(self, token: bytes, max_rank: int | None = None) -> list[bytes]:
        """Step 2 of encoding: merge the lowest-ranked adjacent pair until none is in the vocabulary.

        With max_rank, only merges of rank below it are used (to find the pair a token was made of).
        This plain loop rescans every pair after each merge: n² on a long pre-token. Encoding uses
        bpe_merge (bpe_merge.py), the same result in n log n; a test holds the two equal."""
        parts = [token[i:i + 1] for i in range(len(token))]
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                rank = self.ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best_rank is None or rank < best_rank) \
                        and (max_rank is None or rank < max_rank):
                    best, best_rank = i, rank
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        return parts

    def encode_ordinary(self, text: str) -> numpy.ndarray:
        """Encode `text` as plain text: a special token's name in it is encoded like any other text."""
        ids = []
        for piece in self._split.findall(text):
            cached = self._cache.get(piece)
            if cached is None:
                cached = [self.ranks[part] for part in bpe_merge(_to_bytes(piece), self.ranks)]
                self._cache[piece] = cached
            ids.extend(cached)
        return numpy.array(ids, dtype=numpy.int64)

    def encode(self, text: str, allowed_special="none_raise") -> numpy.ndarray:
        """Encode `text` to ids (a NumPy int64 array).

        allowed_special says what a special token's name in the text means:
          "none_raise" (default): it is an error (text from a user should not smuggle in an end of text);
          "all": every special token is encoded as its id; a set of names: those are, and any other is an
          error; "none": no special token, the names are encoded as ordinary text (= encode_ordinary)."""
        if allowed_special == "none":
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special == "none_raise":
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset, list, tuple)):
            allowed = set(allowed_special)
            unknown = sorted(allowed - set(self.special_tokens))
            if unknown:
                raise ValueError(f"allowed_special names {unknown}, which are not special tokens of this "
                                 f"tokenizer; it has {sorted(self.special_tokens)}.")
        else:
            raise ValueError(f"allowed_special must be 'none_raise', 'all', 'none' or a set of special "
                             f"token names, not {allowed_special!r}.")
        refused = sorted(name for name in set(self.special_tokens) - allowed if name in text)
        if refused:
            raise ValueError(f"The text contains the special token {refused[0]!r}, which is not allowed here. "
                             "Pass allowed_special='all' (or a set naming it) to encode it as the special token, "
                             "or use encode_ordinary(text) to encode it as plain text.")
        if not allowed:
            return self.encode_ordinary(text)
        pieces = _split_on_specials(text, allowed)
        parts = [self.encode_ordinary(piece) if k % 2 == 0 else numpy.array([self.special_tokens[piece]])
                 for k, piece in enumerate(pieces)]
        return numpy.concatenate(parts).astype(numpy.int64)

    def encode_bytes(self, data: bytes) -> numpy.ndarray:
        """Encode any byte string, invalid UTF-8 included, as ordinary text.

        The bytes are read as UTF-8 with Python's "surrogateescape": each byte that is not valid UTF-8
        becomes a stand-in character (U+DC80..U+DCFF), which the split pattern keeps as a symbol and
        which turns back into exactly that byte. So decode_bytes(encode_bytes(data)) == data."""
        return self.encode_ordinary(bytes(data).decode("utf-8", errors="surrogateescape"))

    def clear_cache(self) -> None:
        """Forget the cached pre-tokens (to time encoding from cold, as a first encode of a text runs)."""
        self._cache.clear()

    # --- decoding -------------------------------------------------------------------------------------
    def decode_bytes(self, ids) -> bytes:
        """The bytes of the tokens, joined. An id outside the vocabulary is an error that names it."""
        ids = backend.to_numpy(ids).reshape(-1)
        if ids.size and not numpy.issubdtype(ids.dtype, numpy.integer):
            raise ValueError(f"Token ids must be integers, not {ids.dtype}.")
        ids, table = ids.tolist(), self._id_to_bytes
        unknown = next((i for i in ids if not 0 <= i < len(table)), None)
        if unknown is not None:
            raise ValueError(f"Token id {unknown} is not in this tokenizer's vocabulary (ids 0..{len(table) - 1}). "
                             "The ids come from another tokenizer, or from a model whose vocab_size is larger: "
                             "decode them with the tokenizer that model was trained with.")
        return b"".join([table[i] for i in ids])

    def decode(self, ids) -> str:
        """The text of the ids; bytes that are not valid UTF-8 (e.g. a character cut in the middle by
        the end of a sample) become U+FFFD, as in GPT-2."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token."""
        return self.decode_bytes([token_id])

    # --- as a dict, a file, and GPT-2's files ---------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able: the tokens in GPT-2's printable form (as in vocab.json), the pattern, the specials."""
        return {"kind": "bpe", "pattern": self.pattern,
                "vocab": {token_to_unicode(token): i for token, i in sorted(self.ranks.items(), key=lambda t: t[1])},
                "special_tokens": dict(self.special_tokens)}

    @classmethod
    def from_dict(cls, state: dict, source: str = "the tokenizer description",
                  trusted_pattern: str | None = None) -> "BPETokenizer":
        """The tokenizer of a to_dict() (e.g. a checkpoint's), each field checked before it is used.

        source: where `state` was read, for the error messages (load passes the file). Its split pattern
        must be one of KNOWN_PATTERNS: a file's pattern is not compiled, since a crafted one can take
        hours on a line of text. trusted_pattern: a pattern of your own that you trust, to load a
        tokenizer trained with it (a Python caller may give BPETokenizer any pattern)."""
        if not isinstance(state, dict) or state.get("kind") != "bpe":
            found = "no tokenizer" if state is None else f"a tokenizer of kind {state.get('kind')!r}" \
                if isinstance(state, dict) else reprlib.repr(state)
            raise ValueError(f"Not a BPE tokenizer ({found}): BPETokenizer.to_dict() makes one.")
        damaged, fix = f"A damaged BPE tokenizer description ({source})", \
            "Make it with BPETokenizer.to_dict() or save()."
        for field in ("vocab", "special_tokens"):
            if not isinstance(state.get(field), dict) or not all(isinstance(k, str) for k in state[field]):
                found = "missing" if field not in state else f"{reprlib.repr(state[field])}, not a dict with string keys"
                raise ValueError(f"{damaged}: its {field!r} is {found}. It needs 'vocab' (GPT-2-style token -> "
                                 f"id), 'pattern' and 'special_tokens' (name -> id). {fix}")
        check_ids([(f"the 'vocab' entry {reprlib.repr(text)}", i) for text, i in state["vocab"].items()]
                  + [(f"the 'special_tokens' entry {reprlib.repr(name)}", i)
                     for name, i in state["special_tokens"].items()], damaged, fix)
        pattern = state.get("pattern")
        if pattern not in KNOWN_PATTERNS.values() and (trusted_pattern is None or pattern != trusted_pattern):
            raise ValueError(f"{source}: its 'pattern' {reprlib.repr(pattern)} is not one of tinytransformer's split "
                             f"patterns ({', '.join(KNOWN_PATTERNS)}); a pattern from a file could hang encoding (e.g. "
                             "(a|a)+$). If you wrote it and trust it, pass it as trusted_pattern= to "
                             "BPETokenizer.from_dict(state, ...) or BPETokenizer.load(path, ...).")
        try:
            ranks = {unicode_to_token(text): i for text, i in state["vocab"].items()}
        except KeyError as err:
            raise ValueError(f"{damaged}: 'vocab' has {err}, not a character of GPT-2's byte table. {fix}") from None
        return cls(ranks, pattern, state["special_tokens"])

    def save(self, path) -> None:
        """Write to_dict() as JSON, atomically (a temporary file renamed over the target)."""
        write_text_atomically(Path(path), json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path, trusted_pattern: str | None = None) -> "BPETokenizer":
        """A tokenizer written by save(); trusted_pattern as in from_dict."""
        try:
            state = strict_json_loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:            # (UnicodeDecodeError is a ValueError)
            raise ValueError(f"Cannot read a BPE tokenizer from {path} ({err}). Pass a file written by "
                             "BPETokenizer.save(); for GPT-2's vocab.json + merges.txt use "
                             "BPETokenizer.from_gpt2_files().") from None
        return cls.from_dict(state, source=str(path), trusted_pattern=trusted_pattern)

    def merges(self) -> list[tuple[bytes, bytes]]:
        """The merges in rank order, as (left bytes, right bytes): merges.txt's lines.

        A token's pair is found by encoding its own bytes with only the merges ranked before it (the
        way tiktoken's vocabularies are converted to merges.txt); for a vocabulary learned by BPE that
        leaves exactly two parts."""
        pairs = []
        for token, rank in sorted(self.ranks.items(), key=lambda item: item[1]):
            if len(token) == 1:
                continue
            parts = bpe_merge(token, self.ranks, max_rank=rank)
            if len(parts) != 2:
                raise ValueError(f"Token {rank} ({token!r}) is not the merge of two earlier tokens, so this "
                                 "vocabulary cannot be written as BPE merges.")
            pairs.append((parts[0], parts[1]))
        return pairs

    def to_gpt2_files(self, folder) -> tuple[Path, Path]:
        """Write GPT-2's format into `folder`: vocab.json (token -> id) and merges.txt (one merge a line,
        highest priority first); Hugging Face's `tokenizers` and `transformers` read these."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab = self.to_dict()["vocab"]
        vocab.update(self.special_tokens)
        lines = ["#version: 0.2"] + [f"{token_to_unicode(a)} {token_to_unicode(b)}" for a, b in self.merges()]
        vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
        write_text_atomically(vocab_path, json.dumps(vocab, ensure_ascii=False))
        write_text_atomically(merges_path, "\n".join(lines) + "\n")
        return vocab_path, merges_path

    @classmethod
    def from_gpt2_files(cls, vocab_json, merges_txt, pattern: str = GPT2_PATTERN) -> "BPETokenizer":
        """GPT-2's tokenizer from its files: `vocab.json` + `merges.txt` (Hugging Face's names), or the
        same contents as OpenAI's `encoder.json` + `vocab.bpe`.

        vocab.json maps each token, written in GPT-2's printable form (bytes_to_unicode), to its id;
        merges.txt lists the merges, one "left right" pair a line, in priority order. The id of a merged
        token must grow with its line (in GPT-2 it is 256 + the line number), so that the id is the rank.
        Entries of vocab.json that are neither single bytes nor made by a merge are special tokens
        (GPT-2 has one: <|endoftext|> = 50256)."""
        fix = ("Get GPT-2's files again (vocab.json and merges.txt of https://huggingface.co/openai-community/gpt2), "
               "or pass a vocab.json and "
               "merges.txt written together (e.g. by BPETokenizer.to_gpt2_files).")
        try:
            vocab = strict_json_loads(Path(vocab_json).read_text(encoding="utf-8"))   # a token twice: refused
        except (OSError, ValueError) as err:            # (UnicodeDecodeError is a ValueError)
            raise ValueError(f"Cannot read the vocabulary {vocab_json}: {err}. {fix}") from None
        if not isinstance(vocab, dict):
            raise ValueError(f"{vocab_json} is not a vocabulary: it must be a JSON object token -> integer id. {fix}")
        check_ids([(f"the entry {reprlib.repr(text)}", i) for text, i in vocab.items()],
                  f"{vocab_json} is not a vocabulary", fix)
        try:
            lines = Path(merges_txt).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"Cannot read the merges {merges_txt}: {err}. {fix}") from None
        made = {text for text in vocab if len(text) == 1 and text in UNICODE_TO_BYTE}   # the bytes, then merges
        ranks, previous = {bytes([UNICODE_TO_BYTE[text]]): vocab[text] for text in made}, -1
        if len(ranks) < 256:
            raise ValueError(f"{vocab_json} holds {len(ranks)} of the 256 single bytes (in GPT-2's printable "
                             f"form): it is not a byte-level BPE vocabulary. {fix}")
        for number, line in enumerate(lines, start=1):
            if line.startswith("#version") or not line.strip():
                continue
            parts, merged = line.split(" "), line.replace(" ", "")
            unknown = [part for part in parts if part not in vocab]      # a merge joins two tokens
            problem = ("is not two tokens separated by one space" if len(parts) != 2 else
                       f"merges {unknown[0]!r}, which is not in {vocab_json}" if unknown else
                       f"merges into {merged!r}, which is not in {vocab_json}" if merged not in vocab else None)
            if problem:
                raise ValueError(f"{merges_txt}, line {number} ({reprlib.repr(line)}) {problem}. {fix}")
            if vocab[merged] <= previous:
                raise ValueError(f"{merges_txt}, line {number}: the id of {merged!r} ({vocab[merged]}) is not larger "
                                 f"than the previous merge's ({previous}): ids must follow the order of the merges, "
                                 f"since a merge's id is its rank. {fix}")
            previous = vocab[merged]
            try:
                ranks[unicode_to_token(merged)] = vocab[merged]
            except KeyError as err:
                raise ValueError(f"{merges_txt}, line {number}: {err} is not a character of GPT-2's byte table. "
                                 f"{fix}") from None
            made.add(merged)
        return cls(ranks, pattern, {text: i for text, i in vocab.items() if text not in made})

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.ranks) - 256}, "
                f"special_tokens={sorted(self.special_tokens)})")


def _to_bytes(text: str) -> bytes:
    """UTF-8 bytes of a piece of text; "surrogateescape" turns encode_bytes' stand-ins back into bytes."""
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError as err:
        raise ValueError(f"The text holds {text[err.start]!r} at position {err.start} of {text!r}: a lone "
                         "surrogate is not a character and has no UTF-8 bytes. Remove it, or encode the raw "
                         "bytes with encode_bytes().") from None


def _split_on_specials(text: str, specials) -> list[str]:
    """[ordinary, special, ordinary, special, ..., ordinary]: even places are text, odd places specials."""
    if not specials:
        return [text]
    import regex
    # Longest first, so that a special token containing another is matched whole.
    alternatives = "|".join(regex.escape(name) for name in sorted(specials, key=len, reverse=True))
    return regex.split(f"({alternatives})", text)
