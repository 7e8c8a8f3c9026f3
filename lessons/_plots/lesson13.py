"""Lesson 13's figure: the attention weights of the three families side by side (layer 1, head 0)."""
import matplotlib.pyplot as plt
import numpy as np


def _labels(ids, pad=None, bos=None):
    """Token ids as tick labels: the padding id as PAD, a leading start id as BOS."""
    labels = ["PAD" if pad is not None and i == pad else str(i) for i in ids]
    if bos is not None and len(ids) and ids[0] == bos:
        labels[0] = "BOS"
    return labels


def three_attention_patterns(enc_weights, src_ids, gpt_weights, gpt_ids, cross_weights, cross_src_ids,
                             tgt_ids, pad, bos):
    """Three heat maps with their values: encoder self-attention (bidirectional, padding masked), GPT
    self-attention (causal) and cross-attention (target positions over source tokens)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    src, gpt, cross_src = _labels(src_ids, pad), _labels(gpt_ids), _labels(cross_src_ids, pad)
    panels = [
        (enc_weights, "encoder: bidirectional, padding masked", src, src, "key", "query"),
        (gpt_weights, "decoder (GPT): causal", gpt, gpt, "key (earlier tokens)", "query"),
        (cross_weights, "encoder-decoder: cross-attention", cross_src, _labels(tgt_ids, bos=bos),
         "source token (keys, values: memory)", "target position (queries: decoder)"),
    ]
    for ax, (weights, title, xlabels, ylabels, xlabel, ylabel) in zip(axes, panels):
        image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(xlabels)), xlabels, fontsize=8)
        ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        for (i, j), w in np.ndenumerate(weights):
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=7, color="white" if w < 0.6 else "black")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight (layer 1, head 0)")
    return fig
