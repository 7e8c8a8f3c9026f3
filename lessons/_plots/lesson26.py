"""Lesson 26's figure: the KV cache's bytes per token and the validation loss, against n_kv_head."""
import matplotlib.pyplot as plt
import numpy as np


def memory_and_quality(kv_choices, per_token, val, bigram_val, seeds, iters):
    """Left: bytes per token of the cache (counted) per n_kv_head. Right: val loss per n_kv_head, a point
    per seed (val [seeds, len(kv_choices)]), with the counted bigram table's loss as a line."""
    labels = [f"{n}" for n in kv_choices]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.bar(labels, [per_token[n] for n in kv_choices], color="tab:blue")
    for i, n in enumerate(kv_choices):
        left.text(i, per_token[n], f"{per_token[n]:,.0f}", ha="center", va="bottom", fontsize=9)
    left.set(xlabel="n_kv_head (8 query heads)", ylabel="bytes per token (float32)",
             title="KV cache of a 4-layer model, counted")
    x = np.arange(len(kv_choices))
    for i, seed in enumerate(seeds):
        right.plot(x, val[i], "o-", alpha=0.8, label=f"seed {seed}")
    right.axhline(bigram_val, color="gray", ls="--", label="counted bigram table")
    right.set_xticks(x, labels)
    right.set(xlabel="n_kv_head (8 query heads)", ylabel="validation loss (nats per character)",
              title=f"Tiny Shakespeare, {iters} iterations each")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
