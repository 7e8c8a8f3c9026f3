"""Lesson 16's figures: the run's loss curve against the counted yardsticks, and what a changed future moves."""
import matplotlib.pyplot as plt
import numpy as np


def loss_curve(steps, evals, uniform, unigram_entropy, bigram_val, vocab_size, n_params, max_iters):
    """The trainer's records (metrics.jsonl: `steps` of kind "train", `evals` of kind "eval") as curves, with
    the uniform guess, the character frequencies and the bigram table as horizontal lines."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=1, alpha=0.5, label="train (one batch)")
    ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (estimate)")
    ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val (estimate)")
    ax.axhline(uniform, color="gray", linestyle="--", lw=1)
    ax.text(0, uniform, f" ln {vocab_size} = {uniform:.2f} (uniform)", va="bottom", fontsize=8)
    ax.axhline(unigram_entropy, color="gray", linestyle=":", lw=1)
    ax.text(0, unigram_entropy, f" character frequencies only = {unigram_entropy:.2f}", va="bottom", fontsize=8)
    ax.axhline(bigram_val, color="gray", linestyle="-.", lw=1)
    ax.text(0, bigram_val, f" bigram table, no attention = {bigram_val:.2f}", va="bottom", fontsize=8)
    ax.set(xlabel="iteration", ylabel="cross-entropy (nats per character)",
           title=f"char GPT on Tiny Shakespeare: {n_params:,} parameters, {max_iters} iterations")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def future_cannot_leak(moved, t):
    """The largest change of a logit per position [T], when the characters after position t were replaced:
    positions 0 .. t in blue, the ones after in orange."""
    T = len(moved)
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.bar(np.arange(T), moved, color=["tab:blue"] * (t + 1) + ["tab:orange"] * (T - t - 1))
    ax.axvline(t + 0.5, color="gray", linestyle="--", lw=1)
    ax.set(xlabel="position", ylabel="largest |Δ logit|",
           title=f"characters after position {t} replaced: only the positions after it change")
    fig.tight_layout()
    return fig
