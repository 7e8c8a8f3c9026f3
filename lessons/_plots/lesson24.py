"""Lesson 24's figures: pairs of features turning with the position, the score matrix of RoPE against
angles m²·θ, each pair's share of the score against the distance, and the validation loss by position past
the trained context T (all keys, and a window of T)."""
import matplotlib.pyplot as plt
import numpy as np


def pairs_turning(x, rope, positions):
    """Each pair (x_i, x_{i+d/2}) of one vector x at positions 0..positions−1, as points on its circle."""
    d = len(x)
    half = d // 2
    y = rope(np.tile(x, (positions, 1)))                                # [positions, d]
    fig, axes = plt.subplots(1, half, figsize=(3.2 * half, 3.4), layout="constrained")
    for i, ax in enumerate(axes):
        radius = np.hypot(x[i], x[i + half])
        circle = np.linspace(0, 2 * np.pi, 200)
        ax.plot(radius * np.cos(circle), radius * np.sin(circle), color="0.85", lw=1)
        points = ax.scatter(y[:, i], y[:, i + half], c=np.arange(positions), cmap="viridis", zorder=3)
        ax.annotate("m = 0", (y[0, i], y[0, i + half]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_aspect("equal")
        ax.set_title(f"pair {i}: features ({i}, {i + half})\nθ_{i} = {10000.0 ** (-2 * i / d):.3g} rad / position",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, label="position m", fraction=0.02)
    fig.suptitle("RoPE turns each pair by m·θ_i: same length, a new direction for every position")
    return fig


def score_matrices(rope_scores, squared_scores):
    """S[m, n] for one q and one k: with RoPE (constant along diagonals) and with angles m²·θ (not)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6), layout="constrained")
    limit = max(np.abs(rope_scores).max(), np.abs(squared_scores).max())
    for ax, S, title in ((axes[0], rope_scores, "RoPE: angle m·θ_i → S depends on n − m"),
                         (axes[1], squared_scores, "angle m²·θ_i → it does not")):
        image = ax.imshow(S, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set(xlabel="key position n", ylabel="query position m", title=title)
    fig.colorbar(image, ax=axes, label="(R_m q)·(R_n k)", fraction=0.03)
    return fig


def pair_shares(distances, share, theta, T):
    """Each pair's share of q·R_r k against the distance r (log axis), the trained context T marked."""
    fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
    colors = plt.cm.viridis(np.linspace(0, 0.9, share.shape[1]))
    r = distances[1:]
    for i in range(share.shape[1]):
        ax.plot(r, share[1:, i], color=colors[i], lw=1.2,
                label=f"pair {i} (period {2 * np.pi / theta[i]:,.0f})")
    ax.axvline(T, color="k", ls="--", lw=1)
    ax.text(T, ax.get_ylim()[1], f" T = {T}", va="top", fontsize=9)
    ax.set_xscale("log")
    ax.set(xlabel="distance n − m (log scale)", ylabel="pair i's share of the score",
           title="fast pairs turn within a few positions, slow pairs over thousands")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return fig


def _smooth(curve, width=8):
    return np.convolve(curve, np.ones(width) / width, mode="valid")


def loss_by_position(curves, T):
    """The validation loss at every position of a window of 4T (mean over windows and seeds), per kind."""
    fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
    colors = {"sinusoidal": "tab:orange", "rope": "tab:blue"}
    for kind, curve in curves.items():
        ax.plot(np.arange(len(curve))[7:], _smooth(curve), color=colors[kind], label=kind)
    ax.axvspan(0, T, color="0.9", label=f"trained context (T = {T}); learned positions end here")
    ax.set(xlabel="position in the validation window", ylabel="val loss (nats; 8-position mean)",
           title="trained on windows of T, read on windows of 4T")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def windowed(causal, window, seeds, T):
    """Loss by position, all keys (solid) against a window of the last T keys (dashed), per kind."""
    fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
    colors = {"sinusoidal": "tab:orange", "rope": "tab:blue"}
    for kind in ("sinusoidal", "rope"):
        for curves, style, how in ((causal, "-", "all keys"), (window, "--", "window of T")):
            mean = np.mean([curves[kind, seed] for seed in seeds], axis=0)
            ax.plot(np.arange(len(mean))[7:], _smooth(mean), style, color=colors[kind], label=f"{kind}, {how}")
    ax.axvspan(0, T, color="0.9", label=f"trained context (T = {T})")
    ax.set(xlabel="position in the validation window", ylabel="val loss (nats; 8-position mean)",
           title="RoPE with a window of T sees only distances it was trained on")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
