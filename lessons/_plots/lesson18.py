"""Lesson 18's figures: the embedding table in two dimensions, one character's vectors after block 1 in
many contexts, and block 1's attention weights on a line of verse; each for the trained model, and the
first two beside the same model untrained. Then a word model's shared direction against its controls."""
import matplotlib.pyplot as plt
import numpy as np


def label(char):
    """A character as it can be read on a plot: the space as 'sp', the newline as '\\n'."""
    return "sp" if char == " " else repr(char)[1:-1]


def pca_2d(vectors):
    """The rows projected onto their two principal directions (the top right singular vectors)."""
    centred = vectors - vectors.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, (s[:2] ** 2).sum() / (s ** 2).sum()    # [n, 2], variance explained


def embeddings(tables, chars, classes, colours):
    """One panel per (name, table [V, d]): every character at its two principal coordinates, coloured by
    its class (classes: name -> the characters; colours: name -> a Matplotlib colour)."""
    stoi = {c: i for i, c in enumerate(chars)}
    fig, axes = plt.subplots(1, len(tables), figsize=(7.5 * len(tables), 6.5))
    for ax, (name, table) in zip(np.atleast_1d(axes), tables):
        points, explained = pca_2d(table)
        for cls, members in classes.items():
            ids = [stoi[c] for c in members if c in stoi]
            ax.scatter(points[ids, 0], points[ids, 1], s=12, color=colours[cls], label=cls)
            for i in ids:
                ax.annotate(label(chars[i]), points[i], fontsize=9, color=colours[cls])
        ax.set(title=f"embedding table, {name}: PCA ({100 * explained:.0f}% of the variance)",
               xlabel="principal direction 1", ylabel="principal direction 2")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def contextual_vectors(panels, before, common, chars, char, n_contexts):
    """One panel per (name, vectors [N, d]): the N vectors of `char` after block 1, at their two principal
    coordinates, coloured by the character before it (the ids in `common`; the others grey)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.5))
    for ax, (name, vectors) in zip(np.atleast_1d(axes), panels):
        points, _ = pca_2d(vectors)
        for c in common:
            ax.scatter(*points[before == c].T, s=10, label=f"after {chars[c]!r}")
        rest = ~np.isin(before, common)
        ax.scatter(*points[rest].T, s=6, color="lightgray", label="after others")
        ax.set(title=f"{char!r} after block 1, {n_contexts} contexts ({name}); before block 1 all one point",
               xlabel="principal direction 1", ylabel="principal direction 2")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def head_weights(weights, text, titles):
    """One heat map per head: weights [n_head, T, T] of block 1 on the T characters of `text` (query rows,
    key columns), titled by `titles`."""
    n_head, T = weights.shape[0], weights.shape[-1]
    labels = [label(c) for c in text]
    fig, axes = plt.subplots(1, n_head, figsize=(5.2 * n_head, 5.6), layout="constrained")
    for h, ax in enumerate(np.atleast_1d(axes)):
        image = ax.imshow(weights[h], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(T), labels, fontsize=6)
        ax.set_yticks(range(T), labels if h == 0 else [], fontsize=6)   # the same line for every head
        ax.set(title=titles[h], xlabel="key (read)", ylabel="query (position t)" if h == 0 else "")
    fig.colorbar(image, ax=axes, fraction=0.02)
    return fig


def shared_direction(panels):
    """One panel per (name, value, controls): a histogram of the controls' mean cosines (sets of
    frequency-matched pairs) and a line at the value of the 13 male/female pairs."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), sharex=True)
    for ax, (name, value, controls) in zip(np.atleast_1d(axes), panels):
        ax.hist(controls, bins=25, color="lightgray", edgecolor="gray",
                label=f"{len(controls)} sets of frequency-matched pairs")
        ax.axvline(value, color="tab:red", lw=2, label="she − he, queen − king, ... (13 pairs)")
        ax.set(title=f"word vectors, {name}", xlabel="mean cosine between the pairs' differences",
               ylabel="sets")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
