"""Lesson 29's figure: the held-out loss on the questions' and on the answers' characters while fine-tuning,
with the loss counted on the answers only and on everything."""
import matplotlib.pyplot as plt


def fine_tuning(answers_only, everything, base):
    """Two panels (question's characters, answer's): loss against step for both fine-tunes.

    answers_only, everything: {step: (question loss, answer loss)}; base: the base model's pair."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for part, (ax, title) in enumerate(zip(axes, ("the question's characters", "the answer's characters"))):
        for curve, color, label in ((answers_only, "tab:blue", "loss on the answers only (masked)"),
                                    (everything, "tab:orange", "loss on questions and answers")):
            steps = sorted(curve)
            ax.plot(steps, [curve[s][part] for s in steps], "o-", ms=3, color=color, label=label)
        ax.axhline(base[part], color="gray", ls="--", lw=1, label="base model")
        ax.set(xlabel="fine-tuning step", title=f"held-out loss on {title}", ylim=(0, None))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
