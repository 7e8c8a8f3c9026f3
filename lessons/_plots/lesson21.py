"""Lesson 21's figure: time and memory of attention against the sequence length, on log-log axes."""
import matplotlib.pyplot as plt
import numpy as np


def time_and_memory(lengths, timings, slopes, peak, kept, d_model, n_head, batch):
    """Left: forward + backward time (seconds, one list per layer name in `timings`, with its fitted slope in
    `slopes`) against n, with lines ∝ n² and ∝ n through the last point. Right: the peak bytes {n: bytes} and
    the bytes of the attention weights kept {n: (numbers, bytes)}, with a line ∝ n²."""
    fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    n = np.array(lengths, dtype=float)
    for name, marker in zip(timings, ("o-", "s-")):
        ax_time.loglog(n, 1000 * np.array(timings[name]), marker,
                       label=f"{name} (slope {slopes[name]:.2f} at the end)")
    anchor = 1000 * timings["MultiHeadAttention"][-1]
    ax_time.loglog(n, anchor * (n / n[-1]) ** 2, "k--", lw=1, label="∝ n²")
    ax_time.loglog(n, anchor * (n / n[-1]), "k:", lw=1, label="∝ n")
    ax_time.set(xlabel="sequence length n", ylabel="forward + backward time (ms)",
                title=f"time (d_model = {d_model}, h = {n_head}, B = {batch})")
    ax_memory.loglog(n, [peak[m] / 2**20 for m in lengths], "o-", label="peak during forward + backward")
    ax_memory.loglog(n, [kept[m][1] / 2**20 for m in lengths], "s-",
                     label="attention weights kept (B·h·n² float32)")
    ax_memory.loglog(n, kept[lengths[-1]][1] / 2**20 * (n / n[-1]) ** 2, "k--", lw=1, label="∝ n²")
    ax_memory.set(xlabel="sequence length n", ylabel="MiB", title="memory")
    for ax in (ax_time, ax_memory):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
