"""Lesson 09's figures: attention's averaging and the activations, XOR, the hidden width, dropout."""
import matplotlib.pyplot as plt
import numpy as np


def convex_hull(p):
    """Corners of the convex hull of 2-D points, in order (Andrew's monotone chain), for drawing."""
    p = sorted(map(tuple, p))
    def turn(a, b, c):                                                  # > 0: a -> b -> c turns left
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def half(points):
        chain = []
        for q in points:
            while len(chain) >= 2 and turn(chain[-2], chain[-1], q) <= 0:
                chain.pop()
            chain.append(q)
        return chain[:-1]
    return np.array(half(p) + half(p[::-1]))


def averaging_and_activations(points, layers, grid, curves):
    """The point cloud under layers of pure attention (and its convex hull); ReLU and GELU with their
    derivatives. layers: [points, after 1 layer, ...]; curves: {name: (act(grid), act'(grid))}."""
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    hull = convex_hull(points)
    ax1.fill(hull[:, 0], hull[:, 1], color="tab:blue", alpha=0.08, label="convex hull of the inputs")
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(layers)))
    for i, (p, color) in enumerate(zip(layers, colors)):
        ax1.scatter(p[:, 0], p[:, 1], color=color, label=f"after {i} layer{'s' if i > 1 else ''}" if i else "input tokens",
                    s=40 if i else 60)
    for t in range(len(points)):
        ax1.plot([p[t, 0] for p in layers], [p[t, 1] for p in layers], color="gray", linewidth=0.6)
    ax1.set_aspect("equal")
    ax1.legend(fontsize=8)
    ax1.set_title("pure attention x ← softmax(xxᵀ/√d_k)x: only averages")
    for ax, index, title in ((ax2, 0, "activations"), (ax3, 1, "derivatives (from backward)")):
        ax.plot(grid, curves["ReLU"][index], label="ReLU")
        ax.plot(grid, curves["GELU"][index], label="GELU (tanh form)")
        ax.axhline(0, color="k", linewidth=0.5)
        ax.axvline(0, color="k", linewidth=0.5)
        ax.set_xlabel("x")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def xor(u, surface, X, Y, histories, best_linear_mse, stop_at):
    """The trained network's XOR output over the square [u × u] (surface), with its 0.5 contour and the
    four bits; the training curves {name: [mse per step]} against the best linear map's error."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    image = ax1.imshow(surface, origin="lower", extent=(u[0], u[-1], u[0], u[-1]), cmap="coolwarm",
                       vmin=-0.2, vmax=1.2)
    ax1.contour(u, u, surface, levels=[0.5], colors="k")
    for (a, b), target in zip(X, Y[:, 0]):
        ax1.scatter(a, b, s=160, color="white" if target == 0 else "black", edgecolor="k", zorder=3)
        ax1.annotate(f"{a:.0f} XOR {b:.0f} = {target:.0f}", (a, b), textcoords="offset points", xytext=(8, 10))
    ax1.set_xlabel("a")
    ax1.set_ylabel("b")
    ax1.set_title("trained FeedForward (GELU): XOR output, 0.5 contour")
    fig.colorbar(image, ax=ax1, fraction=0.045)
    for name, history in histories.items():
        ax2.semilogy(history, label=name)
    ax2.axhline(best_linear_mse, color="k", linestyle=":", label="best linear map (least squares)")
    ax2.axhline(stop_at, color="gray", linestyle="--", lw=1, label=f"stop: mse < {stop_at:g}")
    ax2.set_xlabel("AdamW step")
    ax2.set_ylabel("mean squared error")
    ax2.set_title("half adder (XOR, AND): training")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend()
    return fig


def hidden_width(widths, fits):
    """Left: attention's and the FFN's share of a block's parameters, widths {d_model: (d_hidden, FFN
    count, attention count)}. Right: the fit of each width, fits {multiple: (history, unseen, count)}."""
    fig, (ax_params, ax_fit) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    labels = [f"d_model {d}" for d in widths]
    attention_share = [widths[d][2] / (widths[d][1] + widths[d][2]) for d in widths]
    ax_params.bar(labels, attention_share, label="attention (4d² + 4d)")
    ax_params.bar(labels, [1 - share for share in attention_share], bottom=attention_share,
                  label="FFN, d -> 4d -> d (8d² + 5d)")
    ax_params.set(ylabel="share of the block's parameters", title="where a block's parameters live")
    ax_params.legend(fontsize=8)
    for multiple, (history, unseen, count) in fits.items():
        ax_fit.semilogy(history, label=f"width {multiple}·d ({count} parameters); unseen: {unseen:.3f}")
    ax_fit.set(xlabel="AdamW step", ylabel="mean squared error / variance of the target",
               title="fitting a random non-linear function of 8-number vectors")
    ax_fit.grid(alpha=0.3, which="both")
    ax_fit.legend(fontsize=8)
    return fig


def dropout(curves_by_p, gaps):
    """The fitted curves {p: (curve on 200 points of [-1, 1], x_train, y_train)} with the training points,
    and each one's validation − training gap, gaps {(draw, p): (train mse, val mse)} (draw 0 is drawn)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    grid_x = np.linspace(-1, 1, 200)
    ax.plot(grid_x, np.sin(3 * grid_x), color="gray", lw=1, label="sin(3x)")
    for p, (curve, x_train, y_train) in curves_by_p.items():
        ax.plot(grid_x, curve, label=f"dropout {p}: val − train {gaps[0, p][1] - gaps[0, p][0]:.3f}")
    ax.scatter(x_train[:, 0], y_train[:, 0], color="black", zorder=3, label="10 training points")
    ax.set(xlabel="x", ylabel="y", title="a 1 -> 128 -> 1 network fitted to 10 noisy points")
    ax.legend(fontsize=8)
    return fig
