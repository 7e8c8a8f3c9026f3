"""Lesson 17's figure: the next-character distribution at three temperatures and with top-k, and the
entropy of that distribution as the temperature sweeps from near 0 to far above 1."""
import math

import matplotlib.pyplot as plt
import numpy as np


def temperature_and_top_k(bars, top, labels, context, sweep, sweep_entropy, V):
    """Left: bars of p over the 12 likeliest characters, one colour per (name, p) in `bars`; right: the
    entropy of p against T (log scale), between 0 (one-hot, greedy) and ln V (uniform)."""
    fig, (ax_bars, ax_entropy) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.2
    for n, (name, p) in enumerate(bars):
        ax_bars.bar(np.arange(len(top)) + (n - 1.5) * width, p[top], width, label=name)
    ax_bars.set_xticks(range(len(top)), labels)
    ax_bars.set(xlabel=f"next character (the {len(top)} likeliest at T = 1) after ...{context!r}",
                ylabel="probability", title="temperature reshapes the next-character distribution")
    ax_bars.legend()
    ax_entropy.semilogx(sweep, sweep_entropy)
    ax_entropy.axhline(math.log(V), color="gray", linestyle="--", lw=1, label=f"ln V = {math.log(V):.2f} (uniform)")
    ax_entropy.axhline(0, color="gray", linestyle=":", lw=1, label="0 (one-hot: greedy)")
    ax_entropy.set(xlabel="temperature T", ylabel="entropy of p (nats)", title="entropy vs temperature")
    ax_entropy.legend(fontsize=8)
    ax_entropy.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
