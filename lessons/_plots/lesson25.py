"""Lesson 25's figures: SiLU beside GELU, and the validation loss of GPT-2's and LLaMA's blocks trained on
one budget (with the time per iteration)."""
import matplotlib.pyplot as plt
import numpy as np


def silu_and_gelu(a, silu, gelu):
    """SiLU(a) = a·σ(a) and GELU(a) on the same axes."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(a, gelu, color="tab:orange", label="GELU (GPT-2)")
    ax.plot(a, silu, color="tab:blue", label="SiLU = a·σ(a) (the gate of SwiGLU)")
    ax.plot(a, np.maximum(a, 0), color="0.7", ls=":", label="ReLU")
    ax.set(xlabel="a", ylabel="activation", title="SiLU and GELU: a times a smooth step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def two_blocks(curves, every, ms):
    """Left: val loss against iterations (a thin line per seed, the mean thick); right: ms per iteration.

    curves: {style: [seeds, evaluations]}; ms: {style: [ms per seed]}."""
    colors = {"GPT-2": "tab:orange", "GPT-2 + RoPE": "tab:green", "LLaMA": "tab:blue"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2.2, 1]},
                                   layout="constrained")
    for style, losses in curves.items():
        its = every * np.arange(1, losses.shape[1] + 1)
        for run in losses:
            ax1.plot(its, run, color=colors[style], alpha=0.3, lw=1)
        ax1.plot(its, losses.mean(axis=0), "o-", color=colors[style], lw=2,
                 label=f"{style} (mean of {len(losses)} seeds)")
    ax1.set(xlabel="iteration", ylabel="val loss (nats)", title="same parameters, same batches")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    names = list(ms)
    for i, style in enumerate(names):
        ax2.scatter([i] * len(ms[style]), ms[style], color=colors[style])
        ax2.bar(i, np.median(ms[style]), color=colors[style], alpha=0.4)
    ax2.set_xticks(range(len(names)), names, fontsize=8)
    ax2.set(ylabel="ms per iteration (median; a dot per seed)", title="time per iteration")
    ax2.grid(alpha=0.3, axis="y")
    return fig
