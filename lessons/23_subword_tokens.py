# %% [markdown]
"""Lesson 23: tokens beyond characters: byte-level BPE, as GPT-2 reads text.

Our Shakespeare model reads characters: 65 of them, one token per character. GPT-2 reads 50,257
sub-word tokens: " the", "ing", " King", "\\n\\n". They come from byte-pair encoding (BPE): start from the
256 byte values (so any text at all can be encoded) and repeatedly merge the most frequent pair of
neighbouring tokens into a new token. This lesson trains a BPE on Tiny Shakespeare with
tinytransformer.tokenizers.BPETokenizer, watches the first merges, measures how much shorter the text
becomes and what that means for a model's context of block_size tokens, and shows how GPT-2's own
vocabulary splits a few words (when its files are there; otherwise it says how to get them).

With --quick the tokenizer learns from 200,000 characters up to 512 tokens; the full run learns from
the whole training split up to 2,048 tokens.

Run:  python lessons/23_subword_tokens.py        (add --no-pause to run straight through)
"""

# %%
from collections import Counter

import numpy as np
import regex
from _lesson import Lesson

from tinytransformer.data import find_shakespeare
from tinytransformer.tokenizers import (GPT2_PATTERN, BPETokenizer, gpt2_tokenizer, gpt2_vocab_paths,
                                        token_to_unicode)
from tinytransformer.tokenizers.bpe_merge import bpe_merge

lesson = Lesson("23 Tokens beyond characters", __doc__, steps=7)
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


# %%
lesson.step("Bytes: 256 symbols that spell every text", """
    UTF-8 writes every character as 1 to 4 bytes: English letters as one, 'é' as two, '日' as three, an
    emoji as four. A tokenizer whose first 256 tokens are the byte values can therefore encode any text,
    even one with characters it never saw; a character tokenizer cannot (lesson 01 refuses 'é'). A BPE with
    no merges at all is exactly that: one token per byte.""")
sample = "Romeo é 日 😀"
raw = sample.encode("utf-8")
print(f"  {sample!r}: {len(sample)} characters, {len(raw)} bytes: {list(raw)}")
bytes_only = BPETokenizer.train(train_text[:2000], vocab_size=257)     # 256 bytes + <|endoftext|>, no merges
lesson.check("with no merges, the tokens are the bytes", bytes_only.encode(sample).tolist() == list(raw))

# %%
lesson.step("Pre-tokens: where merges may happen", """
    Before merging, GPT-2 splits the text with a pattern into pieces: a word with the space before it,
    a run of digits, a run of punctuation, whitespace. Merges happen only inside a piece, so no token
    ever spans ' dog.' and ' dog!' differently, and a word keeps its leading space (' the' is a token, 'the'
    another). Training counts each distinct piece once, with how often it occurs.""")
pieces = regex.findall(GPT2_PATTERN, "  First Citizen:\nWe are accounted poor citizens, it's 1599!\n\n")
print("  " + " | ".join(repr(p) for p in pieces))
train_pieces = regex.findall(GPT2_PATTERN, train_text)
print(f"  the training text: {len(train_pieces):,} pieces, {len(set(train_pieces)):,} distinct")
lesson.check("the pieces put together are the text again", "".join(train_pieces) == train_text)

# %%
lesson.step("The merge loop", f"""
    Count every pair of neighbouring tokens inside the pieces (each piece weighted by how often it
    occurs), merge the most frequent pair everywhere into a new token with the next id, and repeat until
    the vocabulary has {VOCAB_SIZE} tokens. The pairs counted are pairs of tokens, so later merges join
    tokens made by earlier ones: ' t' + 'he' -> ' the'. Training counts the pairs once and then updates
    only the counts a merge changes (a plain loop that recounts everything gives the same merges, slowly).""")
tokenizer = BPETokenizer.train(train_text, vocab_size=VOCAB_SIZE)
merges = tokenizer.merges()                        # (left bytes, right bytes), in the order learned
print(f"  {tokenizer}: {len(merges)} merges learned from {len(train_text):,} characters")
for rank, (left, right) in enumerate(merges[:12], start=256):
    print(f"  {rank}: {show(left)!r:>8} + {show(right)!r:<8} -> {show(left + right)!r}")
print("  ... the last ones: " + ", ".join(repr(show(left + right)) for left, right in merges[-6:]))
pair_counts = Counter(piece[i:i + 2] for piece in train_pieces for i in range(len(piece) - 1))
most_frequent = max(pair_counts.values())
first = merges[0][0] + merges[0][1]
print(f"  counted separately: the most frequent pair occurs {most_frequent:,} times, "
      f"{show(first)!r} {pair_counts[first.decode()]:,} times")
lesson.check("the first merge is the most frequent neighbouring pair", pair_counts[first.decode()] == most_frequent)

# %%
lesson.step("Encode, decode, and a special token", """
    Encoding splits a new text into pieces and, in each, applies the learned merges in the order they
    were learned: start from the piece's bytes and merge the adjacent pair whose merged token has the
    lowest rank (the earliest merge learned), the leftmost such pair on ties, until no adjacent pair is a
    token (the merge loop, checked below on a few made-up vocabularies and on held-out text). Decoding
    joins the tokens' bytes. Text the tokenizer never saw round-trips, and so do characters it never saw
    (they fall back to bytes). '<|endoftext|>' is a special token: one id, never made by merging, that
    marks where one document ends; it is only read as such when asked for, so that a user's text cannot
    smuggle it in.""")
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
held_ids = tokenizer.encode(held_out)
lesson.check(f"held-out text ({len(held_out):,} characters) round-trips", tokenizer.decode(held_ids) == held_out)
unseen = "Señor Müller says: 你好 👋"
lesson.check("text with characters never seen round-trips", tokenizer.decode(tokenizer.encode(unseen)) == unseen)
eot = tokenizer.special_tokens["<|endoftext|>"]
with_eot = tokenizer.encode("Exeunt.<|endoftext|>ACT II", allowed_special="all")
print(f"  'Exeunt.<|endoftext|>ACT II' -> {with_eot.tolist()}  (<|endoftext|> = {eot})")
lesson.check("<|endoftext|> is one token, the last id", with_eot.tolist().count(eot) == 1 and eot == VOCAB_SIZE - 1)
try:
    tokenizer.encode("a user's <|endoftext|>")
    refused = False
except ValueError:
    refused = True
lesson.check("a special token in ordinary text is refused unless allowed", refused)

# %%
lesson.step("Shorter sequences: bytes per token against vocabulary size", """
    The merges learned first are a prefix of those learned later (training is greedy), so the
    tokenizer with the first k merges is the one training would have stopped at. Each size below encodes
    the held-out text. More merges, longer tokens, fewer of them; the price is a larger vocabulary: the
    model's embedding table and output layer have vocab_size rows.""")
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

# %%
lesson.step("The model's context, in characters", """
    A model sees block_size tokens at once. With characters that is block_size characters; with BPE
    tokens it is block_size times the characters per token, measured below on windows of the held-out
    text. Attention costs grow with the square of block_size (lesson 21): covering the same text with
    fewer tokens is cheaper than a longer context.""")
rng = np.random.default_rng(0)
for block_size in (64, 256):
    starts = rng.integers(0, len(held_ids) - block_size, size=200)
    covered = np.mean([len(tokenizer.decode(held_ids[s:s + block_size])) for s in starts])
    print(f"  block_size {block_size}: characters {block_size}, BPE tokens {covered:.0f} characters")
    lesson.check(f"{block_size} BPE tokens cover more than 1.5 x {block_size} characters", covered > 1.5 * block_size)
n_embd = 128
print(f"  the cost, at n_embd = {n_embd}: embedding table {65 * n_embd:,} parameters for characters, "
      f"{VOCAB_SIZE * n_embd:,} for {VOCAB_SIZE} tokens (and as many in the output layer unless tied)")

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
ax1.plot(SIZES, ratios, "o-", label="BPE, held-out text")
ax1.axhline(1.0, color="gray", ls="--", label="bytes (and characters) alone")
ax1.set_xscale("log", base=2)
ax1.set_xticks(SIZES, [str(size) for size in SIZES])
ax1.set_xlabel("vocab_size (<|endoftext|> included)")
ax1.set_ylabel("bytes per token")
ax1.set_title("more merges, longer tokens")
ax1.legend()
lengths = np.array([len(left + right) for left, right in merges])
ranks = np.arange(256, 256 + len(merges))
ax2.scatter(ranks, lengths, s=6, alpha=0.5, label="one merge")
window = max(10, len(merges) // 20)
ax2.plot(ranks[window - 1:], np.convolve(lengths, np.ones(window) / window, mode="valid"), color="tab:red",
         label=f"mean of the last {window}")
longest = 256 + int(np.argmax(lengths))
for rank in (256, longest, ranks[-1]):
    token = tokenizer.token_bytes(rank)
    ax2.annotate(repr(show(token)), (rank, len(token)), fontsize=9, xytext=(4, 4), textcoords="offset points")
ax2.set_xlabel("merge rank (id)")
ax2.set_ylabel("token length in bytes")
ax2.set_title("merges learned later make longer tokens")
ax2.legend(loc="upper center")
lesson.figure(fig, "23_bpe_merges_and_compression")

# %%
lesson.step("GPT-2's vocabulary", f"""
    GPT-2's tokenizer has 50,000 merges learned on web text, with the same bytes and split pattern. Its
    files are vocab.json (token -> id) and merges.txt (the merges in order); tinytransformer reads them
    from {gpt2_vocab_paths()[0].parent} (BPETokenizer.from_gpt2_files reads them from anywhere).""")
words = [" tokenization", " Shakespeare", " unbelievable", " citizens", " 2026", "Hello world"]
for word in words:
    print(f"  ours:  {word!r:>16} -> {spelled(tokenizer, tokenizer.encode(word))}")
try:
    gpt2 = gpt2_tokenizer()
except FileNotFoundError as missing:
    gpt2, how_to_get = None, str(missing)
if gpt2 is not None:
    for word in words:
        ids = gpt2.encode(word)
        print(f"  GPT-2: {word!r:>16} -> {spelled(gpt2, ids)}  {ids.tolist()}")
    lesson.check("GPT-2's vocabulary: 50,257 tokens, 'Hello world' = [15496, 995]",
                 gpt2.vocab_size == 50257 and gpt2.encode("Hello world").tolist() == [15496, 995])
else:
    print("  GPT-2's files are not here. " + how_to_get.replace("\n", "\n  "))
    lesson.check("the message says which files to fetch and where they go",
                 "vocab.json" in how_to_get and "merges.txt" in how_to_get
                 and str(gpt2_vocab_paths()[0].parent) in how_to_get)
# Colour one line by token: where BPE cuts the text (one cell per character).
shown_line = line[:60]
fig, ax = plt.subplots(figsize=(13, 1.4))
start = 0
for k, i in enumerate(tokenizer.encode(shown_line)):
    piece = tokenizer.token_bytes(i).decode("utf-8", errors="replace")
    ax.add_patch(plt.Rectangle((start, 0), len(piece), 1, fc=plt.cm.tab10(k % 10), alpha=0.35, ec="white", lw=2))
    for j, ch in enumerate(piece):
        ax.text(start + j + 0.5, 0.5, show(ch.encode()), family="monospace", fontsize=12, ha="center", va="center")
    start += len(piece)
ax.set_xlim(0, len(shown_line))
ax.set_ylim(0, 1)
ax.axis("off")
ax.set_title(f"{len(tokenizer.encode(shown_line))} tokens for {len(shown_line)} characters of held-out text "
             f"(vocab_size {VOCAB_SIZE})")
lesson.figure(fig, "23_a_line_in_tokens")

lesson.done()
