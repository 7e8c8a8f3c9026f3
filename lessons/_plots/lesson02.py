"""Lesson 02's figure: the upstream gradient per position beside the table's gradient per token."""
import matplotlib.pyplot as plt
import numpy as np


def gradient_rows(dy, dW, idx, chars):
    """Two heat maps with their values: dY [T, d] (a row per position) and dW [V, d] (a row per token)."""
    limit = max(np.abs(dW).max(), np.abs(dy).max())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = ((ax1, dy, [f"t={t} {chars[i]!r}" for t, i in enumerate(idx)], "upstream gradient dY (per position)"),
              (ax2, dW, [f"{chars[v]!r} (x{int((idx == v).sum())})" for v in range(len(chars))],
               "dW = scatter-add of dY (per token)"))
    for ax, data, rows, title in panels:
        ax.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (r, c), value in np.ndenumerate(data):
            ax.text(c, r, f"{value:+.2f}", ha="center", va="center", fontsize=9,
                    color="white" if abs(value) > 0.6 * limit else "black")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows, family="monospace")
        ax.set_xticks(range(data.shape[1]))
        ax.set_xlabel(f"feature (d_model = {data.shape[1]})")
        ax.set_title(title)
    fig.suptitle("Embedding backward for 'banana': repeated tokens accumulate")
    return fig
