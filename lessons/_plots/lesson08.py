"""Lesson 08's figure: the two hand-set heads, and head 0 made softer by smaller projections."""
import matplotlib.pyplot as plt


def heads(W0, W1, softer, words):
    """Top: the attention weights [T, T] of head 0 (previous token) and head 1 (find 'cat'), and how they
    were set. Bottom: head 0 again for each c in `softer` ({c: weights [T, T]}), with its score c²/4."""
    T = len(words)
    fig, axes = plt.subplots(2, 3, figsize=(16, 10), layout="constrained")
    for ax, W, title in ((axes[0, 0], W0, "head 0: previous token"), (axes[0, 1], W1, "head 1: find 'cat'")):
        ax.imshow(W, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(T))
        ax.set_xticklabels(words, rotation=45)
        ax.set_yticks(range(T))
        ax.set_yticklabels(words)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        ax.set_title(title)
    axes[0, 2].axis("off")
    axes[0, 2].text(0.0, 0.5, "hand-set projections\n\nhead 0: q_t = c·e_t,  k_s = c·e_(s+1)\n"
                    "head 1: q_t = c·u,  k_s = c·u if word_s = 'cat'\n\nvalues: the word's one-hot\nW_o = I",
                    va="center", fontsize=12, family="monospace")
    for ax, (c_small, W) in zip(axes[1], softer.items()):
        image = ax.imshow(W, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(T))
        ax.set_xticklabels(words, rotation=45)
        ax.set_yticks(range(T))
        ax.set_yticklabels(words)
        ax.set_xlabel("key (attended to)")
        ax.set_title(f"head 0 with c = {c_small:g}: score {c_small ** 2 / 4:g} instead of 9")
    fig.colorbar(image, ax=axes[1, :], fraction=0.02)
    return fig
