"""BPE merging of one pre-token in n log n steps: the same tokens as the plain loop, found faster.

``BPETokenizer._bpe`` is the plain loop: scan every adjacent pair, merge the one with the lowest rank
(the leftmost one on ties), and scan again. A scan costs n and a pre-token of n bytes can need n - 1
merges, so a long pre-token costs n²: 8,000 copies of "e" (one pre-token, a run of letters) take
about 4 s, and twice as many take four times as long: a megabyte, some 17 hours. ``bpe_merge`` gives
exactly the same parts in O(n log n):

  * The parts form a doubly linked list over the byte positions: the part that starts at byte i is
    ``parts[i]``, its neighbours start at ``next_[i]`` and ``prev[i]``. Merging part i with the part
    after it takes O(1): part i grows and its right neighbour is unlinked (``parts[j] = None``). A
    part keeps the position of its first byte, so positions keep the parts' order.
  * A heap (priority queue) holds the candidate merges as (rank, position) and gives the smallest
    first: the lowest rank and, among equal ranks, the leftmost position, as the plain loop chooses.
  * A merge changes only the pairs it touches: the new part with its left neighbour and with its right
    neighbour. Those two are pushed as new candidates. The pairs the merge destroyed are not searched
    for in the heap (that would cost n); they stay in it, stale, and are skipped when they come out:
    an entry is used only if the pair now at its position still merges into a token of its rank.

Why this is the plain loop: every pair adjacent now has an entry in the heap (it was pushed when it
was formed), and an entry is used only if it describes a pair adjacent now, so the first entry used is
the smallest (rank, position) of the pairs adjacent now: the plain loop's choice. In a run "eeee" the
entries for positions 0, 1 and 2 tie on rank; 0 comes out first, and after that merge the entry for 1
is stale (byte 1 now belongs to part 0), so 2 is merged next: "ee" "ee", as the plain loop gives.
Each merge pushes at most two entries, so the heap sees fewer than 3n, each pushed and popped in
O(log n): O(n log n) in all.
"""
from __future__ import annotations

import heapq


def bpe_merge(token: bytes, ranks: dict[bytes, int], max_rank: int | None = None) -> list[bytes]:
    """The parts of `token` after merging, by `ranks` (byte string -> rank), the lowest-ranked adjacent
    pair (the leftmost on ties) until no adjacent pair is in `ranks`: BPETokenizer._bpe's result.

    With max_rank, only merges of rank below it are used (to find the pair a token was made of)."""
    if max_rank is None:
        rank_of = ranks.get                   # pair bytes -> rank, or None: a plain look-up, the common case
    else:
        def rank_of(pair: bytes) -> int | None:
            rank = ranks.get(pair)
            return rank if rank is not None and rank < max_rank else None

    n = len(token)
    parts: list[bytes | None] = [token[i:i + 1] for i in range(n)]   # None: merged into the part before it
    next_ = list(range(1, n + 1))                                     # n: no part after it
    prev = list(range(-1, n - 1))                                     # -1: no part before it
    heap = [(rank, i) for i in range(n - 1) if (rank := rank_of(parts[i] + parts[i + 1])) is not None]
    heapq.heapify(heap)                                               # O(n), cheaper than n pushes
    while heap:
        rank, i = heapq.heappop(heap)
        j = next_[i]
        if parts[i] is None or j == n or rank_of(parts[i] + parts[j]) != rank:
            continue            # stale: a merge since it was pushed took part i, or changed its pair
        parts[i], parts[j] = parts[i] + parts[j], None                # part j joins part i ...
        next_[i] = after = next_[j]                                   # ... and leaves the list
        if after != n:
            prev[after] = i
            if (new_rank := rank_of(parts[i] + parts[after])) is not None:    # the new pair on the right
                heapq.heappush(heap, (new_rank, i))
        before = prev[i]
        if before != -1 and (new_rank := rank_of(parts[before] + parts[i])) is not None:   # and on the left
            heapq.heappush(heap, (new_rank, before))
    return [part for part in parts if part is not None]
