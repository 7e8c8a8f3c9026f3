"""Lesson 28's figures: exact match against the string's length with and without the soft search (and
letter by letter at the longest length), and the soft search's weights for one string."""
import matplotlib.pyplot as plt
import numpy as np

COLORS = {"plain": "tab:red", "attention": "tab:blue"}
LABELS = {"plain": "last state only (the bottleneck)", "attention": "+ soft search (attention)"}


def exact_match_by_length(lengths, exact, by_position, iters, transformer=None):
    """Left: held-out exact match against L, a thin line per seed and their mean; exact: {"plain": [seeds,
    len(lengths)], "attention": ...}. Right: the fraction of correct tokens at each output position at the
    longest L (by_position: {"plain": [seeds, L + 1], ...}: L letters, then EOS). transformer: (L, exact
    match) of the Transformer, drawn as one point when given."""
    seeds = "1 seed" if len(exact["plain"]) == 1 else f"{len(exact['plain'])} seeds"
    fig, (ax, ax_pos) = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [1, 1]})
    for name in ("plain", "attention"):
        for row in exact[name]:
            ax.plot(lengths, row, color=COLORS[name], alpha=0.3, lw=1)
        ax.plot(lengths, exact[name].mean(axis=0), "o-", color=COLORS[name], lw=2, label=LABELS[name])
    if transformer is not None:
        ax.plot(*transformer, "*", color="tab:green", ms=14, label="Transformer (no recurrence)")
    ax.set(xlabel="L: letters in the string", ylabel="held-out exact match", ylim=(-0.03, 1.05),
           title=f"reversal, RNN encoder–decoder, {iters} steps at every L ({seeds})")
    ax.set_xticks(lengths)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left")
    longest = lengths[-1]
    positions = np.arange(longest + 1)
    for name in ("plain", "attention"):
        ax_pos.plot(positions, by_position[name].mean(axis=0), "o-", color=COLORS[name], label=LABELS[name])
    ax_pos.axhline(1 / 26, color="gray", ls="--", lw=1, label="chance for a letter (1/26)")
    ax_pos.set_xticks(positions, [f"{t}\n(x{longest - 1 - t})" for t in range(longest)] + ["EOS"], fontsize=7)
    ax_pos.set(xlabel="output position t (it writes source letter $x_{L-1-t}$)", ylabel="correct tokens",
               ylim=(0, 1.05), title=f"L = {longest}, token by token of the same greedy outputs")
    ax_pos.grid(alpha=0.3)
    ax_pos.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def soft_search_weights(weights, src_labels, out_labels, shift=0):
    """weights [T_out, T_src] as a heat map, outputs down, source across; a box on each letter row's
    position of the anti-diagonal the model uses: source L − 1 − t (the mirror) + shift."""
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    length = len(src_labels) - 1                                # the letters, without EOS
    for t in range(min(len(out_labels) - 1, length)):
        ax.add_patch(plt.Rectangle((length - 1 - t + shift - 0.5, t - 0.5), 1, 1, fill=False, ec="white", lw=1.2))
    ax.set_xticks(range(len(src_labels)), src_labels)
    ax.set_yticks(range(len(out_labels)), out_labels)
    boxes = "the mirrored position" if shift == 0 else f"the mirrored position + {shift}"
    ax.set(xlabel="source: encoder state $h_j$ after reading letter $j$", ylabel="output: decoder step $t$",
           title=rf"soft-search weights $\alpha_{{tj}}$ (boxes: {boxes})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
