"""Lesson 30's figures: drawn shapes cut into patches, a shuffled image and what each model makes of it,
and accuracy with and without position vectors on two tasks."""
import matplotlib.pyplot as plt
import numpy as np


def _patch_grid(ax, size, patch):
    """Thin lines between the patches of a size × size image."""
    for k in range(patch, size, patch):
        ax.axhline(k - 0.5, color="tab:orange", lw=0.8)
        ax.axvline(k - 0.5, color="tab:orange", lw=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def shapes_and_patches(images, labels, kinds, patch, tokens):
    """Top: two examples of each class with the patch grid. Bottom: the first image as its row of tokens."""
    size = images.shape[1]
    examples = [i for k in range(len(kinds)) for i in np.flatnonzero(labels == k)[:2]]
    fig = plt.figure(figsize=(9, 2.9))
    grid = fig.add_gridspec(2, len(examples), height_ratios=[1.6, 1])
    for n, i in enumerate(examples):
        ax = fig.add_subplot(grid[0, n])
        ax.imshow(images[i], cmap="gray_r", vmin=-0.3, vmax=1.2)
        _patch_grid(ax, size, patch)
        ax.set_title(kinds[labels[i]], fontsize=9)
    strip = fig.add_subplot(grid[1, :])
    n_tokens = tokens.shape[0]
    row = np.full((patch, n_tokens * (patch + 1) - 1), np.nan)            # the patches side by side, a gap between
    for n in range(n_tokens):
        row[:, n * (patch + 1):n * (patch + 1) + patch] = tokens[n].reshape(patch, patch)
    strip.imshow(row, cmap="gray_r", vmin=-0.3, vmax=1.2)
    strip.set_xticks([n * (patch + 1) + (patch - 1) / 2 for n in range(n_tokens)], range(n_tokens), fontsize=8)
    strip.set_yticks([])
    strip.set_title(f"the first image ({kinds[labels[0]]}) as a sequence of {n_tokens} tokens "
                    f"of {patch}×{patch} = {patch * patch} pixels, read row by row", fontsize=10)
    fig.tight_layout()
    return fig


def shuffled(image, jumble, probabilities, kinds, patch):
    """An image, its patches shuffled, and each model's class probabilities for both.

    probabilities: {positions (bool): [probabilities of the image, probabilities of the jumble]}."""
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.0), gridspec_kw={"width_ratios": [1, 1, 1.4, 1.4]})
    for ax, picture, title in ((axes[0], image, "an image"), (axes[1], jumble, "its patches shuffled")):
        ax.imshow(picture, cmap="gray_r", vmin=-0.3, vmax=1.2)
        _patch_grid(ax, picture.shape[0], patch)
        ax.set_title(title, fontsize=10)
    x = np.arange(len(kinds))
    for ax, positions in ((axes[2], False), (axes[3], True)):
        original, jumbled = probabilities[positions]
        ax.bar(x - 0.2, original, 0.4, color="tab:blue", label="image")
        ax.bar(x + 0.2, jumbled, 0.4, color="tab:orange", label="shuffled")
        ax.set_xticks(x, kinds, fontsize=8)
        ax.set(ylim=(0, 1.05), title=f"{'with' if positions else 'without'} positions")
        ax.grid(axis="y", alpha=0.3)
    axes[2].set_ylabel("probability")
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracies(results, chance, shape_losses, order_losses):
    """Left: held-out accuracy per task, with and without positions, and chance. Right: training losses.

    results: {(task, positions): accuracy}; chance: {task: accuracy by guessing}."""
    fig, (ax, curves) = plt.subplots(1, 2, figsize=(10, 3.8))
    tasks = list(chance)
    x = np.arange(len(tasks))
    for offset, positions, color in ((-0.2, True, "tab:blue"), (0.2, False, "tab:red")):
        values = [results[task, positions] for task in tasks]
        ax.bar(x + offset, values, 0.4, color=color, label=f"{'with' if positions else 'without'} positions")
        for xi, v in zip(x + offset, values):
            ax.text(xi, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    for xi, task in zip(x, tasks):
        ax.hlines(chance[task], xi - 0.45, xi + 0.45, color="gray", ls="--", label="chance" if xi == 0 else None)
    ax.set_xticks(x, tasks)
    ax.set(ylim=(0, 1.3), ylabel="held-out accuracy", title="what needs positions")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    for losses, task, style in ((shape_losses, tasks[0], "-"), (order_losses, tasks[1], ":")):
        for positions, color in ((True, "tab:blue"), (False, "tab:red")):
            smooth = np.convolve(losses[positions], np.ones(10) / 10, mode="valid")
            curves.plot(smooth, style, color=color,
                        label=f"{task} {'with' if positions else 'without'} positions")
    curves.set(xlabel="step", ylabel="training loss (mean of 10 steps)", title="training")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)
    fig.tight_layout()
    return fig
