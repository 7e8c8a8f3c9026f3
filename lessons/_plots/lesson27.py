"""Lesson 27's figures: recall with a window, receptive fields of convolutions and of local attention,
and the KV cache's bytes as the sequence grows."""
import matplotlib.pyplot as plt
import numpy as np


def recall(distances, accuracy, control, window, vocab_size, steps):
    """Accuracy against d, a line per seed (accuracy [seeds, len(distances)]); control: no window, last d."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for i, row in enumerate(accuracy):
        ax.plot(distances, row, "o-", color="tab:blue", alpha=0.7, label=f"window W = {window}" if i == 0 else None)
    ax.plot([distances[-1]] * len(control), control, "s", color="tab:green", label="no window")
    ax.axvspan(window - 0.5, max(distances) + 0.5, color="gray", alpha=0.12, label="outside the window (d ≥ W)")
    ax.axhline(1 / vocab_size, color="gray", ls="--", label=f"chance (1/{vocab_size})")
    ax.set(xlabel="d: how far back the token to recall is", ylabel="accuracy on new sequences", ylim=(0, 1.05),
           title=f"one block, recall the token d back ({len(accuracy)} seeds, {steps} steps each)")
    ax.set_xticks(distances)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig


def receptive_fields(conv_reach, moved, length, k, window):
    """Rows: 1, 2, 3 layers; for each, the inputs the last output depends on: convolutions (by their
    gradient) above, local attention (by a change of the token) below."""
    layers = sorted(conv_reach)
    grid = np.zeros((2 * len(layers), length))
    labels = []
    for r, n in enumerate(layers):
        grid[2 * r, conv_reach[n]] = 1
        grid[2 * r + 1, length - 1 - moved[n]] = 2
        labels += [f"{n} conv (k = {k})", f"{n} attention (W = {window})"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.imshow(grid, cmap=plt.matplotlib.colors.ListedColormap(["white", "tab:orange", "tab:blue"]),
              aspect="auto", vmin=0, vmax=2)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(range(length))
    ax.set(xlabel="input position (the output is at the last one)",
           title="what the last output depends on: L·(k − 1) + 1 inputs")
    ax.set_xticks(np.arange(-0.5, length), minor=True)
    ax.set_yticks(np.arange(-0.5, len(labels)), minor=True)
    ax.grid(which="minor", color="lightgray", lw=0.5)
    ax.tick_params(which="minor", length=0)
    fig.tight_layout()
    return fig


def cache_memory(measured, window):
    """The cache's bytes against the number of tokens seen: measured {window: {length: bytes}, None: ...}."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for key, color, label in ((None, "tab:red", "full causal attention"),
                              (window, "tab:blue", f"window W = {window}")):
        lengths = sorted(measured[key])
        ax.plot(lengths, [measured[key][t] / 1024 for t in lengths], color=color, lw=2, label=label)
    ax.set(xlabel="tokens so far", ylabel="KV cache (KiB, all blocks)", title="the KV cache as the sequence grows")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
