"""Lesson 22's figure: a training step's time per backend, and what a timer sees with and without sync."""
import matplotlib.pyplot as plt


def step_times_and_sync(widths, step_times, device, launch, finished, size):
    """Left: ms per training step against n_embd, one line per backend in `step_times` {name: [seconds]}.
    Right: the matmul's time with the timer stopped right after the call (`launch`) and after
    synchronize() (`finished`), in seconds."""
    fig, (ax_step, ax_sync) = plt.subplots(1, 2, figsize=(12, 4.3), gridspec_kw={"width_ratios": [3, 2]})
    for name, marker in zip(step_times, ("o-", "s-")):
        ax_step.plot(widths, [1000 * t for t in step_times[name]], marker, label=name)
    ax_step.set_xscale("log", base=2)
    ax_step.set_yscale("log")
    ax_step.set(xlabel="n_embd", ylabel="ms per training step (synchronized)",
                title=f"one training step: numpy vs {device}")
    ax_step.grid(alpha=0.3, which="both")
    ax_step.legend()
    ax_sync.bar(["timer right after\nthe call", "timer after\nsynchronize()"], [1000 * launch, 1000 * finished],
                color=["tab:gray", "tab:blue"])
    ax_sync.set(ylabel="ms", title=f"{size}×{size} matmul on {device}: what the timer sees")
    fig.tight_layout()
    return fig
