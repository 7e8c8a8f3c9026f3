"""Lesson 19's figure: the loss at every position of a repeated sequence, and the attention of each
layer, trained beside untrained."""
import math

import matplotlib.pyplot as plt
import numpy as np


def induction_head(mean_loss, panels, tokens, V, L, n_sequences):
    """Left: the mean loss per position (mean_loss: name -> [2L-1]) with ln V and where the repeat starts;
    then one heat map per (weights [T, T], title) in `panels`, on the input tokens of one sequence."""
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(22, 4.6), layout="constrained",
                             gridspec_kw={"width_ratios": [1.4] + [1] * len(panels)})
    ax = axes[0]
    positions = np.arange(1, 2 * L)                                  # target t + 1 for input position t
    for name, color in (("trained", "tab:blue"), ("untrained", "gray")):
        ax.plot(positions, mean_loss[name], "o-", color=color, label=f"{name} (mean of {n_sequences} sequences)")
    ax.axhline(math.log(V), color="black", ls="--", lw=1, label=f"ln V = {math.log(V):.2f}")
    ax.axvline(L - 0.5, color="crimson", lw=1)
    ax.text(L - 0.3, 0.2, "repeat starts", color="crimson", fontsize=8)
    ax.set(xlabel="position of the predicted token", ylabel="cross-entropy (nats)",
           title=f"loss per position, L = {L}", ylim=(0, None))
    ax.legend(fontsize=8)
    labels = [str(t) for t in tokens]
    for ax, (weights, title) in zip(axes[1:], panels):
        ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set(title=title, xlabel="key (token)", ylabel="query (token)")
    return fig
