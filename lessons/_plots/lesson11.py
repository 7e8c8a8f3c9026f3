"""Lesson 11's figure: every hand-written backward against finite differences, and the error of the check
itself as the step h shrinks."""
import matplotlib.pyplot as plt


def gradient_check_errors(results, wrong, tol, hs, h_errors):
    """Left: a log-scale bar per checked tensor (red above `tol`: caught). Right: GELU's error against h."""
    fig, (ax_bars, ax_h) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    names = list(results) + list(wrong)
    values = [max(e, 1e-17) for e in list(results.values()) + list(wrong.values())]   # 0 cannot go on a log axis
    colors = ["tab:red" if e > tol else "tab:blue" for e in values]
    ax_bars.barh(range(len(names)), values, color=colors)
    ax_bars.set_yticks(range(len(names)), names, fontsize=8)
    ax_bars.invert_yaxis()
    ax_bars.set_xscale("log")
    ax_bars.axvline(tol, color="k", linestyle="--", linewidth=1)
    ax_bars.text(tol, len(names) - 0.5, f"  {tol:g}", va="bottom", fontsize=8)
    ax_bars.set_xlabel("relative error vs finite differences (float64)")
    ax_bars.set_title("hand-written backward vs finite differences: red = caught")
    ax_h.loglog(hs, h_errors, "o-")
    ax_h.axvline(1e-5, color="gray", linestyle=":", linewidth=1)
    ax_h.set(xlabel="step h", ylabel="relative error (GELU dx)", title="truncation (∝ h²) vs rounding (∝ 1/h)")
    ax_h.invert_xaxis()
    ax_h.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig
