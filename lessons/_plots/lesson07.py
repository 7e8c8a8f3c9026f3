"""Lesson 07's figure: three masks, and the attention weights of head 0 under each."""
import matplotlib.pyplot as plt
import numpy as np


def masks_and_weights(panels):
    """panels: (title, mask [T, T], weights [T, T]) per column; top row the masks, bottom row the weights."""
    T = panels[0][1].shape[-1]
    fig, axes = plt.subplots(2, len(panels), figsize=(13, 8.5), layout="constrained")
    for column, (title, m, w) in enumerate(panels):
        axes[0, column].imshow(m, cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(f"mask: {title}")
        image = axes[1, column].imshow(w, cmap="viridis", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(w):
            axes[1, column].text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                                 color="white" if value < 0.5 else "black")
        axes[1, column].set_title("weights of head 0")
        for ax in axes[:, column]:
            ax.set_xlabel("key j")
            ax.set_ylabel("query i")
            ax.set_xticks(range(T))
            ax.set_yticks(range(T))
    fig.colorbar(image, ax=axes[1, :], fraction=0.02)
    return fig
