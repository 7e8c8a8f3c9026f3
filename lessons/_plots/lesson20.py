"""Lesson 20's figure: the loss curves beside the mean cross-attention of the last decoder block."""
import matplotlib.pyplot as plt
import numpy as np


def loss_and_cross_attention(losses, held_out, mean_weights, src_labels, out_labels):
    """Left: training loss per iteration and held-out loss [(iteration, loss)], on a log scale, with the
    ln 26 line of guessing letters. Right: mean_weights [T_tgt, T_src] as a heat map, outputs down, source
    across."""
    fig, (ax_loss, ax_attn) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    ax_loss.plot(losses, lw=0.8, alpha=0.6, label="train (one batch)")
    ax_loss.plot(*zip(*held_out), "o-", label="held-out")
    ax_loss.axhline(np.log(26), color="gray", linestyle="--", lw=1, label="ln 26: guessing letters")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="iteration", ylabel="cross-entropy (nats per token)",
                title="Seq2Seq learning to reverse strings")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend()
    ax_attn.imshow(mean_weights, cmap="viridis", vmin=0, vmax=1)
    ax_attn.set_xticks(range(len(src_labels)), src_labels)
    ax_attn.set_yticks(range(len(out_labels)), out_labels)
    ax_attn.set(xlabel="source (keys, values: the encoder's memory)", ylabel="output (queries: the decoder)",
                title="cross-attention, last decoder block, mean of heads")
    fig.tight_layout()
    return fig
