# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 06: why attention divides the scores by $\sqrt{d_k}$
#
# Suppose the entries of $q$ and $k$ are independent, with mean 0 and variance 1. Then the dot product
# $q \cdot k$ is a sum of $d_k$ such products, and
#
# $$\mathrm{Var}(q \cdot k) = d_k.$$
#
# Without scaling, the scores grow like $\sqrt{d_k}$, and two things go wrong:
#
# - the softmax puts nearly all the weight on one key (it **saturates**);
# - its gradient, $w_i(\delta_{ij} - w_j)$, goes to 0, so the queries and keys stop learning.
#
# Dividing by $\sqrt{d_k}$ brings the variance back to 1 for every $d_k$. This lesson measures all three
# effects, with the library's `ScaledDotProductAttention` and `softmax_backward`, for $d_k$ from 1 to 512.
#
# Run: `python lessons/06_why_sqrt_dk.py` (add `--no-pause` to run straight through).

# %%
import math

import numpy as np
from _lesson import Lesson
from _plots import lesson06 as plots

from tinytransformer import ScaledDotProductAttention, backend, masked_softmax, numerical_gradient
from tinytransformer.layers.attention import softmax_backward

lesson = Lesson("06 Why divide by √d_k", steps=5)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)

dks = [2 ** p for p in range(10)]                                       # 1 .. 512
n_pairs = 12_000 if lesson.quick else 100_000                           # (q, k) pairs for the variance
n_queries = 400 if lesson.quick else 4_000                              # queries for softmax statistics
T = 16                                                                  # keys per query

# %% [markdown]
# ## The variance of q·k grows like d_k
#
# How large is a score before scaling? Write it out:
#
# $$q \cdot k = \sum_c q_c k_c$$
#
# - Each product $q_c k_c$ has mean 0 and variance $\mathbb{E}[q_c^2]\,\mathbb{E}[k_c^2] = 1$.
# - The $d_k$ products are independent, so their variances add: $\mathrm{Var}(q \cdot k) = d_k$, a spread
#   of $\sqrt{d_k}$.
# - Divided by $\sqrt{d_k}$, the variance is $d_k / d_k = 1$, whatever $d_k$ is.
#
# We measure it on random pairs: the dot product over the first $d_k$ coordinates of 512-dimensional $q$
# and $k$, for each $d_k$.

# %%
lesson.step("The variance of q·k grows like d_k")


def dot_products(n, dims, chunk=4_000):
    """q·k over the first d coordinates, for each d in dims: [n, len(dims)]."""
    columns = np.array(dims) - 1
    out = []
    for start in range(0, n, chunk):
        q = rng.standard_normal((min(chunk, n - start), max(dims)), dtype=np.float32)
        k = rng.standard_normal(q.shape, dtype=np.float32)
        out.append(np.cumsum(q * k, axis=1)[:, columns])               # [chunk, len(dims)]
    return np.concatenate(out).astype(np.float64)


dots = dot_products(n_pairs, dks)
var_unscaled = dots.var(axis=0)
var_scaled = (dots / np.sqrt(dks)).var(axis=0)
print(f"  {n_pairs:,} random (q, k) pairs")
print("   d_k   Var(q·k)   Var(q·k)/d_k   Var(q·k/√d_k)")
for d, vu, vs in zip(dks, var_unscaled, var_scaled):
    print(f"  {d:4d}  {vu:9.2f}   {vu / d:12.3f}   {vs:13.3f}")
lesson.check("Var(q·k) ≈ d_k within 10% for every d_k", np.all(np.abs(var_unscaled / dks - 1) < 0.10),
             f"ratios {np.round(var_unscaled / dks, 3).min()} .. {np.round(var_unscaled / dks, 3).max()}")
lesson.check("Var(q·k/√d_k) ≈ 1 within 10% for every d_k", np.all(np.abs(var_scaled - 1) < 0.10))

# %% [markdown]
# The unscaled variance doubles with every doubling of $d_k$; the scaled one stays at 1.

# %% [markdown]
# ## Without scaling, softmax saturates
#
# Does the size of the scores matter to the softmax? Give each random query $T = 16$ random keys, and
# compare the weights of
#
# - the library's `ScaledDotProductAttention`: $\mathrm{softmax}(qK^\top/\sqrt{d_k})$;
# - the unscaled $\mathrm{softmax}(qK^\top)$.
#
# The unscaled version is the same layer fed $q\sqrt{d_k}$, since $(q\sqrt{d_k}) \cdot k / \sqrt{d_k} = q
# \cdot k$. We also keep each query's softmax Jacobian, for the next step.

# %%
lesson.step("Without scaling, softmax saturates")
print(f"  {n_queries} queries, T = {T} keys each")
attention = ScaledDotProductAttention()
max_scaled, max_unscaled, jacobian_scaled, jacobian_unscaled = [], [], [], []
examples = {}
for d in dks:
    q = rng.standard_normal((n_queries, 1, d))                          # [n, 1, d_k]
    keys = rng.standard_normal((n_queries, T, d))                       # [n, T, d_k]
    values = np.zeros((n_queries, T, 1))                                # only the weights matter here
    attention(q, keys, values)
    w_scaled = attention.weights[:, 0]                                  # [n, T]
    attention(q * math.sqrt(d), keys, values)
    w_unscaled = attention.weights[:, 0]
    max_scaled.append(w_scaled.max(axis=1).mean())
    max_unscaled.append(w_unscaled.max(axis=1).mean())
    # The softmax Jacobian J[a, b] = ∂w_a/∂s_b, row by row: the backward of each one-hot upstream gradient.
    eye = np.eye(T)
    for w, store in ((w_scaled, jacobian_scaled), (w_unscaled, jacobian_unscaled)):
        J = softmax_backward(np.broadcast_to(w[:, None, :], (n_queries, T, T)), eye)   # [n, T, T]
        store.append(np.linalg.norm(J, axis=(1, 2)))                    # Frobenius norm per query
    examples[d] = (w_scaled[0], w_unscaled[0])
print("   d_k   mean max weight: scaled  unscaled")
for d, ms, mu in zip(dks, max_scaled, max_unscaled):
    print(f"  {d:4d}                   {ms:6.3f}    {mu:6.3f}")
top = np.sort(examples[512][1])[::-1][:4]
print(f"  one query at d_k = 512, its 4 largest weights: unscaled {top}, "
      f"scaled {np.sort(examples[512][0])[::-1][:4]}")
lesson.check("unscaled: the largest weight averages above 0.9 at d_k = 512", max_unscaled[-1] > 0.9,
             f"{max_unscaled[-1]:.3f}")
lesson.check("scaled: the largest weight averages below 0.3 at every d_k (uniform would be 1/16)",
             max(max_scaled) < 0.3, f"{min(max_scaled):.3f} .. {max(max_scaled):.3f}")

# %% [markdown]
# Why? At $d_k = 512$ the unscaled scores have a spread of $\sqrt{512} \approx 22$. The largest score beats
# the next by several units, and `exp` turns that into a factor of $e^{\text{several}}$: one key takes
# almost all the weight.
#
# Scaled scores keep a spread of 1, and the attention stays a real mixture.

# %% [markdown]
# ## Saturated softmax passes almost no gradient
#
# Why does saturation stop learning? The gradient that reaches the scores is $ds = J^\top dw$, with the
# softmax Jacobian
#
# $$J_{ab} = \frac{\partial w_a}{\partial s_b} = w_a(\delta_{ab} - w_b),$$
#
# which is what `softmax_backward` computes. If one weight is $\approx 1$ and the rest $\approx 0$, every
# entry of $J$ is $\approx 0$.
#
# Below, the size (Frobenius norm) of $J$ for every query: its median, and the share of queries with
# $|J| < 0.01$, where learning has practically stopped.

# %%
lesson.step("Saturated softmax passes almost no gradient")
median_scaled = [np.median(j) for j in jacobian_scaled]
median_unscaled = [np.median(j) for j in jacobian_unscaled]
dead_scaled = [np.mean(j < 0.01) for j in jacobian_scaled]
dead_unscaled = [np.mean(j < 0.01) for j in jacobian_unscaled]
print("   d_k   median |J|: scaled  unscaled     share with |J| < 0.01: scaled  unscaled")
for d, a, b, c, e in zip(dks, median_scaled, median_unscaled, dead_scaled, dead_unscaled):
    print(f"  {d:4d}              {a:6.3f}   {b:8.5f}                         {c:6.1%}    {e:6.1%}")
lesson.check("unscaled at d_k = 512: the median |J| is less than a tenth of the scaled one",
             median_unscaled[-1] < 0.1 * median_scaled[-1],
             f"{median_unscaled[-1]:.1e} vs {median_scaled[-1]:.2f}")
lesson.check("unscaled at d_k = 512: most queries (> 50%) get |J| < 0.01", dead_unscaled[-1] > 0.5,
             f"{dead_unscaled[-1]:.0%}")
lesson.check("scaled: at every d_k, fewer than 1% of queries get |J| < 0.01", max(dead_scaled) < 0.01,
             f"at most {max(dead_scaled):.2%}")

# %% [markdown]
# Whatever the loss says about the weights, almost nothing gets through to the scores of a saturated
# softmax, hence to $Q$ and $K$. With the scaling, nearly every query keeps learning.

# %% [markdown]
# ## The softmax backward is right
#
# The Jacobians above come from `softmax_backward`. Can we trust it? Two checks, on a saturated row and on
# a spread-out one:
#
# - against the formula $J = \mathrm{diag}(w) - w w^\top$, written out by hand;
# - against finite differences of `masked_softmax`: nudge each score by $\pm h$, and watch
#   $f = \sum w \odot g$ change.

# %%
lesson.step("The softmax backward is right")
for label, scores in (("spread-out", rng.standard_normal(6)), ("saturated", 20.0 * rng.standard_normal(6))):
    w = masked_softmax(scores)
    J = softmax_backward(np.broadcast_to(w, (6, 6)), np.eye(6))
    g = rng.standard_normal(6)
    numeric = numerical_gradient(lambda s=scores, g=g: (masked_softmax(s) * g).sum(), scores)
    error = np.linalg.norm(softmax_backward(w, g) - numeric) / np.linalg.norm(numeric)
    print(f"  {label:>10}: max weight {w.max():.4f}, |J| = {np.linalg.norm(J):.2e}, "
          f"relative error against finite differences {error:.1e}")
    lesson.check(f"{label}: softmax_backward gives J = diag(w) − w wᵀ",
                 np.allclose(J, np.diag(w) - np.outer(w, w), atol=1e-15))
    lesson.check(f"{label}: softmax_backward matches finite differences to 1e-6", error < 1e-6)

# %% [markdown]
# ## Pictures
#
# - Left: $\mathrm{Var}(q \cdot k)$ grows in proportion to $d_k$; $\mathrm{Var}(q \cdot k/\sqrt{d_k})$
#   stays at 1.
# - Middle: the largest attention weight, scaled and unscaled.
# - Right: the median size of the softmax Jacobian. Unscaled, it falls by orders of magnitude as $d_k$
#   grows.

# %%
lesson.step("Pictures")
lesson.figure(plots.why_sqrt_dk(dks, var_unscaled, var_scaled, max_unscaled, max_scaled,
                                median_unscaled, median_scaled, T), "06_why_sqrt_dk")

# %%
lesson.done()
