# %% [markdown]
"""Lesson 09: the feed-forward network, the part of a block that is not an average.

Attention's output for a query is Σ_j w_j v_j with weights w_j ≥ 0 that sum to 1: a weighted average
of value vectors. Stack attention layers without anything in between and the result is still one
(data-dependent) average of linearly transformed inputs: attention moves information between positions,
but cannot compute a new non-linear feature of a token. The position-wise feed-forward network
FFN(x) = act(x W₁ + b₁) W₂ + b₂ does that, with a non-linearity act such as ReLU or GELU. This lesson
measures the limit of attention alone, plots the two activations and their derivatives, builds |x|
exactly from two ReLUs, and trains a tiny FeedForward on XOR, which no linear map can fit.

Run:  python lessons/09_feed_forward.py        (add --no-pause to run straight through)
"""

# %%
import numpy as np
from _lesson import Lesson

from tinytransformer import (GELU, AdamW, FeedForward, Linear, MultiHeadAttention, ReLU,
                             ScaledDotProductAttention, backend, check_layer, numerical_gradient)

lesson = Lesson("08 The feed-forward network", __doc__, steps=7)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)

# %%
lesson.step("Attention only averages", """
    Take T = 8 tokens with 2 features (points in the plane) and apply pure self-attention,
    x <- softmax(xxᵀ/√d_k) x, four times. Each output is a convex combination of the inputs, so it lies
    inside their convex hull: no output can go beyond the inputs, and the cloud can only shrink (its
    diameter never grows). Four layers together are a single averaging matrix M = W₄W₃W₂W₁ (rows ≥ 0,
    summing to 1) applied to the original points.""")
points = 2.0 * rng.standard_normal((8, 2))                              # [T, d]
attention = ScaledDotProductAttention()
layers, mixing = [points], np.eye(8)
for _ in range(4):
    layers.append(attention(layers[-1], layers[-1], layers[-1]))        # [T, d]
    mixing = attention.weights @ mixing                                 # [T, T]: the averages compose


def diameter(p):
    return np.linalg.norm(p[:, None] - p[None, :], axis=-1).max()


diameters = [diameter(p) for p in layers]
print("  diameter of the cloud after 0..4 layers: " + "  ".join(f"{d:.3f}" for d in diameters))
lesson.check("the diameter never grows", all(b <= a + 1e-12 for a, b in zip(diameters, diameters[1:])))
lesson.check("every output stays inside the inputs' bounding box",
             np.all(layers[-1] >= points.min(axis=0) - 1e-12) and np.all(layers[-1] <= points.max(axis=0) + 1e-12))
lesson.check("four layers = one averaging matrix M: rows ≥ 0 summing to 1, and output = M x",
             np.all(mixing >= 0) and np.allclose(mixing.sum(axis=1), 1) and np.allclose(mixing @ points, layers[-1]))

# %%
lesson.step("With projections it is still linear in the inputs", """
    Real attention projects first, V = x W_v, and mixes after: y = (softmax(QKᵀ/√d_k) x W_v) W_o. For
    one head without biases that is y = W x P, with W the attention weights (data-dependent) and
    P = W_v W_o (fixed): linear combinations of the input rows, mapped by one fixed matrix. So if the
    input tokens span only a 2-dimensional subspace (6 tokens in d_model = 8 below), so do the outputs;
    with n_head heads, each head maps that subspace its own way, giving at most n_head x 2 dimensions.
    Stacking such layers keeps the form: three give M x P₁P₂P₃. A FeedForward with ReLU (no biases either,
    so nothing is added from outside) leaves the subspace: its output at a token is not a linear
    function of that token.""")
d_model, T = 8, 6
basis = rng.standard_normal((2, d_model))
x = (rng.standard_normal((T, 2)) @ basis)[None]                         # [1, T, d_model], rank 2
backend.seed(0)
one_head = MultiHeadAttention(d_model, n_head=1, bias=False)
two_heads = MultiHeadAttention(d_model, n_head=2, bias=False)
ffn = FeedForward(d_model, activation="relu", bias=False)
y = one_head(x)
W = one_head.weights[0, 0]                                              # [T, T]
P = one_head.v_proj.weight.data @ one_head.out_proj.weight.data        # [d_model, d_model]
singular = {name: np.linalg.svd(a[0], compute_uv=False) for name, a in
            (("input x", x), ("1-head attention", y), ("2-head attention", two_heads(x)),
             ("FeedForward (ReLU)", ffn(x)))}
print("  singular values of the [T, d_model] outputs, divided by the largest:")
for name, sv in singular.items():
    print(f"  {name:>18}: {sv / sv[0]}")
lesson.check("one head: y == W x P (W the attention weights, P = W_v W_o)", np.allclose(y[0], W @ x[0] @ P,
                                                                                    atol=1e-13))
lesson.check("one head: the outputs still span only 2 dimensions",
             singular["1-head attention"][2] < 1e-10 * singular["1-head attention"][0])
lesson.check("two heads: at most 2 x 2 = 4 dimensions",
             singular["2-head attention"][4] < 1e-10 * singular["2-head attention"][0])
lesson.check("the FeedForward's ReLU leaves the subspace (a third singular value > 1% of the first)",
             singular["FeedForward (ReLU)"][2] > 0.01 * singular["FeedForward (ReLU)"][0])

# %%
lesson.step("ReLU and GELU", """
    ReLU(x) = max(0, x): the identity for positive inputs, 0 for negative ones; its derivative is a step
    (1 or 0), so a unit whose input is negative passes no gradient at all. GELU(x) = x·Φ(x) (here in
    GPT-2's tanh form) is a smooth ReLU: ≈ x for large x, ≈ 0 for very negative x, slightly negative in
    between (its minimum is about −0.17 near x = −0.75). On the negative side its derivative is small
    but not 0 (except at that minimum), so a unit with a slightly negative input still learns. Both
    derivatives below are the layers' own backward, fed dy = 1.""")
grid = np.linspace(-4, 4, 161)
curves = {}
for name, act in (("ReLU", ReLU()), ("GELU", GELU())):
    y = act(grid)
    dydx = act.backward(np.ones_like(grid))
    curves[name] = (y, dydx)
    numeric = numerical_gradient(lambda act=act: act(grid).sum(), grid)  # elementwise: df/dx_i = act'(x_i)
    smooth = np.abs(grid) > 1e-3                                        # ReLU has no derivative at 0
    error = np.abs(dydx - numeric)[smooth].max()
    print(f"  {name}: f(-2) = {y[40]:+.4f}, f(-0.5) = {y[70]:+.4f}, f(2) = {y[120]:+.4f};  "
          f"backward vs finite differences, max difference {error:.1e}")
    lesson.check(f"{name}'s backward matches finite differences (away from 0) to 1e-8", error < 1e-8)
relu_y, relu_d = curves["ReLU"]
gelu_y, gelu_d = curves["GELU"]
lesson.check("ReLU's derivative is 0 for x < 0 and 1 for x > 0",
             np.all(relu_d[grid < 0] == 0) and np.all(relu_d[grid > 0] == 1))
lesson.check("GELU's minimum is about −0.17, near x = −0.75",
             abs(gelu_y.min() + 0.17) < 0.01 and abs(grid[np.argmin(gelu_y)] + 0.75) < 0.1,
             f"{gelu_y.min():.4f} at x = {grid[np.argmin(gelu_y)]:.2f}")
lesson.check("GELU ≈ x for x ≥ 3 and ≈ 0 for x ≤ −3 (within 0.01)",
             np.all(np.abs(gelu_y - grid)[grid >= 3] < 0.01) and np.all(np.abs(gelu_y)[grid <= -3] < 0.01))

# %%
lesson.step("|x| from two ReLUs", """
    |x| = ReLU(x) + ReLU(−x). That is a FeedForward with d_model = 1 and two hidden units: W₁ = [1, −1],
    W₂ = [1, 1]ᵀ, no biases. Set those weights in the library's FeedForward and it computes |x| exactly.
    A linear map a·x + b cannot: |x| is V-shaped, and any line misses it by a wide margin.""")
absolute = FeedForward(d_model=1, d_hidden=2, activation="relu")
absolute.fc1.weight.data[...] = [[1.0, -1.0]]                           # [1, 2]
absolute.fc2.weight.data[...] = [[1.0], [1.0]]                          # [2, 1]
absolute.fc1.bias.data[...] = 0.0
absolute.fc2.bias.data[...] = 0.0
xs = np.linspace(-3, 3, 13)[:, None]                                    # [13, 1]
print(f"  x       = {xs[:, 0]}\n  FFN(x)  = {absolute(xs)[:, 0]}")
line = np.polyfit(xs[:, 0], np.abs(xs[:, 0]), 1)
line_error = np.abs(np.polyval(line, xs[:, 0]) - np.abs(xs[:, 0])).max()
print(f"  best line (least squares): {line[0]:+.3f}·x {line[1]:+.3f}, misses |x| by up to {line_error:.2f}")
lesson.check("the hand-set FeedForward computes |x| exactly", np.array_equal(absolute(xs), np.abs(xs)))
lesson.check("the best line misses |x| by more than 1 somewhere on [−3, 3]", line_error > 1.0)

# %%
steps = 400 if lesson.quick else 1000
STOP_AT = 1e-6                                                          # "fitted": far below any bit error
lesson.step("A tiny FFN learns XOR; a linear map cannot", f"""
    The half adder: from two bits (a, b) compute a XOR b (the sum bit) and a AND b (the carry). The
    best any linear map (with bias) can do, found exactly by least squares, is to answer 0.5 for XOR on
    all four inputs (mean squared error 0.25): XOR's ones sit on one diagonal of the square and its
    zeros on the other, and no plane separates them. A FeedForward(2, d_hidden = 8) trained with AdamW
    on the mean squared error fits both bits, with either activation; training stops once the error is
    below {STOP_AT:g} (or after {steps} steps). A Linear layer trained the same way stalls at the
    least-squares optimum. Why stop at all: past ~1e-8 the error measures only rounding, and AdamW's
    step does not shrink with the gradient (it divides the gradient by its own running size, so it stays
    near lr), so the weights keep jittering round the minimum and the error swings between 1e-33 and
    1e-15: noise, not learning.""")
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)             # [4, 2]: (a, b)
Y = np.array([[0, 0], [1, 0], [1, 0], [0, 1]], dtype=float)             # [4, 2]: (a XOR b, a AND b)
with_bias = np.hstack([X, np.ones((4, 1))])
coefficients = np.linalg.lstsq(with_bias, Y, rcond=None)[0]
best_linear = with_bias @ coefficients
best_mse = ((best_linear - Y) ** 2).mean(axis=0)
print(f"  best linear answer, XOR column: {best_linear[:, 0]}   mse XOR {best_mse[0]:.4f}, AND {best_mse[1]:.4f}")
lesson.check("the best linear fit answers 0.5 for XOR everywhere (mse 0.25)",
             np.allclose(best_linear[:, 0], 0.5) and abs(best_mse[0] - 0.25) < 1e-12)


def train(model):
    optimizer = AdamW(model.named_parameters(), lr=0.05, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        model.zero_grad()
        out = model(X)                                                  # [4, 2]
        losses.append(float(((out - Y) ** 2).mean()))
        if losses[-1] < STOP_AT:                                        # fitted; more steps only add noise
            break
        model.backward(2 * (out - Y) / out.size)                        # d(mean squared error)/d(out)
        optimizer.step()
    return losses


histories, models = {}, {}
for name, make in (("FeedForward, ReLU", lambda: FeedForward(2, d_hidden=8, activation="relu")),
                   ("FeedForward, GELU", lambda: FeedForward(2, d_hidden=8, activation="gelu")),
                   ("Linear", lambda: Linear(2, 2))):
    backend.seed(0)
    models[name] = make()
    histories[name] = train(models[name])
    prediction = models[name](X)
    prediction = prediction.round(3) + 0.0                             # + 0.0 turns -0.0 into 0.0
    print(f"  {name:>17}: mse {histories[name][-1]:.2e} after {len(histories[name]) - 1} steps;  XOR answers {prediction[:, 0]}, "
          f"AND answers {prediction[:, 1]}")
for name in ("FeedForward, ReLU", "FeedForward, GELU"):
    lesson.check(f"{name} fits the half adder (mse < {STOP_AT:g}) within {steps} steps",
                 histories[name][-1] < STOP_AT, f"{histories[name][-1]:.1e} at step {len(histories[name]) - 1}")
lesson.check("the trained Linear layer reaches the least-squares optimum, 0.15625, and no lower",
             best_mse.mean() - 1e-9 <= histories["Linear"][-1] < best_mse.mean() + 1e-3,
             f"{histories['Linear'][-1]:.5f}")

# %%
lesson.step("Position-wise: the same small network at every token", """
    In a block, FeedForward sees x [B, T, d_model] and applies the same W₁, W₂ to every token on its
    own: no information moves between positions (that is attention's job). So running it on a whole
    batch equals running it token by token. Its backward (W₂, the activation, W₁, reversed) is checked
    against finite differences.""")
backend.seed(0)
ffn = FeedForward(d_model=4, d_hidden=16)
batch = rng.standard_normal((2, 3, 4))
token_by_token = np.stack([np.stack([ffn(batch[b, t]) for t in range(3)]) for b in range(2)])
lesson.check("FeedForward on [B, T, d] == FeedForward on each token alone",
             np.allclose(ffn(batch), token_by_token, atol=1e-14))
backend.seed(1)
errors = check_layer(FeedForward(d_model=3, d_hidden=5), {"x": backend.randn((2, 2, 3), rng=rng)})
print("  relative errors: " + ", ".join(f"{name} {e:.0e}" for name, e in errors.items()))
lesson.check("FeedForward's backward matches finite differences to 1e-7", max(errors.values()) < 1e-7)

# %%
lesson.step("Pictures", """
    First figure: the point cloud under four layers of pure attention (it can only contract), and ReLU
    and GELU with their derivatives. Second: the XOR output of the trained GELU network over the whole
    square (the bits at the corners), and the training curves against the best any linear map can do.""")
import matplotlib.pyplot as plt  # noqa: E402



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
lesson.figure(fig, "09_averaging_and_activations")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
u = np.linspace(-0.25, 1.25, 121)
square = np.stack(np.meshgrid(u, u), axis=-1).reshape(-1, 2)            # [121*121, 2]
surface = models["FeedForward, GELU"](square)[:, 0].reshape(len(u), len(u))
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
ax2.axhline(best_mse.mean(), color="k", linestyle=":", label="best linear map (least squares)")
ax2.axhline(STOP_AT, color="gray", linestyle="--", lw=1, label=f"stop: mse < {STOP_AT:g}")
ax2.set_xlabel("AdamW step")
ax2.set_ylabel("mean squared error")
ax2.set_title("half adder (XOR, AND): training")
ax2.grid(alpha=0.3, which="both")
ax2.legend()
lesson.figure(fig, "09_xor")

lesson.done()
