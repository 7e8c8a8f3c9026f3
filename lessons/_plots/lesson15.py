"""Lesson 15's figure: every stage's loss on one budget, beside the training curves."""
import matplotlib.pyplot as plt
import numpy as np


def build_it_up(results, unigram_entropy, counted_bigram, uniform, iters, batch, context, window=25,
                controls=None):
    """Left: validation (bars) and training (dots) loss per stage against the counted yardsticks; right: the
    training curves, each the mean of the last `window` batches.

    results: stage name -> dict(losses, train, val), as lesson 15's train_stage records them; controls: the
    same for models trained beside the stages (drawn last, in grey, their curves dashed)."""
    controls = controls or {}
    fig, (ax_bar, ax_curve) = plt.subplots(1, 2, figsize=(14, 4.8), layout="constrained")
    stages = list(results)
    results = {**results, **controls}
    names = list(results)
    labels = [f"{n}\n(control)" if n in controls else n for n in names]
    ax_bar.bar(labels, [results[n]["val"] for n in names], label="validation loss",
               color=["tab:gray" if n in controls else "tab:blue" for n in names])
    ax_bar.plot(labels, [results[n]["train"] for n in names], "o", color="black", label="training loss")
    for value, label, style in ((unigram_entropy, "character frequencies", ":"),
                                (counted_bigram, "counted bigram table", "--")):
        ax_bar.axhline(value, color="gray", linestyle=style, lw=1, label=f"{label} {value:.2f}")
    for i, n in enumerate(names):
        ax_bar.text(i, results[n]["val"] + 0.02, f"{results[n]['val']:.2f}", ha="center", fontsize=8)
    ax_bar.set_ylim(2.0, max(unigram_entropy, max(results[n]["val"] for n in names)) + 0.15)
    ax_bar.set(ylabel="cross-entropy (nats per character)",
               title=f"one budget: {iters} iterations, {batch}×{context} characters each")
    ax_bar.tick_params(axis="x", labelrotation=20)
    ax_bar.legend(fontsize=8, loc="upper left")
    for n in names:
        smooth = np.convolve(results[n]["losses"], np.ones(window) / window, mode="valid")
        ax_curve.plot(np.arange(window - 1, iters), smooth, label=n if n in stages else f"{n} (control)",
                      **({"color": "tab:gray", "linestyle": "--"} if n in controls else {}))
    ax_curve.axhline(counted_bigram, color="gray", linestyle="--", lw=1)
    ax_curve.set_ylim(2.0, uniform + 0.1)
    ax_curve.set(xlabel="iteration", ylabel=f"training loss (mean of the last {window} batches)",
                 title="training curves")
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8)
    return fig
