"""Lesson 12's figures: the forward pass, the backward by hand, weight tying, and where the parameters live."""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

KINDS = ("embeddings", "attention", "MLP", "LayerNorm")
COLORS = {"embeddings": "tab:purple", "attention": "tab:blue", "MLP": "tab:orange", "LayerNorm": "tab:green",
          "output layer": "tab:gray"}


def plain_log_labels(axis) -> None:
    """Label a log axis 1e+05, not with mathtext's 10⁵ (typesetting those is most of a figure's time)."""
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
    axis.set_minor_formatter(NullFormatter())


def readable(n: int) -> str:
    """804096 -> '804.1 k', 174604259328 -> '174.6 B'."""
    return next(f"{n / unit:.1f} {name}" for unit, name in ((1e9, "B"), (1e6, "M"), (1e3, "k"), (1, ""))
                if n >= unit)


def forward_pass(stream, probs, loss):
    """Left: the RMS of the residual stream after each sublayer, [(name, rms)]. Right: a histogram of the
    softmax probabilities [B, T, V] times V (near 1 when every character is about equally likely)."""
    V = probs.shape[-1]
    fig, (ax_stream, ax_probs) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
    ax_stream.plot(range(len(stream)), [rms for _, rms in stream], "o-")
    ax_stream.set_xticks(range(len(stream)), [name for name, _ in stream], rotation=60, fontsize=8)
    ax_stream.set(ylabel="RMS of h", title="the residual stream grows as each sublayer adds to it")
    ax_stream.grid(alpha=0.3)
    ax_probs.hist(np.asarray(probs).ravel() * V, bins=40)
    ax_probs.set(xlabel="p(character) × V", ylabel="count",
                 title=f"softmax at initialisation: all near 1/V (loss {float(loss):.3f} ≈ ln V)")
    fig.subplots_adjust(wspace=0.2)   # (no tight_layout: the saved figure is cropped to fit anyway)
    return fig


def backward_by_hand(ours, gpt, worst):
    """The norm of every parameter's gradient, {name: array}: ours as bars, GPT.backward's as ticks."""
    names = [n.replace("blocks.", "b").replace(".sublayer", "").replace(".weight", "") for n in ours]
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.barh(range(len(names)), [float(np.linalg.norm(g)) for g in ours.values()], color="tab:blue",
            label="ours, by hand")
    ax.plot([float(np.linalg.norm(gpt[n])) for n in ours], range(len(names)), "k|", markersize=12,
            label="GPT.backward")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="‖gradient‖",
           title=f"every parameter's gradient: by hand vs GPT.backward\n(largest relative difference {worst:.0e})")
    plain_log_labels(ax.xaxis)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def weight_tying(dE_lookup, dE_output, in_input, chars):
    """The norm of each row of E's gradient [V, d], from the lookup and from the output layer, side by side;
    grey behind the characters that are not in the input (in_input [V] bool)."""
    V = len(chars)
    fig, ax = plt.subplots(figsize=(14, 4))
    positions = np.arange(V)
    ax.bar(positions - 0.2, np.linalg.norm(dE_lookup, axis=1), 0.4, label="lookup: scatter-add of dh₀")
    ax.bar(positions + 0.2, np.linalg.norm(dE_output, axis=1), 0.4, label="output layer: dlogitsᵀ h")
    for v in positions[~in_input]:
        ax.axvspan(v - 0.5, v + 0.5, color="0.9", zorder=0)
    ax.set_xticks(positions, [repr(c)[1:-1] for c in chars], fontsize=7)
    ax.set(ylabel="‖gradient of row E[v]‖",
           title="E's gradient from its two uses (grey: characters not in the input, no lookup share)")
    ax.legend()
    return fig


def parameters_by_kind(parameters, by_kind, total):
    """One bar per layer of the model, from [(parameter name, size, kind)], coloured by kind."""
    groups = []                                                            # (label, count, kind) in order
    for name, size, kind in parameters:
        label = name.split(".sublayer")[0].replace("blocks.", "block ").rsplit(".weight", 1)[0]
        label = label.replace(".self_attn", " attn").replace(".ffn", " MLP")
        if groups and groups[-1][0] == label:
            groups[-1] = (label, groups[-1][1] + size, kind)
        else:
            groups.append((label, size, kind))
    fig, ax = plt.subplots(figsize=(10, 6))
    ax.barh(range(len(groups)), [n for _, n, _ in groups], color=[COLORS[k] for _, _, k in groups])
    ax.set_yticks(range(len(groups)), [g[0].replace(".ln", " LN") for g in groups], fontsize=7)
    ax.invert_yaxis()
    for kind in KINDS:
        ax.barh([0], [0], color=COLORS[kind], label=f"{kind}: {by_kind[kind] / total:.1%}")
    ax.set(xlabel="parameters", title=f"cpu preset, {total:,} parameters: each block is 4d² attention + 8d² MLP")
    ax.legend(loc="upper right")
    return fig


def scale(sizes):
    """Parameters by kind for each model, {model: {kind: count}}: absolute (log scale) and as shares."""
    fig, (ax_abs, ax_share) = plt.subplots(1, 2, figsize=(13, 4.5))
    models = list(sizes)
    width = 0.2
    for k, kind in enumerate(KINDS):
        ax_abs.bar(np.arange(len(models)) + (k - 1.5) * width, [sizes[m][kind] for m in models], width,
                   color=COLORS[kind], label=kind)
        bottoms = [sum(sizes[m][q] for q in KINDS[:k]) / sum(sizes[m].values()) for m in models]
        ax_share.bar(models, [sizes[m][kind] / sum(sizes[m].values()) for m in models], bottom=bottoms,
                     color=COLORS[kind], label=kind)
    ax_abs.set_xticks(range(len(models)), [f"{m}\n{readable(sum(sizes[m].values()))}" for m in models])
    ax_abs.set(yscale="log", ylabel="parameters", title="parameters by kind (log scale)")
    plain_log_labels(ax_abs.yaxis)
    ax_abs.legend(fontsize=8)
    ax_share.set(ylabel="share of all parameters", title="the same block, more of it: shares by kind")
    fig.subplots_adjust(wspace=0.25)
    return fig
