"""Lesson 03's figures: the chain of dependent products against T, the gradient against the distance d,
and the recall accuracy against d, each for the RNN (red) and for one-layer attention (blue)."""
import matplotlib.pyplot as plt


def sequential_steps(lengths, depths):
    """The longest chain of dependent matrix products per sequence length; depths: {"RNN": [...], "attention": [...]}."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(lengths, depths["RNN"], "o-", color="tab:red", label="RNN: h_t waits for h_{t−1}")
    ax.plot(lengths, depths["attention"], "o-", color="tab:blue", label="attention (one layer)")
    ax.set(xlabel="sequence length T", ylabel="matrix products one after another",
           title="the longest chain of dependent products (measured)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def gradient_vs_distance(d, grads, rates):
    """‖grad‖ against d on a log scale: one thin line per seed, their mean, and the RNN's fitted rates.mean()^d.

    grads: {"RNN": [seeds, len(d)], "attention": [seeds, len(d)]}; rates: the RNN's fitted factor per seed."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, color in (("RNN", "tab:red"), ("attention", "tab:blue")):
        for g in grads[name]:
            ax.semilogy(d, g, color=color, alpha=0.25, lw=1)
        ax.semilogy(d, grads[name].mean(axis=0), color=color, lw=2,
                    label=f"{name} (mean of {len(grads[name])} seeds)")
    fit = grads["RNN"][:, 1].mean() * rates.mean() ** (d - 1)
    ax.semilogy(d[1:], fit[1:], "k--", lw=1, label=f"fit: {rates.mean():.2f}^d")
    ax.set(xlabel="d: how many positions before the loss's position", ylabel="‖∂loss_T / ∂x_{T−d}‖",
           title="gradient reaching a token d steps back, at initialisation")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def recall_accuracy(distances, accuracy, chance, vocab_size, steps):
    """Accuracy against d (log scale), a line per seed and model; accuracy: {"RNN": [seeds, d], "attention": ...}."""
    n_seeds = len(accuracy["RNN"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, color in (("RNN", "tab:red"), ("attention", "tab:blue")):
        for i in range(n_seeds):
            ax.plot(distances, accuracy[name][i], "o-" if i == 0 else "o:", color=color, alpha=0.8,
                    label=name if i == 0 else None)
    ax.axhline(chance, color="gray", ls="--", label=f"chance (1/{vocab_size})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(distances, [str(distance) for distance in distances])
    ax.set(xlabel="d: how far back the token to recall is", ylabel="accuracy on new sequences", ylim=(0, 1.05),
           title=f"recall the token d steps back ({n_seeds} seed(s), {steps} steps each)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
