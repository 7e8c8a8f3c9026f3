"""Lesson 10's figures: the gradient reaching each layer of deep stacks, pre-norm against post-norm, with and
without residual connections."""
import matplotlib.pyplot as plt
import numpy as np


def gradient_through_depth(curves, depth):
    """Two panels over the layers of a stack: ‖dx_l‖ and cosine(dx_l, dy), one line per (family, norm)."""
    fig, (ax_norm, ax_cos) = plt.subplots(1, 2, figsize=(11, 4))
    for (family, norm_kind), (norms, cosines) in curves.items():
        style = {"color": "tab:blue" if norm_kind == "pre" else "tab:red",
                 "linestyle": "-" if family == "decoder" else "--", "marker": "o", "markersize": 3}
        ax_norm.plot(range(depth + 1), norms, label=f"{family}, {norm_kind}-norm", **style)
        ax_cos.plot(range(depth + 1), cosines, label=f"{family}, {norm_kind}-norm", **style)
    ax_norm.set(xlabel=f"layer l (0 = input of the stack, {depth} = output)",
                ylabel="‖dx_l‖  (‖dy‖ = 1 at the top)", title="gradient norm reaching each layer's input")
    ax_cos.set(xlabel=f"layer l (0 = input of the stack, {depth} = output)", ylabel="cosine(dx_l, dy)",
               title="how much of the top's gradient arrives unchanged")
    for ax in (ax_norm, ax_cos):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gpt_gradient_by_block(pre, post, depth):
    """The gradient at each block's input of a GPT, relative to the top's, pre-norm and post-norm (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(range(depth + 1), pre, "o-", color="tab:blue", label="pre-norm")
    ax.semilogy(range(depth + 1), post, "o-", color="tab:red", label="post-norm")
    ax.set(xlabel=f"block input l (0 = embeddings, {depth} = top block's output)",
           ylabel="‖dx_l‖ / ‖dx_top‖", title=f"GPT, {depth} blocks, GPT-2 init: gradient from the loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def without_residuals(stack_curves, runs, depth, train_depth, train_iters):
    """Left: the gradient reaching each block at initialisation, with and without residuals and LayerNorm.
    Right: the training loss of a short run with and without residuals (raw, and its mean of 10 batches)."""
    fig, (ax_grad, ax_train) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for (ln_kind, res_kind), curve in stack_curves.items():
        ax_grad.semilogy(range(depth), curve, marker="o", markersize=3, label=f"{ln_kind}, {res_kind}",
                         color="tab:blue" if res_kind == "residual" else "tab:red",
                         linestyle="-" if ln_kind == "pre-norm LN" else "--")
    ax_grad.set(xlabel=f"block l (0 = first, {depth - 1} = top)", ylabel="‖dx_l‖ / ‖dy‖ at the top block",
                title=f"{depth} blocks at initialisation: the gradient reaching each block")
    ax_grad.grid(alpha=0.3, which="both")
    ax_grad.legend(fontsize=8)
    for (name, losses), color in zip(runs.items(), ("tab:blue", "tab:red")):
        ax_train.plot(losses, color=color, alpha=0.3, lw=1)
        ax_train.plot(np.arange(9, train_iters), np.convolve(losses, np.ones(10) / 10, mode="valid"),
                      color=color, label=f"{name} (mean of 10 batches)")
    ax_train.set(xlabel="AdamW step", ylabel="training loss (nats per character)",
                 title=f"{train_depth} pre-norm blocks on Tiny Shakespeare")
    ax_train.grid(alpha=0.3)
    ax_train.legend(fontsize=8)
    return fig
