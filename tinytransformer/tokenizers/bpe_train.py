"""Learning a byte-level BPE: the merge loop, plain (minbpe's) and incremental, with the same merges.

Start from the 256 byte values; count every adjacent pair of tokens in the training text's pre-tokens;
merge the most frequent pair into a new token; repeat until the vocabulary has the size asked for.
``bpe.BPETokenizer.train`` splits the text and calls ``train_merges``.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, scanning left to right, by `new_id`.

    Occurrences do not overlap: (a, a) in [a, a, a] gives [new, a]."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _best_pair(counts: dict) -> tuple[int, int]:
    """The pair to merge next: the most frequent; among equally frequent ones, the smallest (first id,
    then second id). A fixed rule, so training never depends on the order a dict was filled in."""
    return min(counts, key=lambda pair: (-counts[pair], pair))


def _merged_id(pair, vocab: list[bytes], known: dict[bytes, int]) -> int:
    """The id of the token `pair` merges into: a new id, unless its bytes are already a token.

    Two different pairs can spell the same bytes ((b"a", b"bc") and (b"ab", b"c")); rank-based encoding
    (tiktoken's, and ours) knows a token by its bytes, so the second such pair reuses the first's id and
    the vocabulary does not grow."""
    token = vocab[pair[0]] + vocab[pair[1]]
    if token not in known:
        known[token] = len(vocab)
        vocab.append(token)
    return known[token]


def train_merges_naive(word_counts: dict[bytes, int], n_tokens: int) -> list[tuple[tuple[int, int], int]]:
    """The plain merge loop (minbpe's): grow a byte vocabulary of 256 tokens to `n_tokens` tokens.

    `word_counts` maps each pre-token (a piece of text from the split pattern, as bytes) to how often it
    occurs. Each round counts every adjacent pair of tokens in every word (weighted by its count), merges
    the best pair (see ``_best_pair``) everywhere into one token, and repeats. Returns the merges in order,
    as ((left id, right id), merged id). Every round rescans all words: simple, and slow on a big corpus;
    ``train_merges`` gives the same merges incrementally, and a test holds the two equal."""
    words = [list(word) for word in word_counts]                # each byte is its own first token id
    freqs = list(word_counts.values())
    vocab = [bytes([b]) for b in range(256)]
    known = {token: i for i, token in enumerate(vocab)}
    merges = []
    while len(vocab) < n_tokens:
        counts = Counter()
        for word, freq in zip(words, freqs):
            for pair in zip(word, word[1:]):
                counts[pair] += freq
        if not counts:
            raise _too_few_pairs(len(vocab), n_tokens)
        pair = _best_pair(counts)
        new_id = _merged_id(pair, vocab, known)
        words = [merge_pair(word, pair, new_id) for word in words]
        merges.append((pair, new_id))
    return merges


def train_merges(word_counts: dict[bytes, int], n_tokens: int, log=None) -> list[tuple[tuple[int, int], int]]:
    """The merge loop of ``train_merges_naive``, made fast: the same merges, in the same order.

    Instead of recounting every pair of every word each round, it keeps
      counts[pair]  how often the pair occurs in the corpus now (each word weighted by its frequency),
      where[pair]   the words it may occur in,
      heap          (-count, pair) entries, so the best pair is found without scanning all pairs.
    Merging a pair changes only the words that contain it: for each, the counts of its old pairs are
    subtracted and those of its new pairs added, so `counts` always equals a full recount, which is
    exactly what the naive loop computes. Entries of the heap whose count is no longer current are
    skipped when they come up (lazy deletion); the heap orders equal counts by the smaller pair, the same
    tie-break as ``_best_pair``."""
    words = [list(word) for word in word_counts]
    freqs = list(word_counts.values())
    vocab = [bytes([b]) for b in range(256)]
    known = {token: i for i, token in enumerate(vocab)}
    counts, where = Counter(), defaultdict(set)
    for index, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            counts[pair] += freq
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)
    merges = []
    n_merges = n_tokens - len(vocab)
    while len(vocab) < n_tokens:
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:   # out of date: skip it
            heapq.heappop(heap)
        if not heap:
            raise _too_few_pairs(len(vocab), n_tokens)
        neg_count, pair = heapq.heappop(heap)
        new_id = _merged_id(pair, vocab, known)
        changed = set()
        for index in where.pop(pair):
            word = words[index]
            merged = merge_pair(word, pair, new_id)
            if len(merged) == len(word):       # `where` may list a word that lost the pair earlier
                continue
            freq = freqs[index]
            for old in zip(word, word[1:]):
                counts[old] -= freq
                changed.add(old)
            for new in zip(merged, merged[1:]):
                counts[new] += freq
                where[new].add(index)
                changed.add(new)
            words[index] = merged
        for other in changed:
            if counts[other] > 0:
                heapq.heappush(heap, (-counts[other], other))
            else:
                del counts[other]              # the merged pair itself ends here: all its occurrences are gone
        merges.append((pair, new_id))
        if log is not None and (len(merges) <= 5 or len(merges) % max(1, n_merges // 10) == 0):
            log(f"merge {len(merges)}/{n_merges}: {pair} -> {new_id} {vocab[new_id]!r} "
                f"({-neg_count:,} occurrences)")
    return merges


def _too_few_pairs(n_now: int, n_wanted: int) -> ValueError:
    return ValueError(f"The training text has no adjacent pair of tokens left to merge after "
                      f"{n_now - 256} merges ({n_now} tokens), so it cannot reach {n_wanted} tokens: use a "
                      f"longer text or a vocab_size of at most {n_now} plus the special tokens.")
