# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 09: the feed-forward network, the part of a block that is not an average
#
# Attention's output for a query is a weighted average of value vectors:
#
# $$y = \sum_j w_j v_j, \qquad w_j \ge 0, \quad \sum_j w_j = 1$$
#
# Stack attention layers with nothing in between, and the result is still one (data-dependent) average
# of linearly transformed inputs. Attention moves information between positions, but it cannot compute a
# new non-linear feature of a token.
#
# The position-wise feed-forward network does that, with a non-linearity act such as ReLU or GELU:
#
# $$\mathrm{FFN}(x) = \mathrm{act}(x W_1 + b_1)\, W_2 + b_2$$
#
# In this lesson we:
#
# - measure the limit of attention alone;
# - plot the two activations and their derivatives;
# - build $|x|$ exactly from two ReLUs;
# - train a tiny `FeedForward` on XOR, which no linear map can fit;
# - see why the hidden layer is $4 \cdot d_{\mathrm{model}}$ wide (where a block's parameters live), and
#   what dropout does.
#
# Run: `python lessons/09_feed_forward.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson09 as plots

from tinytransformer import (GELU, AdamW, Dropout, FeedForward, Linear, MultiHeadAttention, ReLU,
                             ScaledDotProductAttention, backend, check_layer, numerical_gradient)
lesson = Lesson("09 The feed-forward network", steps=12)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Attention only averages
#
# What can attention alone do to a set of points? Take $T = 8$ tokens with 2 features (points in the
# plane), and apply pure self-attention four times:
#
# $$x \leftarrow \mathrm{softmax}(x x^\top / \sqrt{d_k})\, x$$
#
# - Each output is a convex combination of the inputs, so it lies inside their convex hull.
# - No output can go beyond the inputs: the cloud can only shrink (its diameter never grows).
# - Four layers together are a single averaging matrix $M = W_4 W_3 W_2 W_1$ ($W_i$: layer $i$'s
#   attention weights; rows ≥ 0, summing to 1), applied to the original points.

# %%
lesson.step("Attention only averages")
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

# %% [markdown]
# ## With projections it is still linear in the inputs
#
# Real attention projects first, $V = x W_v$, and mixes after:
#
# $$y = (\mathrm{softmax}(QK^\top/\sqrt{d_k})\, x W_v)\, W_o$$
#
# For one head without biases, that is $y = W x P$:
#
# - $W$, the attention weights, depends on the data;
# - $P = W_v W_o$ is fixed.
#
# So the outputs are linear combinations of the input rows, mapped by one fixed matrix. Below, 6 input
# tokens in $d_{\mathrm{model}} = 8$ span only a 2-dimensional subspace:
#
# - one head keeps the outputs in those 2 dimensions;
# - with `n_head` heads, each head maps the subspace its own way: at most $n_{\mathrm{head}} \times 2$
#   dimensions;
# - stacking such layers keeps the form: three give $M x P_1 P_2 P_3$;
# - a `FeedForward` with ReLU (no biases either, so nothing is added from outside) leaves the subspace:
#   its output at a token is not a linear function of that token.
#
# We count dimensions with singular values: each one near 0 is a dimension that is not there.

# %%
lesson.step("With projections it is still linear in the inputs")
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

# %% [markdown]
# ## ReLU and GELU
#
# Two common activations:
#
# - $\mathrm{ReLU}(x) = \max(0, x)$: the identity for positive inputs, 0 for negative ones. Its
#   derivative is a step (1 or 0), so a unit whose input is negative passes no gradient at all.
# - $\mathrm{GELU}(x) = x \cdot \Phi(x)$ (here in GPT-2's tanh form) is a smooth ReLU: $\approx x$ for
#   large $x$, $\approx 0$ for very negative $x$, slightly negative in between. Its minimum is about
#   −0.17, near $x$ = −0.75.
#
# On the negative side GELU's derivative is small but not 0 (except at that minimum). So a unit with a
# slightly negative input still learns.
#
# Both derivatives below are the layers' own backward, fed $dy = 1$, and compared with finite
# differences.

# %%
lesson.step("ReLU and GELU")
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

# %% [markdown]
# ## |x| from two ReLUs
#
# $$|x| = \mathrm{ReLU}(x) + \mathrm{ReLU}(-x)$$
#
# That is a `FeedForward` with $d_{\mathrm{model}} = 1$ and two hidden units: $W_1 = [1, -1]$,
# $W_2 = [1, 1]^\top$, no biases. Set those weights in the library's `FeedForward`, and it computes $|x|$
# exactly.
#
# Can a line $a \cdot x + b$ do it? No: $|x|$ is V-shaped, and any line misses it by a wide margin.

# %%
lesson.step("|x| from two ReLUs")
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

# %% [markdown]
# ## No linear map fits XOR
#
# The half adder: from two bits $(a, b)$, compute
#
# - $a$ XOR $b$, the sum bit;
# - $a$ AND $b$, the carry.
#
# What is the best any linear map (with bias) can do? Least squares finds it exactly: answer 0.5 for XOR
# on all four inputs, a mean squared error of 0.25.
#
# Why no better? XOR's ones sit on one diagonal of the square and its zeros on the other, and no plane
# separates them.

# %%
lesson.step("No linear map fits XOR")
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)             # [4, 2]: (a, b)
Y = np.array([[0, 0], [1, 0], [1, 0], [0, 1]], dtype=float)             # [4, 2]: (a XOR b, a AND b)
with_bias = np.hstack([X, np.ones((4, 1))])
coefficients = np.linalg.lstsq(with_bias, Y, rcond=None)[0]
best_linear = with_bias @ coefficients
best_mse = ((best_linear - Y) ** 2).mean(axis=0)
print(f"  best linear answer, XOR column: {best_linear[:, 0]}   mse XOR {best_mse[0]:.4f}, AND {best_mse[1]:.4f}")
lesson.check("the best linear fit answers 0.5 for XOR everywhere (mse 0.25)",
             np.allclose(best_linear[:, 0], 0.5) and abs(best_mse[0] - 0.25) < 1e-12)

# %% [markdown]
# ## A tiny FFN learns XOR; a linear map cannot
#
# Now train, with AdamW on the mean squared error:
#
# - a `FeedForward(2, d_hidden = 8)`, once with ReLU and once with GELU;
# - a `Linear` layer, the same way.
#
# Training stops once the error is below `STOP_AT`, or after a fixed number of steps (both printed
# below). The FFNs should fit both bits, with either activation. The `Linear` layer should stall at the
# least-squares optimum.

# %%
lesson.step("A tiny FFN learns XOR; a linear map cannot")
steps = 400 if lesson.quick else 1000
STOP_AT = 1e-6                                                          # "fitted": far below any bit error
print(f"  training stops once mse < {STOP_AT:g}, or after {steps} steps")


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

# %% [markdown]
# The `Linear` layer ends at 0.15625: the least-squares error averaged over the two bits, 0.25 for XOR and
# 0.0625 for AND.
#
# Why stop at all? Past about $10^{-8}$ the error measures only rounding. And AdamW's step does not
# shrink with the gradient: it divides the gradient by its own running size, so the step stays near `lr`.
# The weights keep jittering round the minimum, and the error swings between $10^{-33}$ and $10^{-15}$:
# noise, not learning.

# %% [markdown]
# ## Position-wise: the same small network at every token
#
# In a block, `FeedForward` sees x `[B, T, d_model]` and applies the same $W_1$, $W_2$ to every token on
# its own. No information moves between positions: that is attention's job.
#
# - So running it on a whole batch must equal running it token by token.
# - Its backward ($W_2$, the activation, $W_1$, in reverse) is checked against finite differences.

# %%
lesson.step("Position-wise: the same small network at every token")
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

# %% [markdown]
# ## Pictures
#
# - First figure: the point cloud under four layers of pure attention (it can only contract), and ReLU
#   and GELU with their derivatives.
# - Second: the XOR output of the trained GELU network over the whole square (the bits at the corners),
#   and the training curves against the best any linear map can do.

# %%
lesson.step("Pictures")
lesson.figure(plots.averaging_and_activations(points, layers, grid, curves), "09_averaging_and_activations")
u = np.linspace(-0.25, 1.25, 121)
square = np.stack(np.meshgrid(u, u), axis=-1).reshape(-1, 2)            # [121*121, 2]: the whole square
surface = models["FeedForward, GELU"](square)[:, 0].reshape(len(u), len(u))   # its XOR bit
lesson.figure(plots.xor(u, surface, X, Y, histories, best_mse.mean(), STOP_AT), "09_xor")

# %% [markdown]
# ## Why 4·d_model: the width is where the parameters live
#
# The FFN's hidden layer is $4 \cdot d_{\mathrm{model}}$ wide: 512 → 2048 in the 2017 paper, 768 → 3072
# in GPT-2 small. Why so wide?
#
# Read $W_1$'s $4 \cdot d_{\mathrm{model}}$ columns as questions asked of every token's vector:
#
# - each hidden unit takes the dot product of the vector with its column: "how much does it point this
#   way?";
# - GELU keeps the answer if it is positive;
# - $W_2$'s matching row is what the unit adds back when it answers.
#
# More width is more questions per vector. It is also most of a block:
#
# - attention has four $d \times d$ matrices ($W_q$, $W_k$, $W_v$, $W_o$): $4d^2$ weights;
# - the FFN has two $d \times 4d$ ones: $8d^2$.
#
# So two thirds of a block's parameters sit in its FFN. Below, the counts from the library's layers.

# %%
lesson.step("Why 4·d_model: the width is where the parameters live")
widths = {}
for d_model, n_head in ((64, 4), (768, 12)):                            # a lesson-sized block, GPT-2 small's
    ffn_count = FeedForward(d_model).num_parameters()
    attention_count = MultiHeadAttention(d_model, n_head).num_parameters()
    widths[d_model] = (FeedForward(d_model).d_hidden, ffn_count, attention_count)
    print(f"  d_model {d_model:>3}: hidden width {widths[d_model][0]:>4};  FFN {ffn_count:>9,} parameters, "
          f"attention {attention_count:>9,};  FFN share {ffn_count / (ffn_count + attention_count):.3f}")
lesson.check("GPT-2 small's FFN: 768 -> 3072 -> 768, 4,722,432 parameters (8d² + 5d)",
             widths[768][0] == 3072 and widths[768][1] == 4_722_432, f"{widths[768][1]:,}")
shares = [ffn / (ffn + att) for _, ffn, att in widths.values()]
lesson.check("about two thirds of a block's attention + FFN parameters are the FFN's (0.66 to 0.67)",
             all(0.66 < share < 0.67 for share in shares), ", ".join(f"{share:.4f}" for share in shares))

# %% [markdown]
# ## A wider FFN fits better
#
# Does the width pay off? A measured fit: a `FeedForward` of width $1 \cdot d$ and one of width
# $4 \cdot d$ learn the same random non-linear function of 8-number vectors (the output of a wider random
# network).
#
# - The same optimiser and the same number of steps for both.
# - Both are scored on vectors they never saw.

# %%
lesson.step("A wider FFN fits better")
d_in = 8
backend.seed(100)
teacher = FeedForward(d_in, d_hidden=64)                                # the function to learn
for parameter in teacher.parameters():
    parameter.data *= 3.0                                               # large weights: clearly non-linear
X_fit, X_new = rng.standard_normal((512, d_in)), rng.standard_normal((512, d_in))
Y_fit, Y_new = teacher(X_fit), teacher(X_new)
fit_steps = 150 if lesson.quick else 300
fits = {}
for multiple in (1, 4):
    backend.seed(0)
    student = FeedForward(d_in, d_hidden=multiple * d_in)
    optimizer = AdamW(student.named_parameters(), lr=1e-2, weight_decay=0.0)
    history = []
    for _ in range(fit_steps):
        student.zero_grad()
        out = student(X_fit)                                            # [512, 8]
        history.append(float(((out - Y_fit) ** 2).mean() / Y_fit.var()))
        student.backward(2 * (out - Y_fit) / out.size)
        optimizer.step()
    unseen = float(((student(X_new) - Y_new) ** 2).mean() / Y_new.var())
    fits[multiple] = (history, unseen, student.num_parameters())
    print(f"  width {multiple}·d = {multiple * d_in:>2}: {student.num_parameters():>4} parameters;  "
          f"after {fit_steps} steps, error on unseen vectors {unseen:.3f} of the target's variance")
lesson.check("the 4·d-wide FFN fits the function more than twice as well as the 1·d-wide one, on unseen vectors",
             fits[4][1] < 0.5 * fits[1][1], f"{fits[4][1]:.3f} vs {fits[1][1]:.3f}")
lesson.figure(plots.hidden_width(widths, fits), "09_hidden_width")

# %% [markdown]
# ## Dropout: noise while training, nothing at evaluation
#
# `Dropout(p)`:
#
# - while training, zeroes each activation with probability $p$ and multiplies the survivors by
#   $1/(1 - p)$, so that every activation keeps its mean;
# - at evaluation (`model.eval()`), is the identity.
#
# Its backward zeroes the same entries as its forward. Below, the library's `Dropout` with $p = 0.2$, on
# an array of ones.

# %%
lesson.step("Dropout: noise while training, nothing at evaluation")
drop = Dropout(0.2, seed=0)
ones = np.ones((1000, 100))
dropped = drop(ones)
kept_fraction = float((dropped != 0).mean())
print(f"  training: {1 - kept_fraction:.4f} of the entries zeroed, the others = "
      f"{np.unique(dropped[dropped != 0])}, mean {dropped.mean():.4f}")
lesson.check("training: about p = 0.2 of the entries are zeroed (±0.005), the others become 1/(1 − p) = 1.25",
             abs((1 - kept_fraction) - 0.2) < 0.005 and np.allclose(dropped[dropped != 0], 1.25))
lesson.check("training: the mean is kept (1 ± 0.01)", abs(float(dropped.mean()) - 1.0) < 0.01)
gradient = drop.backward(np.ones_like(ones))
lesson.check("training: the backward zeroes exactly the entries the forward zeroed",
             np.array_equal(gradient == 0, dropped == 0))
drop.eval()
lesson.check("evaluation: the output is the input itself, and the backward passes dy unchanged",
             np.array_equal(drop(ones), ones) and np.array_equal(drop.backward(2 * ones), 2 * ones))

# %% [markdown]
# ## Dropout against overfitting
#
# Why add noise? A network that cannot count on any one unit cannot memorise its training points one unit
# at a time. So it overfits less: the gap between the loss on the training data and on new data shrinks.
#
# GPT-2's blocks apply dropout ($p = 0.1$) to the attention weights and to the output of each attention
# and each FFN; nanoGPT's Shakespeare model uses 0.2.
#
# The experiment:
#
# - a small network, 1 → 128 → 1 with GELU, and dropout 0.5 on its hidden layer, or none;
# - fitted to 10 noisy points of $\sin(3x)$, on three draws of the points;
# - the error on 500 new points is the validation loss.

# %%
lesson.step("Dropout against overfitting")


class SmallNet:
    """x [N, 1] -> Linear(1, 128) -> GELU -> Dropout(p) -> Linear(128, 1), backward in reverse."""

    def __init__(self, p, seed):
        backend.seed(seed)
        self.layers = [Linear(1, 128), GELU(), Dropout(p, seed=seed), Linear(128, 1)]

    def named_parameters(self):
        return [(f"{i}.{name}", parameter) for i, layer in enumerate(self.layers)
                for name, parameter in layer.named_parameters()]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)


noisy_steps = 800                     # --quick too: fewer steps do not overfit enough to show the gap
gaps = {}
curves_by_p = {}
for draw in range(3):
    points = np.random.default_rng(draw)
    x_train = points.uniform(-1, 1, (10, 1))
    y_train = np.sin(3 * x_train) + 0.4 * points.standard_normal((10, 1))
    x_val = points.uniform(-1, 1, (500, 1))
    y_val = np.sin(3 * x_val) + 0.4 * points.standard_normal((500, 1))
    for p in (0.0, 0.5):
        net = SmallNet(p, draw)
        optimizer = AdamW(net.named_parameters(), lr=2e-2, weight_decay=0.0)
        for _ in range(noisy_steps):
            net.train()
            for _, parameter in net.named_parameters():
                parameter.grad.fill(0)
            out = net(x_train)
            net.backward(2 * (out - y_train) / out.size)
            optimizer.step()
        net.train(False)
        train_mse = float(((net(x_train) - y_train) ** 2).mean())
        val_mse = float(((net(x_val) - y_val) ** 2).mean())
        gaps[draw, p] = (train_mse, val_mse)
        if draw == 0:
            grid_x = np.linspace(-1, 1, 200)[:, None]
            curves_by_p[p] = (net(grid_x)[:, 0], x_train, y_train)
print(f"  {'draw':>4}  {'p':>4}  {'train':>7}  {'val':>7}  {'val − train':>11}")
for (draw, p), (train_mse, val_mse) in gaps.items():
    print(f"  {draw:>4}  {p:>4}  {train_mse:>7.3f}  {val_mse:>7.3f}  {val_mse - train_mse:>11.3f}")
lesson.check("with dropout the network fits its 10 training points less closely, in every draw",
             all(gaps[draw, 0.5][0] > gaps[draw, 0.0][0] for draw in range(3)))
lesson.check("with dropout the gap between validation and training error is smaller, in every draw",
             all(gaps[draw, 0.5][1] - gaps[draw, 0.5][0] < gaps[draw, 0.0][1] - gaps[draw, 0.0][0]
                 for draw in range(3)))
lesson.figure(plots.dropout(curves_by_p, gaps), "09_dropout")

# %% [markdown]
# In a language model the same gap appears when a model trains long on little text. Lesson 15 trains
# every stage of the model on one short budget, too short to open a gap, so there dropout plays no part.

# %%
lesson.done()
