"""Lesson 31's figures: held-out accuracy against training-set size for a convolution and for attention,
and the load of a mixture of experts with and without the balancing loss."""
import matplotlib.pyplot as plt
import numpy as np


def accuracy_by_size(sizes, accuracy):
    """Accuracy against n, a line per seed and model: accuracy {"convolution": [seeds, sizes], "attention": ...}."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for (name, rows), color in zip(accuracy.items(), ("tab:orange", "tab:blue")):
        for i, row in enumerate(rows):
            ax.plot(sizes, row, "o-", color=color, alpha=0.7, label=name if i == 0 else None)
    ax.axhline(0.5, color="gray", ls="--", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set(xlabel="training sequences n", ylabel="accuracy on 1000 new sequences", ylim=(0.4, 1.03),
           title=f"is \"1 2\" anywhere? ({len(next(iter(accuracy.values())))} seed(s))")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def expert_load(seeds, loads, alpha):
    """The share of tokens of each expert, per seed, without and with the balancing loss (loads {α: [f, ...]})."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    for ax, (a, title) in zip(axes, ((0.0, "without the balancing loss"), (alpha, f"with it (α = {alpha})"))):
        shares = np.array(loads[a])                                  # [seeds, E]
        E = shares.shape[1]
        width = 0.8 / len(seeds)
        for i, (seed, f) in enumerate(zip(seeds, shares)):
            ax.bar(np.arange(E) + (i - (len(seeds) - 1) / 2) * width, f, width, label=f"seed {seed}")
        ax.axhline(1 / E, color="gray", ls="--", label="even: 1/E")
        ax.set(xlabel="expert", title=title)
        ax.set_xticks(range(E))
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("share of the tokens, f")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
