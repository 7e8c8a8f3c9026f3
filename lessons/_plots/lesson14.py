"""Lesson 14's figures: what each objective lets a model see, and the one number each objective gets."""
import math

import matplotlib.pyplot as plt


def _shown(c):
    return c if c != " " else "␣"


def what_each_sees(panels, n_src):
    """Three visibility matrices side by side. panels: [(visible [rows, cols] bool, title, column labels,
    row labels, target per row or None)]; n_src: the source length of the last (seq2seq) panel, where a
    white line separates source from target."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6), layout="constrained",
                             gridspec_kw={"width_ratios": [len(p[2]) for p in panels]})
    for ax, (visible, title, cols, rows, targets) in zip(axes, panels):
        ax.imshow(visible, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(cols)), [_shown(c) for c in cols], fontsize=8)
        ax.set_yticks(range(len(rows)), [_shown(c) for c in rows], fontsize=8)
        for i, y in enumerate(targets):
            if y is not None:
                ax.text(len(cols) - 0.3, i, f"→ {_shown(y)}", va="center", fontsize=9, color="crimson")
        ax.set(title=title, xlabel="may read (input position)", ylabel="output position")
    axes[2].axvline(n_src - 0.5, color="white", lw=1)
    axes[2].axhline(n_src - 0.5, color="white", lw=1)
    return fig


def three_numbers(V, unigram_entropy, gpt_val, mlm_val_loss, leaky_loss, exact):
    """One panel per objective: the GPT's val loss, the encoder's masked loss, the seq2seq exact match."""
    fig, (ax_gpt, ax_mlm, ax_s2s) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    ax_gpt.bar(["ln V", "frequencies", "GPT val"], [math.log(V), unigram_entropy, gpt_val],
               color=["gray", "gray", "tab:blue"])
    ax_gpt.set(title="next token: loss (nats per character)", ylabel="cross-entropy")
    ax_mlm.bar(["frequencies", "encoder", "answer visible"], [unigram_entropy, mlm_val_loss, leaky_loss],
               color=["gray", "tab:orange", "lightgray"])
    ax_mlm.set(title="masked token: loss at masked positions (nats)", ylabel="cross-entropy")
    ax_s2s.bar(["exact match"], [exact], color="tab:green")
    ax_s2s.set(title="seq2seq: held-out exact match (reversal)", ylim=(0, 1))
    for ax in (ax_gpt, ax_mlm, ax_s2s):
        for patch in ax.patches:
            ax.text(patch.get_x() + patch.get_width() / 2, patch.get_height(), f"{patch.get_height():.2f}",
                    ha="center", va="bottom", fontsize=9)
    return fig
