"""Lesson 23's figures: compression against vocabulary size and the length of each merge; one line of text
coloured by token."""
import matplotlib.pyplot as plt
import numpy as np


def merges_and_compression(sizes, ratios, merges, token_bytes, show):
    """Left: bytes per token of the held-out text (`ratios`) against vocab_size (`sizes`). Right: the length
    in bytes of every merged token (`merges`: (left, right) bytes in the order learned, ids from 256), with
    a running mean, the first, the longest and the last one labelled (`token_bytes(id)`, shown by `show`)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    ax1.plot(sizes, ratios, "o-", label="BPE, held-out text")
    ax1.axhline(1.0, color="gray", ls="--", label="bytes (and characters) alone")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(sizes, [str(size) for size in sizes])
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
        token = token_bytes(rank)
        ax2.annotate(repr(show(token)), (rank, len(token)), fontsize=9, xytext=(4, 4), textcoords="offset points")
    ax2.set_xlabel("merge rank (id)")
    ax2.set_ylabel("token length in bytes")
    ax2.set_title("merges learned later make longer tokens")
    ax2.legend(loc="upper center")
    return fig


def line_in_tokens(text, pieces, show, vocab_size):
    """One line of text, one cell per character, each of its tokens (the strings `pieces`) in its own colour."""
    n_chars = len(text)
    fig, ax = plt.subplots(figsize=(13, 1.4))
    start = 0
    for k, piece in enumerate(pieces):
        ax.add_patch(plt.Rectangle((start, 0), len(piece), 1, fc=plt.cm.tab10(k % 10), alpha=0.35, ec="white",
                                   lw=2))
        for j, ch in enumerate(piece):
            ax.text(start + j + 0.5, 0.5, show(ch.encode()), family="monospace", fontsize=12, ha="center",
                    va="center")
        start += len(piece)
    ax.set_xlim(0, n_chars)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(f"{len(pieces)} tokens for {n_chars} characters of held-out text (vocab_size {vocab_size})")
    return fig
