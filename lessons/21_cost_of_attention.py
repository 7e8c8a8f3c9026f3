# %% [markdown]
"""Lesson 21: The cost of attention: time and memory grow with the square of the sequence length.

Self-attention compares every position with every other: the scores S = Q Kᵀ/√d_k of one head form an
n × n matrix for a sequence of n tokens. Everything else in a Transformer layer (the projections, the
feed-forward network) costs O(n): each position on its own. This lesson measures both terms:

    memory:  the attention weights kept for the backward: B · h · n² numbers
    time:    projections ~ 8 n d² FLOPs, attention ~ 4 n² d FLOPs (forward); the ratio is n / 2d

With --quick the lengths are small (n ≤ 256); the full run goes to n = 2048, where the n² term dominates.

Run:  python lessons/21_cost_of_attention.py        (add --no-pause to run straight through)
"""

# %%
import tracemalloc

import numpy as np

from _lesson import Lesson
from tinytransformer.machine import one_blas_thread

from tinytransformer import MultiHeadAttention, ScaledDotProductAttention, backend, causal_mask

lesson = Lesson("21 The cost of attention", __doc__, steps=3)

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


def peak_memory(fn, n):
    """Peak bytes allocated during fn(n), as traced by Python's tracemalloc (NumPy reports its arrays)."""
    tracemalloc.start()
    fn(n)
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
    softmax block by block and recompute it in the backward.""")

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

lesson.done()
