"""Lesson 06's figure: score variance, the largest attention weight and the softmax Jacobian, against d_k."""
import matplotlib.pyplot as plt


def why_sqrt_dk(dks, var_unscaled, var_scaled, max_unscaled, max_scaled, median_unscaled, median_scaled, T):
    """Three panels against d_k (log scale), each unscaled and scaled: the variance of the scores, the mean
    largest weight of a softmax over T keys, and the median Frobenius norm of the softmax Jacobian."""
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.6), layout="constrained")
    ax1.loglog(dks, var_unscaled, "o-", label="Var(q·k), unscaled")
    ax1.loglog(dks, var_scaled, "s-", label="Var(q·k/√d_k), scaled")
    ax1.loglog(dks, dks, "k:", label="d_k")
    ax1.set_title("variance of the scores")
    ax2.semilogx(dks, max_unscaled, "o-", label="unscaled softmax(qKᵀ)")
    ax2.semilogx(dks, max_scaled, "s-", label="scaled softmax(qKᵀ/√d_k)")
    ax2.axhline(1 / T, color="k", linestyle=":", label=f"uniform, 1/{T}")
    ax2.set_ylim(0, 1.02)
    ax2.set_title(f"mean largest weight (T = {T} keys)")
    ax3.loglog(dks, median_unscaled, "o-", label="unscaled")
    ax3.loglog(dks, median_scaled, "s-", label="scaled")
    ax3.set_title("median Frobenius norm of the softmax Jacobian")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("d_k")
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    return fig
