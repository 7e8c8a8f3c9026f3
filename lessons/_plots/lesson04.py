"""Lesson 04's figure: the sinusoidal table, its dot products, and how word order moves attention's outputs."""
import matplotlib.pyplot as plt
import numpy as np


def positional_encoding(P, words, no_position, with_position):
    """Three panels: the table P [T, d_model]; P[t]·P[s] for all pairs; and, per word, how far its attention
    output moves between the two sentences (`no_position`: {word: distance}; `with_position`:
    {"sinusoidal" or "learned": {word: distance}})."""
    length, d = P.shape
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 5), gridspec_kw={"width_ratios": [1.2, 1, 1]},
                                        layout="constrained")
    image = ax1.imshow(P, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax1.set_xlabel("column (pairs 2i, 2i+1: sin, cos)")
    ax1.set_ylabel("position t")
    ax1.set_title(f"sinusoidal_table({length}, {d})")
    fig.colorbar(image, ax=ax1, fraction=0.04)
    image = ax2.imshow(P @ P.T, cmap="viridis")
    ax2.set_xlabel("position s")
    ax2.set_ylabel("position t")
    ax2.set_title("P[t]·P[s]: depends only on t - s")
    fig.colorbar(image, ax=ax2, fraction=0.04)
    xs = np.arange(len(words))
    ax3.bar(xs - 0.27, [no_position[w] for w in words], 0.27, label="no positions")
    ax3.bar(xs, [with_position["sinusoidal"][w] for w in words], 0.27, label="+ sinusoidal")
    ax3.bar(xs + 0.27, [with_position["learned"][w] for w in words], 0.27, label="+ learned")
    for x_ in xs:
        ax3.text(x_ - 0.27, 0.005, "0", ha="center", va="bottom", color="tab:blue")
    ax3.set_xticks(xs)
    ax3.set_xticklabels(words)
    ax3.set_ylabel("|output in A − output in B|")
    ax3.set_title("'Zuko made his uncle' vs 'his uncle made Zuko'")
    ax3.legend()
    return fig
