"""Lesson 05's figure: the attention weights, message passing on a chain, and a soft lookup turning hard."""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch


def attention_by_hand(weights, tokens, chain, chain_weights, changed_1, changed_2,
                      sharpness, lookup_weight, lookup_error, value):
    """Three panels: the weights W [T, T]; the chain mask [T, T] drawn as a graph (arrow width ∝ its
    weights), each token coloured by how far its output moved after one and two rounds (changed_1,
    changed_2 [T]); and the weight on the matching key and the relative error of the answer against
    `value`, for each sharpness s."""
    T = len(tokens)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5), layout="constrained")
    image = ax1.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    for (i, j), w in np.ndenumerate(weights):
        ax1.text(j, i, f"{w:.2f}", ha="center", va="center", color="white" if w < 0.5 else "black")
    ax1.set_xticks(range(T))
    ax1.set_xticklabels([f"k: {t}" for t in tokens])
    ax1.set_yticks(range(T))
    ax1.set_yticklabels([f"q: {t}" for t in tokens])
    ax1.set_title("W = softmax(QKᵀ/√d_k): rows sum to 1")
    fig.colorbar(image, ax=ax1, fraction=0.045)

    moved = np.stack([changed_1, changed_2])                               # [round, token]
    for row, (label, changes) in enumerate((("one round", changed_1), ("two rounds", changed_2))):
        y = 1.0 - 1.2 * row
        for i in range(T):
            for j in range(T):
                if chain[i, j] and i != j:                                  # an allowed edge j -> i
                    ax2.add_patch(FancyArrowPatch((j, y), (i, y), connectionstyle="arc3,rad=0.6",  # two arcs
                                                  arrowstyle="-|>", mutation_scale=10, color="tab:blue",
                                                  linewidth=1 + 6 * chain_weights[i, j], alpha=0.6,
                                                  shrinkA=16, shrinkB=16))
        ax2.scatter(range(T), [y] * T, s=900, c=changes, cmap="Reds", vmin=0, vmax=moved.max(),
                    edgecolor="black", zorder=3)
        for i in range(T):
            dark = changes[i] > 0.6 * moved.max()
            ax2.text(i, y, tokens[i], ha="center", va="center", zorder=4, color="white" if dark else "black")
            ax2.text(i, y - 0.42, f"moved {changes[i]:.2f}", ha="center", va="center", fontsize=8)
        ax2.text(-0.75, y, label, ha="right", va="center")
    ax2.text(T - 1, 1.6, "v_cat changed", ha="center", va="center")
    ax2.set_xlim(-2.2, T - 0.4)
    ax2.set_ylim(-0.9, 1.8)
    ax2.axis("off")
    ax2.set_title("chain mask: one hop per round (arrow width ∝ W[i, j])")

    ax3.plot(sharpness, lookup_weight, "o-", label="weight on the matching key")
    ax3.plot(sharpness, np.array(lookup_error) / np.linalg.norm(value), "s-",
             label="|answer − value| / |value|")
    ax3.set_xlabel("sharpness s (matching score)")
    ax3.set_title("soft lookup → hard lookup")
    ax3.legend()
    ax3.grid(alpha=0.3)
    return fig
