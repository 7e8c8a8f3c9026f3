"""Lesson 01's figure: how often each character occurs, beside a batch drawn as a grid of ids."""
import matplotlib.pyplot as plt
import numpy as np

SHOWN = {" ": "␣", "\n": "\\n"}  # make the invisible characters visible


def characters_and_batch(frequency, x, chars):
    """Left: the frequency of each character [V], most common first; right: a batch x [B, T] of ids."""
    batch_size, block_size = x.shape
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    order = np.argsort(-frequency)
    labels = [SHOWN.get(chars[i], chars[i]) for i in order]
    ax1.bar(range(len(order)), frequency[order], color="tab:blue")
    ax1.set_xticks(range(len(order)))
    ax1.set_xticklabels(labels, fontsize=7, family="monospace")
    ax1.set_yscale("log")
    ax1.set_ylabel("fraction of the training text (log scale)")
    ax1.set_title(f"Tiny Shakespeare: the {len(chars)} characters, most common first")
    ax2.imshow(x, cmap="viridis", aspect="auto")
    for b in range(batch_size):
        for t in range(block_size):
            ch = SHOWN.get(chars[x[b, t]], chars[x[b, t]])
            ax2.text(t, b, f"{x[b, t]}\n{ch}", ha="center", va="center", fontsize=9,
                     color="white" if x[b, t] < 30 else "black")
    ax2.set_xticks(range(block_size))
    ax2.set_yticks(range(batch_size))
    ax2.set_xlabel(f"position t (block_size = {block_size})")
    ax2.set_ylabel(f"window b (batch_size = {batch_size})")
    ax2.set_title("a batch x: token ids (and their characters)")
    return fig
