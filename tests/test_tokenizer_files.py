"""Tokenizers read from files that come from elsewhere are checked before anything is built from them.

A checkpoint's tokenizer dict (tokenizer_from_dict, BPETokenizer.from_dict/load, CharTokenizer.from_dict)
and GPT-2's vocab.json + merges.txt (BPETokenizer.from_gpt2_files): ids must be the integers 0..V-1,
each once; a merge joins two tokens of the vocabulary; the split pattern must be one the library knows
(a pattern is a program: a crafted one hangs encoding); a character tokenizer needs its characters, each
once. Every refusal is a ValueError that names the file or field, the value, and what was expected.
"""
import json

import pytest

from tinytransformer.tokenizers import (GPT2_PATTERN, KNOWN_PATTERNS, BPETokenizer, CharTokenizer,
                                        bytes_to_unicode, tokenizer_from_dict)

# A pattern that backtracks: on "aaa...a!" each "a" more doubles the time (seconds from about 22).
BACKTRACKING = r"(a|a)+$"


@pytest.fixture(scope="module")
def bpe():
    """A small BPE: 256 bytes, 4 merges, <|endoftext|> = 260."""
    return BPETokenizer.train("the cat sat on the mat " * 20, vocab_size=261)


def with_id(state, token, value):
    """A copy of bpe.to_dict() where `token` (a 'vocab' entry, or a special token) has the id `value`."""
    state = json.loads(json.dumps(state))
    field = "special_tokens" if token in state["special_tokens"] else "vocab"
    state[field][token] = value
    return state


# --- ids: integers 0..V-1, each once -----------------------------------------------------------------

@pytest.mark.parametrize("value", [True, 3.0, 1.5, "7", "Infinity", float("nan"), float("inf"), None],
                         ids=["bool", "float-3.0", "float", "string", "Infinity-string", "nan", "inf", "null"])
def test_a_checkpoint_id_that_is_not_an_integer_is_refused_by_name(bpe, value):
    """int() used to turn True, 3.0, 1.5 and "7" into ids (colliding with others) and fail on the rest."""
    for token, field in (("Ġthe", "'vocab'"), ("<|endoftext|>", "'special_tokens'")):
        with pytest.raises(ValueError) as err:
            tokenizer_from_dict(with_id(bpe.to_dict(), token, value), source="run/ckpt.safetensors")
        message = str(err.value)
        for needed in ("run/ckpt.safetensors", f"{field} entry {token!r}", f"has the id {value!r}",
                       "token ids are integers", "to_dict()"):
            assert needed in message


def test_json_nan_and_infinity_in_a_saved_tokenizer_are_refused_with_the_file(bpe, tmp_path):
    """Python's json reads the non-standard NaN and Infinity as floats; they are not ids."""
    for literal in ("NaN", "Infinity"):
        text = json.dumps(bpe.to_dict()).replace('"<|endoftext|>": 260', f'"<|endoftext|>": {literal}')
        assert literal in text
        (tmp_path / "bpe.json").write_text(text)
        with pytest.raises(ValueError, match=f"bpe.json.*'<\\|endoftext\\|>' has the id {literal.lower()[:3]}"):
            BPETokenizer.load(tmp_path / "bpe.json")


@pytest.mark.parametrize("value, expected", [
    (2_000_000_000, "has the id 2000000000, but the 261 tokens .* ids 0..260, each once"),
    (261, "has the id 261, but the 261 tokens"),                         # leaves a hole at 260
    (-1, "has the id -1, but"),
    (0, "'<\\|endoftext\\|>' has the id 0, as the 'vocab' entry 'Ā' has"),   # 'Ā' is the byte 0
], ids=["huge", "hole", "negative", "duplicate"])
def test_checkpoint_ids_must_be_0_to_V_minus_1_each_once(bpe, value, expected):
    """One id of 2·10⁹ used to make a table of 2·10⁹ entries (16 GB) before anything was checked."""
    with pytest.raises(ValueError, match=f"run/ckpt.safetensors\\).*{expected}"):
        BPETokenizer.from_dict(with_id(bpe.to_dict(), "<|endoftext|>", value), source="run/ckpt.safetensors")


def test_the_constructor_checks_ids_the_same_way():
    ranks = {bytes([b]): b for b in range(256)}
    BPETokenizer(ranks, special_tokens={"<|endoftext|>": 256})
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>' has the id 2000000000, but the 257"):
        BPETokenizer(ranks, special_tokens={"<|endoftext|>": 2_000_000_000})
    with pytest.raises(ValueError, match="has the id True .*bool.*integers"):
        BPETokenizer(ranks | {b"ab": True})


# --- the split pattern -------------------------------------------------------------------------------

def test_a_checkpoint_cannot_bring_its_own_split_pattern(bpe, tmp_path):
    """The pattern is refused before it is compiled: the backtracking one is never run."""
    state = bpe.to_dict() | {"pattern": BACKTRACKING}
    with pytest.raises(ValueError) as err:
        tokenizer_from_dict(state, source="run/ckpt.safetensors")
    message = str(err.value)
    for needed in ("run/ckpt.safetensors", "'pattern'", BACKTRACKING, "GPT2_PATTERN", "trusted_pattern="):
        assert needed in message
    (tmp_path / "bpe.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="bpe.json: its 'pattern' '.*' is not one of tinytransformer's"):
        BPETokenizer.load(tmp_path / "bpe.json")
    for pattern in (None, 7, "a" * 500):
        with pytest.raises(ValueError, match="'pattern'"):
            BPETokenizer.from_dict(bpe.to_dict() | {"pattern": pattern})
    long = str(pytest.raises(ValueError, BPETokenizer.from_dict, bpe.to_dict() | {"pattern": "a" * 500}).value)
    assert len(long) < 500                                                   # the value is shortened


def test_a_pattern_the_caller_trusts_is_accepted(bpe, tmp_path):
    """A Python caller may give the constructor any pattern, and load a file with a pattern it names."""
    mine = r"(?s).+"
    state = bpe.to_dict() | {"pattern": mine}
    assert BPETokenizer.from_dict(state, trusted_pattern=mine).pattern == mine
    (tmp_path / "bpe.json").write_text(json.dumps(state))
    assert BPETokenizer.load(tmp_path / "bpe.json", trusted_pattern=mine).encode("ab ab").tolist() == \
        BPETokenizer(bpe.ranks, mine).encode("ab ab").tolist()
    with pytest.raises(ValueError, match="'pattern'"):                   # trusting another does not help
        BPETokenizer.from_dict(state, trusted_pattern=GPT2_PATTERN + "|x")
    assert BPETokenizer.from_dict(bpe.to_dict()).pattern == GPT2_PATTERN == KNOWN_PATTERNS["GPT2_PATTERN"]


# --- GPT-2's vocab.json + merges.txt -------------------------------------------------------------------

def gpt2_like_files(folder, vocab_extra=None, merges=("Ġ t", "h e", "Ġt he")):
    """A miniature of GPT-2's files: the 256 bytes in table order, the merges, <|endoftext|> last."""
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    vocab.update(vocab_extra or {})
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"


@pytest.mark.parametrize("extra, expected", [
    ({"<|endoftext|>": True}, "'<\\|endoftext\\|>' has the id True \\(a bool\\)"),
    ({"<|endoftext|>": 2_000_000_000}, "'<\\|endoftext\\|>' has the id 2000000000, but the 260 tokens"),
    ({"<|endoftext|>": 300}, "has the id 300, but the 260 tokens .* ids 0..259, each once"),
    ({"<|endoftext|>": 5}, "has the id 5, as the entry '&' has"),
], ids=["bool", "huge", "hole", "duplicate"])
def test_vocab_json_ids_must_be_0_to_V_minus_1_each_once(tmp_path, extra, expected):
    vocab_path, merges_path = gpt2_like_files(tmp_path, extra)
    with pytest.raises(ValueError, match=f"vocab.json is not a vocabulary: .*{expected}") as err:
        BPETokenizer.from_gpt2_files(vocab_path, merges_path)
    assert "huggingface.co/openai-community/gpt2" in str(err.value)


def test_a_merge_of_a_token_that_is_not_in_vocab_json_is_refused(tmp_path):
    """'Ġt he' merges into 'Ġthe', which is in vocab.json, but 'he' is not: no line made it."""
    vocab_path, merges_path = gpt2_like_files(tmp_path, merges=("Ġ t", "Ġt he"))
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    assert "Ġthe" in vocab and "he" not in vocab
    with pytest.raises(ValueError, match="merges.txt, line 3 \\('Ġt he'\\) merges 'he', which is not in .*vocab.json"):
        BPETokenizer.from_gpt2_files(vocab_path, merges_path)


# --- a character tokenizer -----------------------------------------------------------------------------

@pytest.mark.parametrize("state, expected", [
    ({"kind": "char"}, "has no 'chars' \\(None\\)"),
    ({"kind": "char", "chars": ""}, "has no 'chars' \\(''\\)"),
    ({"kind": "char", "chars": "abca"}, "holds 'a' 2 times"),
    ({"kind": "char", "chars": ["a", "b", "a"]}, "holds 'a' 2 times"),
    ({"kind": "char", "chars": ["a", 7]}, "holds 7, which is not one character"),
    ({"kind": "char", "chars": ["a", "bc"]}, "holds 'bc', which is not one character"),
    ({"kind": "char", "chars": 12}, "its 'chars' is 12, not a string of characters"),
], ids=["missing", "empty", "duplicate", "duplicate-list", "not-a-string", "two-characters", "a-number"])
def test_a_damaged_character_tokenizer_is_refused_by_name(state, expected):
    with pytest.raises(ValueError, match=f"^run/ckpt.safetensors: .*{expected}.*to_dict\\(\\)"):
        tokenizer_from_dict(state, source="run/ckpt.safetensors")


def test_a_good_character_tokenizer_still_loads():
    assert CharTokenizer.from_dict({"kind": "char", "chars": "\n !abc"}).encode("cab").tolist() == [5, 3, 4]
    assert CharTokenizer.from_dict({"kind": "char", "chars": ["a", "b"]}).chars == "ab"
