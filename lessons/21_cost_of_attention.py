# %% [markdown]
"""Lesson 21: The cost of attention: time and memory grow with the square of the sequence length.

Self-attention compares every position with every other: the scores S = Q Kᵀ/√d_k of one head form an
n × n matrix for a sequence of n tokens. Everything else in a Transformer layer (the projections, the
feed-forward network) costs O(n): each position on its own. This lesson measures both terms:

    memory:  the attention weights kept for the backward: B · h · n² numbers
    time:    projections ~ 8 n d² FLOPs, attention ~ 4 n² d FLOPs (forward); the ratio is n / 2d

With --quick the lengths are small (n ≤ 256); the full run goes to n = 2048, where the n² term dominates.
Then the way around the n² memory: softmax with a running maximum and sum, one block of keys at a time,
and attention built from it that never makes the n × n matrix (the idea of FlashAttention).

Run:  python lessons/21_cost_of_attention.py        (add --no-pause to run straight through)
"""

# %%
import tracemalloc

import numpy as np

from _lesson import Lesson
from tinytransformer.machine import one_blas_thread

from tinytransformer import (MultiHeadAttention, ScaledDotProductAttention, backend, causal_mask,
                             masked_softmax)

lesson = Lesson("21 The cost of attention", __doc__, steps=5)

B, D_MODEL, N_HEAD = 1, 64, 4
D_K = D_MODEL // N_HEAD
LENGTHS = [32, 64, 128, 256] if lesson.quick else [32, 64, 128, 256, 512, 1024, 2048]
REPEATS = 5                             # timed runs per measurement; the median is kept

mha = MultiHeadAttention(D_MODEL, N_HEAD, rng=backend.new_host_rng(0))
sdpa = ScaledDotProductAttention()


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


# %%
lesson.step("The n × n matrix", f"""
    One multi-head attention layer, d_model = {D_MODEL}, h = {N_HEAD} heads, batch B = {B}. For the backward,
    the forward keeps the attention weights W = softmax(S): one n × n matrix per head and per sequence
    (dS = W ⊙ (dW − rowsum(dW ⊙ W)) needs them). Their size is B · h · n², whatever d_model is.""")
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
lesson.say(f"""
    GPT-2 small at its full context (n = 1024, 12 heads, 12 layers) keeps 12·12·1024² = 151 million such
    numbers per sequence: {12 * 12 * 1024 ** 2 * 4 / 2**20:.0f} MiB in float32, before anything else. That
    is why long-context implementations (FlashAttention) never store the n × n matrix: they compute the
    softmax block by block and recompute it in the backward (steps 4 and 5).""")

# %%
lesson.step("Peak memory of forward + backward", """
    The kept weights are not the only n × n arrays: the scores, the gradient of the weights and of the
    scores exist at the same time during the backward. Python's tracemalloc counts every NumPy
    allocation; its peak over one forward + backward shows the same n² growth.""")
peak = {n: peak_memory(mha_forward_backward, n) for n in LENGTHS}
for n in LENGTHS:
    print(f"  n = {n:>5}: peak {peak[n] / 2**20:8.2f} MiB = {peak[n] / kept[n][1]:.1f} × the kept weights")
n_big = LENGTHS[-2]
ratio = peak[2 * n_big] / peak[n_big]
lesson.check(f"peak memory grows ~n² at large n: from n = {n_big} to {2 * n_big} it rises more than 3× "
             "(n² would give 4×, n 2×)", ratio > 3.0, f"×{ratio:.2f}")

# %%
lesson.step("Time of forward + backward", f"""
    FLOPs of the forward: the four projections 4 · 2 · n · d_model² (linear in n), the two attention
    products Q Kᵀ and W V 2 · 2 · n² · d_model (quadratic); the backward costs about twice the forward.
    The quadratic part overtakes when n > 2 · d_model = {2 * D_MODEL}. On a log-log plot, time ∝ n^p is a
    line of slope p: near 1 at small n (and fixed overheads flatten it further), rising towards 2. Each
    time is the median of {REPEATS} runs after a warm-up, with backend.synchronize() around the timer (it
    matters on a GPU, lesson 22), and BLAS on one thread: these matrices are too small to gain from
    more, and on a busy machine extra threads only wait for cores and scramble the timings.""")
timings = {"MultiHeadAttention": [], "ScaledDotProductAttention": []}
with one_blas_thread() as pinned:
    print("  BLAS: one thread while timing" if pinned else "  BLAS: threads as they are (no OpenBLAS to set)")
    for n in LENGTHS:
        timings["MultiHeadAttention"].append(median_time(mha_forward_backward, n))
        timings["ScaledDotProductAttention"].append(median_time(sdpa_forward_backward, n))
        flops_linear, flops_quadratic = 8 * B * n * D_MODEL ** 2, 4 * B * n * n * D_MODEL
        print(f"  n = {n:>5}: MHA {1000 * timings['MultiHeadAttention'][-1]:8.2f} ms, attention core "
              f"{1000 * timings['ScaledDotProductAttention'][-1]:8.2f} ms;  forward FLOPs: projections "
              f"{flops_linear / 1e6:7.1f} M, attention {flops_quadratic / 1e6:8.1f} M")
logs = np.log(LENGTHS[-3:])
slopes = {name: float(np.polyfit(logs, np.log(t[-3:]), 1)[0]) for name, t in timings.items()}
for name, slope in slopes.items():
    print(f"  {name}: fitted slope over n = {LENGTHS[-3]}..{LENGTHS[-1]}: time ∝ n^{slope:.2f}")
lesson.say("""
    The fitted exponent depends on the machine: caches, BLAS threads and other programs running all
    move it. What is robust is the direction; so that is what is checked.""")
mha_times = timings["MultiHeadAttention"]
lesson.check(f"time at 4n exceeds time at n (n = {LENGTHS[-3]} -> {LENGTHS[-1]})",
             mha_times[-1] > mha_times[-3], f"{1000 * mha_times[-3]:.2f} ms -> {1000 * mha_times[-1]:.2f} ms")
if not lesson.quick:
    lesson.check("at the largest lengths time grows faster than linearly (slope > 1.2)",
                 slopes["MultiHeadAttention"] > 1.2, f"slope {slopes['MultiHeadAttention']:.2f}")

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(12, 4.5))
n = np.array(LENGTHS, dtype=float)
for name, marker in (("MultiHeadAttention", "o-"), ("ScaledDotProductAttention", "s-")):
    ax_time.loglog(n, 1000 * np.array(timings[name]), marker,
                   label=f"{name} (slope {slopes[name]:.2f} at the end)")
anchor = 1000 * mha_times[-1]
ax_time.loglog(n, anchor * (n / n[-1]) ** 2, "k--", lw=1, label="∝ n²")
ax_time.loglog(n, anchor * (n / n[-1]), "k:", lw=1, label="∝ n")
ax_time.set(xlabel="sequence length n", ylabel="forward + backward time (ms)",
            title=f"time (d_model = {D_MODEL}, h = {N_HEAD}, B = {B})")
ax_memory.loglog(n, [peak[m] / 2**20 for m in LENGTHS], "o-", label="peak during forward + backward")
ax_memory.loglog(n, [kept[m][1] / 2**20 for m in LENGTHS], "s-",
                 label="attention weights kept (B·h·n² float32)")
ax_memory.loglog(n, kept[LENGTHS[-1]][1] / 2**20 * (n / n[-1]) ** 2, "k--", lw=1, label="∝ n²")
ax_memory.set(xlabel="sequence length n", ylabel="MiB", title="memory")
for ax in (ax_time, ax_memory):
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
fig.tight_layout()
lesson.figure(fig, "21_attention_cost")

# %%
BLOCK = 32                              # keys per block in steps 4 and 5


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

lesson.step("Online softmax: a running maximum and a running sum", f"""
    softmax needs the row maximum (subtracted so that exp never overflows) and the row sum before it can
    write a single weight. Both can be built one block of keys at a time: keep, per row, the largest score
    so far m and the sum so far l = Σ exp(s − m). When a new block raises m to m', the old terms were
    taken against the wrong maximum; multiplying l by exp(m − m') puts them right. Here a [{T_SOFTMAX},
    {T_SOFTMAX}] score matrix in float64, read in blocks of {BLOCK} keys, against the library's
    masked_softmax.""")
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
lesson.say(f"""
    With a causal mask, a block of queries never sees the keys after it: reading the queries in blocks of
    {BLOCK} too, the key blocks above the diagonal are fully masked and skipped, without being read.""")
mask = causal_mask(T_SOFTMAX)                                                 # [T, T]
tiles = [online_softmax(big[q0:q0 + BLOCK], BLOCK, mask[q0:q0 + BLOCK]) for q0 in range(0, T_SOFTMAX, BLOCK)]
weights = np.concatenate([w for w, _ in tiles])                               # [T, T]
skipped, n_blocks = sum(s for _, s in tiles), T_SOFTMAX // BLOCK
error = np.abs(weights - masked_softmax(big, mask)).max()
lesson.check("with a causal mask it equals masked softmax to 1e-12", error < 1e-12,
             f"max |difference| {error:.1e}")
lesson.check(f"and skips the {n_blocks * (n_blocks - 1) // 2} of {n_blocks ** 2} blocks above the diagonal",
             skipped == n_blocks * (n_blocks - 1) // 2, f"{skipped} skipped")


# %%
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
lesson.step("Attention one block of keys at a time (the idea of FlashAttention)", f"""
    The same bookkeeping gives attention itself without the weights: out = Σ over key blocks of
    exp(S_block − m) V_block, rescaled by exp(m − m') whenever the maximum grows, divided by the running
    sum at the end. Each block's scores are [T, {BLOCK}]; the [T, T] matrix is never made. FlashAttention does
    this in a GPU's fast on-chip memory, with queries in blocks too, and recomputes the blocks in the
    backward instead of keeping the weights. Memory is Python's tracemalloc peak over one call, in bytes, for
    one head with d_k = {D_K} in float64: no timing.""")
memory = {}
for T in FLASH_LENGTHS:
    rng = np.random.default_rng(T)
    q, k, v = (rng.standard_normal((T, D_K)) for _ in range(3))               # [T, d_k] each
    error = np.abs(blockwise_attention(q, k, v, BLOCK) - plain_attention(q, k, v)).max()
    memory[T] = peak_memory(plain_attention, q, k, v), peak_memory(blockwise_attention, q, k, v, BLOCK)
    print(f"  T = {T:>5}: max |difference| {error:.1e};  peak: plain {memory[T][0] / 2**20:6.2f} MiB, "
          f"blockwise {memory[T][1] / 2**20:5.2f} MiB;  one [T, T] array {T * T * 8 / 2**20:5.2f} MiB, "
          f"one [T, {BLOCK}] array {T * BLOCK * 8 / 2**10:5.0f} KiB")
    lesson.check(f"T = {T}: blockwise equals softmax(QKᵀ/√d_k)V to 1e-12", error < 1e-12, f"{error:.1e}")
lesson.check(f"at every T the blockwise peak is a few [T, {BLOCK}] arrays (under 6) and less than one [T, T]",
             all(memory[T][1] < min(6 * T * BLOCK * 8, T * T * 8) for T in FLASH_LENGTHS),
             ", ".join(f"{memory[T][1] / (T * BLOCK * 8):.2f} [T, {BLOCK}]" for T in FLASH_LENGTHS))
growth = [(memory[2 * T][0] / memory[T][0], memory[2 * T][1] / memory[T][1])
          for T in FLASH_LENGTHS if 2 * T in memory]
lesson.check("per doubling of T the plain peak grows ~4× (T²), the blockwise one ~2× (T·block)",
             all(3.5 < plain < 4.5 and 1.5 < blockwise < 2.5 for plain, blockwise in growth),
             "; ".join(f"plain ×{plain:.2f}, blockwise ×{blockwise:.2f}" for plain, blockwise in growth))
lesson.say("""
    The products are the same 2 T² d_k multiply-adds (Q Kᵀ, then the weights times V): only the memory
    changed. Sparse attention patterns (a local window, a few global tokens) go further and skip most
    blocks, as the causal mask skipped the blocks above the diagonal.""")

lesson.done()
