# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 21: the cost of attention: time and memory grow with the square of the sequence length
#
# Self-attention compares every position with every other. For a sequence of $n$ tokens, the scores of
# one head, $S = QK^\top/\sqrt{d_k}$, form an $n \times n$ matrix. Everything else in a Transformer layer
# (the projections, the feed-forward network) works on each position on its own: it costs $O(n)$.
#
# This lesson measures both terms:
#
# - **memory**: the attention weights kept for the backward, $B \cdot h \cdot n^2$ numbers;
# - **time**: the projections take about $8 n d^2$ FLOPs, attention about $4 n^2 d$ (forward). Their
#   ratio is $n / 2d$.
#
# With `--quick` the lengths are small ($n \le 256$); the full run goes to $n = 2048$, where the $n^2$
# term dominates.
#
# Then the way around the $n^2$ memory: a softmax with a running maximum and a running sum, one block of
# keys at a time, and attention built from it that never makes the $n \times n$ matrix (the idea of
# FlashAttention).
#
# Run: `python lessons/21_cost_of_attention.py` (add `--no-pause` to run straight through).

# %%
import tracemalloc

import numpy as np

from _lesson import Lesson
from _plots import lesson21 as plots
from tinytransformer.machine import one_blas_thread

from tinytransformer import (MultiHeadAttention, ScaledDotProductAttention, backend, causal_mask,
                             masked_softmax)

lesson = Lesson("21 The cost of attention", steps=9)

B, D_MODEL, N_HEAD = 1, 64, 4
D_K = D_MODEL // N_HEAD
LENGTHS = [32, 64, 128, 256] if lesson.quick else [32, 64, 128, 256, 512, 1024, 2048]
REPEATS = 5                             # timed runs per measurement; the median is kept

mha = MultiHeadAttention(D_MODEL, N_HEAD, rng=backend.new_host_rng(0))
sdpa = ScaledDotProductAttention()
# The library goes block by block by itself from T = 256 on (step 8 shows it); here we measure the plain
# attention that keeps every weight, so both layers are told to stay plain.
mha.attention.blockwise_from = sdpa.blockwise_from = None


def mha_forward_backward(n):
    x = backend.randn((B, n, D_MODEL), rng=backend.new_host_rng(1))          # [B, n, d_model]
    y = mha(x, mask=causal_mask(n))                                           # [B, n, d_model]
    mha.backward(backend.randn(y.shape, rng=backend.new_host_rng(2)))


def sdpa_forward_backward(n):
    q, k, v = (backend.randn((B, N_HEAD, n, D_K), rng=backend.new_host_rng(s)) for s in (3, 4, 5))
    out = sdpa(q, k, v, causal_mask(n))                                       # [B, h, n, d_k]
    sdpa.backward(backend.randn(out.shape, rng=backend.new_host_rng(6)))


def median_time(fn, n):
    return lesson.median_time(lambda: fn(n), repeat=REPEATS, synchronize=backend.synchronize)


def peak_memory(fn, *args):
    """Peak bytes allocated during fn(*args), as traced by Python's tracemalloc (NumPy reports its arrays).

    Only what fn allocates counts: arrays made before the call, such as its inputs, do not."""
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# %% [markdown]
# ## The n × n matrix
#
# What must the forward keep for the backward? The attention weights $W = \mathrm{softmax}(S)$: one
# $n \times n$ matrix per head and per sequence. The softmax backward needs them:
#
# $$dS = W \odot \left(dW - \mathrm{rowsum}(dW \odot W)\right)$$
#
# So a layer keeps $B \cdot h \cdot n^2$ numbers, whatever `d_model` is. Here: one multi-head attention
# layer, `d_model` = 64, $h$ = 4 heads, batch $B$ = 1.

# %%
lesson.step("The n × n matrix")
print(f"  d_model = {D_MODEL}, h = {N_HEAD} heads, B = {B}")
kept = {}
for n in LENGTHS:
    mha_forward_backward(n)
    weights = mha.weights                                                     # [B, h, n, n]
    kept[n] = (weights.size, weights.nbytes)
    print(f"  n = {n:>5}: weights {tuple(weights.shape)}, {weights.size:>10,} numbers, "
          f"{weights.nbytes / 2**20:8.2f} MiB ({weights.dtype})")
lesson.check("the kept weights have B·h·n² entries at every n",
             all(kept[n][0] == B * N_HEAD * n * n for n in LENGTHS))
doubling = [kept[2 * n][1] / kept[n][1] for n in LENGTHS if 2 * n in kept]
lesson.check("their memory quadruples when n doubles", all(r == 4 for r in doubling), f"ratios {doubling}")
print(f"  GPT-2 small at its full context (n = 1024, 12 heads, 12 layers): 12·12·1024² = "
      f"{12 * 12 * 1024 ** 2:,} numbers per sequence = {12 * 12 * 1024 ** 2 * 4 / 2**20:.0f} MiB in float32")

# %% [markdown]
# For GPT-2 small that is 151 million numbers per sequence, before anything else is stored.
#
# That is why long-context implementations (FlashAttention) never store the $n \times n$ matrix: they
# compute the softmax block by block, and recompute it in the backward (steps 5 to 8).

# %% [markdown]
# ## Peak memory of forward + backward
#
# Are the kept weights the whole story? No. During the backward other $n \times n$ arrays exist at the
# same time:
#
# - the scores $S$;
# - the gradient of the weights, $dW$;
# - the gradient of the scores, $dS$.
#
# Python's `tracemalloc` counts every NumPy allocation. Its peak over one forward + backward should show
# the same $n^2$ growth.

# %%
lesson.step("Peak memory of forward + backward")
peak = {n: peak_memory(mha_forward_backward, n) for n in LENGTHS}
for n in LENGTHS:
    print(f"  n = {n:>5}: peak {peak[n] / 2**20:8.2f} MiB = {peak[n] / kept[n][1]:.1f} × the kept weights")
n_big = LENGTHS[-2]
ratio = peak[2 * n_big] / peak[n_big]
lesson.check(f"peak memory grows ~n² at large n: from n = {n_big} to {2 * n_big} it rises more than 3× "
             "(n² would give 4×, n 2×)", ratio > 3.0, f"×{ratio:.2f}")

# %% [markdown]
# ## Counting FLOPs: a linear and a quadratic term
#
# Where does the time go? Count the multiply-adds of the forward (2 FLOPs each), with $d$ = `d_model`:
#
# - the four projections ($Q$, $K$, $V$, output): $4 \cdot 2 \cdot n \cdot d^2$, **linear** in $n$;
# - the two attention products, $QK^\top$ and $WV$: $2 \cdot 2 \cdot n^2 \cdot d$, **quadratic** in $n$.
#
# The backward costs about twice the forward. The quadratic part overtakes when $n > 2d$: here
# $2 \cdot 64 = 128$.

# %%
lesson.step("Counting FLOPs: a linear and a quadratic term")
for n in LENGTHS:
    flops_linear, flops_quadratic = 8 * B * n * D_MODEL ** 2, 4 * B * n * n * D_MODEL
    print(f"  n = {n:>5}: forward FLOPs: projections {flops_linear / 1e6:7.1f} M, "
          f"attention {flops_quadratic / 1e6:8.1f} M  (ratio n / 2d = {n / (2 * D_MODEL):.2f})")

# %% [markdown]
# ## Time of forward + backward
#
# Does the clock agree? On a log-log plot, time $\propto n^p$ is a line of slope $p$:
#
# - near 1 at small $n$ (and fixed overheads flatten it further);
# - rising towards 2 as the $n^2$ term takes over.
#
# How we time:
#
# - each time is the median of 5 runs after a warm-up;
# - `backend.synchronize()` is called around the timer (it matters on a GPU, lesson 22);
# - BLAS runs on one thread: these matrices are too small to gain from more, and on a busy machine extra
#   threads only wait for cores and scramble the timings.

# %%
lesson.step("Time of forward + backward")
timings = {"MultiHeadAttention": [], "ScaledDotProductAttention": []}
with one_blas_thread() as pinned:
    print("  BLAS: one thread while timing" if pinned else "  BLAS: threads as they are (no OpenBLAS to set)")
    for n in LENGTHS:
        timings["MultiHeadAttention"].append(median_time(mha_forward_backward, n))
        timings["ScaledDotProductAttention"].append(median_time(sdpa_forward_backward, n))
        print(f"  n = {n:>5}: MHA {1000 * timings['MultiHeadAttention'][-1]:8.2f} ms, attention core "
              f"{1000 * timings['ScaledDotProductAttention'][-1]:8.2f} ms (median of {REPEATS})")
logs = np.log(LENGTHS[-3:])
slopes = {name: float(np.polyfit(logs, np.log(t[-3:]), 1)[0]) for name, t in timings.items()}
for name, slope in slopes.items():
    print(f"  {name}: fitted slope over n = {LENGTHS[-3]}..{LENGTHS[-1]}: time ∝ n^{slope:.2f}")
mha_times = timings["MultiHeadAttention"]
lesson.check(f"time at 4n exceeds time at n (n = {LENGTHS[-3]} -> {LENGTHS[-1]})",
             mha_times[-1] > mha_times[-3], f"{1000 * mha_times[-3]:.2f} ms -> {1000 * mha_times[-1]:.2f} ms")
if not lesson.quick:
    lesson.check("at the largest lengths time grows faster than linearly (slope > 1.2)",
                 slopes["MultiHeadAttention"] > 1.2, f"slope {slopes['MultiHeadAttention']:.2f}")
lesson.figure(plots.time_and_memory(LENGTHS, timings, slopes, peak, kept, D_MODEL, N_HEAD, B),
              "21_attention_cost")

# %% [markdown]
# The fitted exponent depends on the machine: caches, BLAS threads and other programs running all move
# it. What is robust is the direction, so that is what is checked: the time at $4n$ exceeds the time at
# $n$ (and, in the full run, the slope at the largest lengths is above 1.2).

# %% [markdown]
# ## Online softmax: a running maximum and a running sum
#
# Can softmax read the keys one block at a time? It needs two things before it can write a single
# weight:
#
# - the row maximum (subtracted, so that $\exp$ never overflows);
# - the row sum.
#
# Both can be built block by block. Keep two numbers per row, over the scores $s_j$ read so far: the
# largest, $m$, and the sum
#
# $$\ell = \sum_j \exp(s_j - m)$$
#
# When a new block raises $m$ to $m'$, the old terms were taken against the wrong maximum. Multiplying
# $\ell$ by $\exp(m - m')$ puts them right.
#
# Here: a `[256, 256]` score matrix in float64, read in blocks of 32 keys, against the library's
# `masked_softmax`.

# %%
lesson.step("Online softmax: a running maximum and a running sum")
BLOCK = 32                              # keys per block in steps 5 to 8


def online_softmax(scores, block, mask=None):
    """softmax over the last axis of scores [T_q, T_k], reading the keys one block at a time.

    Pass 1 keeps, per row, the largest score so far (running_max) and the sum of exp(score − running_max)
    so far (running_sum); when a block raises the maximum, the sum so far is rescaled by
    exp(old max − new max). Pass 2 writes exp(score − max) / sum. Key blocks the mask hides entirely are
    skipped. Returns the weights [T_q, T_k] and the number of blocks skipped.
    """
    T_q, T_k = scores.shape
    running_max = np.full((T_q, 1), -np.inf)                                  # [T_q, 1]
    running_sum = np.zeros((T_q, 1))                                          # [T_q, 1]
    read, skipped = [], 0
    for start in range(0, T_k, block):
        s = scores[:, start:start + block]                                    # [T_q, block]
        if mask is not None:
            if not mask[:, start:start + block].any():                        # no query sees these keys
                skipped += 1
                continue
            s = np.where(mask[:, start:start + block], s, -np.inf)            # masked -> exp(-inf) = 0
        read.append(start)
        new_max = np.maximum(running_max, s.max(axis=-1, keepdims=True))      # [T_q, 1]
        shift = np.where(np.isfinite(new_max), new_max, 0.0)                  # a row masked so far: no NaN
        running_sum = (running_sum * np.exp(running_max - shift)              # old terms, to the new max
                       + np.exp(s - shift).sum(axis=-1, keepdims=True))
        running_max = new_max
    weights = np.zeros_like(scores)                                           # [T_q, T_k]; skipped: 0
    for start in read:
        s = scores[:, start:start + block]                                    # [T_q, block]
        if mask is not None:
            s = np.where(mask[:, start:start + block], s, -np.inf)
        weights[:, start:start + block] = np.exp(s - running_max) / running_sum
    return weights, skipped


T_SOFTMAX = 256
rng = np.random.default_rng(7)
scores = rng.standard_normal((T_SOFTMAX, T_SOFTMAX))                          # [T, T] float64
print(f"  scores [{T_SOFTMAX}, {T_SOFTMAX}], read in blocks of {BLOCK} keys")
weights, _ = online_softmax(scores, BLOCK)
error = np.abs(weights - masked_softmax(scores)).max()
lesson.check(f"block by block ({BLOCK} keys at a time) equals softmax to 1e-12", error < 1e-12,
             f"max |difference| {error:.1e}")
big = 1000 * scores                                                           # scores in the thousands
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(big) / np.exp(big).sum(axis=-1, keepdims=True)             # without any maximum
print(f"  scores up to {np.abs(big).max():,.0f}: exp without the maximum gives "
      f"{np.isnan(naive).sum():,} NaN of {naive.size:,} weights")
weights, _ = online_softmax(big, BLOCK)
error = np.abs(weights - masked_softmax(big)).max()
lesson.check("with scores in the thousands it still equals softmax to 1e-12 (no overflow)",
             np.isfinite(weights).all() and error < 1e-12, f"max |difference| {error:.1e}")

# %% [markdown]
# ## Skipping the blocks a causal mask hides
#
# With a causal mask, a query never sees the keys after it. Read the queries in blocks of 32 too: then
# every key block above the diagonal is fully masked for its query block. It is skipped, without being
# read.

# %%
lesson.step("Skipping the blocks a causal mask hides")
mask = causal_mask(T_SOFTMAX)                                                 # [T, T]
tiles = [online_softmax(big[q0:q0 + BLOCK], BLOCK, mask[q0:q0 + BLOCK]) for q0 in range(0, T_SOFTMAX, BLOCK)]
weights = np.concatenate([w for w, _ in tiles])                               # [T, T]
skipped, n_blocks = sum(s for _, s in tiles), T_SOFTMAX // BLOCK
print(f"  {n_blocks} × {n_blocks} blocks of {BLOCK} queries × {BLOCK} keys; {skipped} skipped")
error = np.abs(weights - masked_softmax(big, mask)).max()
lesson.check("with a causal mask it equals masked softmax to 1e-12", error < 1e-12,
             f"max |difference| {error:.1e}")
lesson.check(f"and skips the {n_blocks * (n_blocks - 1) // 2} of {n_blocks ** 2} blocks above the diagonal",
             skipped == n_blocks * (n_blocks - 1) // 2, f"{skipped} skipped")

# %% [markdown]
# ## Attention one block of keys at a time (the idea of FlashAttention)
#
# The same bookkeeping gives attention itself, without ever making the weights. Keep an unnormalised
# output and sum over the key blocks:
#
# $$\mathrm{out} = \sum_{\text{blocks}} \exp(S_{\text{block}} - m)\, V_{\text{block}}$$
#
# - whenever the maximum grows from $m$ to $m'$, rescale `out` by $\exp(m - m')$, as $\ell$ was;
# - at the end, divide by the running sum $\ell$.
#
# Each block's scores are `[T, 32]`; the `[T, T]` matrix is never made. FlashAttention does this in a
# GPU's fast on-chip memory, with queries in blocks too, and recomputes the blocks in the backward
# instead of keeping the weights. Here: one head, $d_k$ = 16, float64.

# %%
lesson.step("Attention one block of keys at a time (the idea of FlashAttention)")


def blockwise_attention(q, k, v, block):
    """softmax(q kᵀ/√d_k) v for q, k, v [T, d_k], one block of keys at a time: never the [T, T] scores.

    The output is kept unnormalised and rescaled like the running sum: out = Σ exp(s − m) v over the
    blocks read so far, multiplied by exp(old m − new m) when a block raises the maximum; at the end it
    is divided by the running sum.
    """
    T, d_k = q.shape
    running_max = np.full((T, 1), -np.inf)                                    # [T, 1]
    running_sum = np.zeros((T, 1))                                            # [T, 1]
    out = np.zeros((T, v.shape[-1]))                                          # [T, d_k], unnormalised
    for start in range(0, k.shape[0], block):
        scores = q @ k[start:start + block].T / np.sqrt(d_k)                  # [T, block]
        new_max = np.maximum(running_max, scores.max(axis=-1, keepdims=True)) # [T, 1]
        rescale = np.exp(running_max - new_max)                               # [T, 1]: old terms to new max
        e = np.exp(scores - new_max)                                          # [T, block]
        running_sum = running_sum * rescale + e.sum(axis=-1, keepdims=True)   # [T, 1]
        out = out * rescale + e @ v[start:start + block]                      # [T, d_k]
        running_max = new_max
    return out / running_sum                                                  # [T, d_k]


def plain_attention(q, k, v):
    return masked_softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v                 # [T, T] scores -> [T, d_k]


FLASH_LENGTHS = [256, 512, 1024]
inputs = {}
for T in FLASH_LENGTHS:
    rng = np.random.default_rng(T)
    q, k, v = (rng.standard_normal((T, D_K)) for _ in range(3))               # [T, d_k] each
    inputs[T] = q, k, v                                                       # kept for the next step
    error = np.abs(blockwise_attention(q, k, v, BLOCK) - plain_attention(q, k, v)).max()
    print(f"  T = {T:>5}, d_k = {D_K}, blocks of {BLOCK} keys: max |difference| {error:.1e}")
    lesson.check(f"T = {T}: blockwise equals softmax(QKᵀ/√d_k)V to 1e-12", error < 1e-12, f"{error:.1e}")

# %% [markdown]
# ## Memory: blockwise against plain
#
# What did that save? Python's `tracemalloc` peak over one call of each, in bytes (no timing):
#
# - plain attention makes the `[T, T]` scores and weights: it should grow like $T^2$;
# - blockwise attention holds a few `[T, 32]` arrays at a time: it should grow like $T \cdot 32$.
#
# The library's `ScaledDotProductAttention` does the same by itself from $T = 256$ on, in its forward
# and in its backward (which recomputes each block's weights); we check that too.

# %%
lesson.step("Memory: blockwise against plain")
memory = {}
for T, (q, k, v) in inputs.items():
    memory[T] = peak_memory(plain_attention, q, k, v), peak_memory(blockwise_attention, q, k, v, BLOCK)
    print(f"  T = {T:>5}: peak: plain {memory[T][0] / 2**20:6.2f} MiB, blockwise {memory[T][1] / 2**20:5.2f} MiB;"
          f"  one [T, T] array {T * T * 8 / 2**20:5.2f} MiB, one [T, {BLOCK}] array {T * BLOCK * 8 / 2**10:5.0f} KiB")
lesson.check(f"at every T the blockwise peak is a few [T, {BLOCK}] arrays (under 6) and less than one [T, T]",
             all(memory[T][1] < min(6 * T * BLOCK * 8, T * T * 8) for T in FLASH_LENGTHS),
             ", ".join(f"{memory[T][1] / (T * BLOCK * 8):.2f} [T, {BLOCK}]" for T in FLASH_LENGTHS))
growth = [(memory[2 * T][0] / memory[T][0], memory[2 * T][1] / memory[T][1])
          for T in FLASH_LENGTHS if 2 * T in memory]
lesson.check("per doubling of T the plain peak grows ~4× (T²), the blockwise one ~2× (T·block)",
             all(3.5 < plain < 4.5 and 1.5 < blockwise < 2.5 for plain, blockwise in growth),
             "; ".join(f"plain ×{plain:.2f}, blockwise ×{blockwise:.2f}" for plain, blockwise in growth))
library = ScaledDotProductAttention()                    # the library's own attention, left to choose its path
q, k, v = inputs[FLASH_LENGTHS[-1]]
error = np.abs(library(q, k, v) - plain_attention(q, k, v)).max()
print(f"  the library's ScaledDotProductAttention at T = {len(q)} (block by block from T = "
      f"{library.blockwise_from}): weights kept {library.weights}, max |difference| {error:.1e}")
lesson.check("the library's attention goes block by block by itself at this T: no [T, T] weights kept, the "
             "same result to 1e-12", library.weights is None and error < 1e-12, f"{error:.1e}")

# %% [markdown]
# Only the memory changed. The products are the same $2 T^2 d_k$ multiply-adds ($QK^\top$, then the
# weights times $V$).
#
# Sparse attention patterns (a local window, a few global tokens) go further: they skip most blocks, as
# the causal mask skipped the blocks above the diagonal.

# %% [markdown]
# ## Linear attention: a kernel in place of the softmax
#
# Blockwise attention still does $T^2$ work. **Linear attention** (Katharopoulos et al., 2020) changes the
# model instead: it replaces $e^{q \cdot k}$ by a product of features, $\phi(q) \cdot \phi(k)$ with
# $\phi(x) = \mathrm{elu}(x) + 1 > 0$. Then the sum over keys can be taken first:
#
# $$y_i = \frac{\sum_{j \le i} (\phi(q_i) \cdot \phi(k_j))\, v_j}{\sum_{j \le i} \phi(q_i) \cdot \phi(k_j)}
# = \frac{\phi(q_i)^\top S_i}{\phi(q_i) \cdot z_i}, \qquad S_i = \sum_{j \le i} \phi(k_j)\, v_j^\top, \quad
# z_i = \sum_{j \le i} \phi(k_j)$$
#
# $S_i$ and $z_i$ are running sums: a state of $d_k \cdot d_v + d_k$ numbers, updated once per token, like
# an RNN's. Time and memory are linear in $T$, and generation needs no KV cache. The price: the weights
# are no longer a softmax, so they are less sharp, and such models have trailed softmax attention in
# quality.

# %%
lesson.step("Linear attention: a kernel in place of the softmax")


def phi(x):
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0)))             # elu(x) + 1: positive features


def linear_attention_quadratic(q, k, v):
    """The same model written with the [T, T] matrix: weights φ(q_i)·φ(k_j), causal, rows normalised."""
    A = np.tril(phi(q) @ phi(k).T)                                        # [T, T], zero above the diagonal
    return (A @ v) / A.sum(axis=1, keepdims=True)


def linear_attention_recurrent(q, k, v):
    """One token at a time, with the running sums S [d_k, d_v] and z [d_k]: no [T, T] array."""
    S, z = np.zeros((q.shape[1], v.shape[1])), np.zeros(q.shape[1])
    out = np.empty((q.shape[0], v.shape[1]))                              # [T, d_v]
    for i in range(q.shape[0]):
        fk = phi(k[i])
        S += np.outer(fk, v[i])                                           # add this token's key and value
        z += fk
        fq = phi(q[i])
        out[i] = fq @ S / (fq @ z)
    return out


linear_memory = {}
for T, (q, k, v) in inputs.items():
    error = np.abs(linear_attention_recurrent(q, k, v) - linear_attention_quadratic(q, k, v)).max()
    linear_memory[T] = (peak_memory(linear_attention_quadratic, q, k, v),
                        peak_memory(linear_attention_recurrent, q, k, v))
    print(f"  T = {T:>5}: running sums against the [T, T] form: max |difference| {error:.1e}; peak "
          f"{linear_memory[T][1] / 2**10:5.0f} KiB against {linear_memory[T][0] / 2**20:5.2f} MiB; the state is "
          f"{D_K * D_K + D_K} numbers")
    lesson.check(f"T = {T}: the running sums give the same outputs as the [T, T] form, to 1e-12", error < 1e-12,
                 f"{error:.1e}")
growth = [linear_memory[2 * T][1] / linear_memory[T][1] for T in FLASH_LENGTHS if 2 * T in linear_memory]
lesson.check("per doubling of T the running-sum form's peak grows ~2× (the outputs only), not 4×",
             all(1.5 < g < 2.5 for g in growth), ", ".join(f"×{g:.2f}" for g in growth))
q, k, v = inputs[FLASH_LENGTHS[0]]
causal_softmax_attention = masked_softmax(q @ k.T / np.sqrt(D_K), causal_mask(len(q))) @ v
print(f"  and it is another model: max |difference| from softmax attention on the same q, k, v "
      f"{np.abs(linear_attention_quadratic(q, k, v) - causal_softmax_attention).max():.2f}")

# %%
lesson.done()
