# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 27: local attention: a window of W positions
#
# Full causal attention lets every position look at all the positions before it: $O(T^2)$ scores, and a
# KV cache that grows with every token. **Local** (sliding-window) attention, as in Longformer's local
# part or Mistral, lets position $i$ look only at the last $W$ positions, $i - W + 1, \ldots, i$.
#
# - In the mask it is a band of width $W$ under the diagonal.
# - One layer is blind beyond its window: we train lesson 03's recall task with it.
# - Stacked layers see further, $W - 1$ positions per layer, as stacked convolutions widen their
#   receptive field: we write a convolution in NumPy and compare.
# - The KV cache needs only the last $W - 1$ positions: its memory stops growing.
#
# Run: `python lessons/27_local_attention.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson27 as plots

from tinytransformer import AdamW, MultiHeadAttention, backend, causal_mask, numerical_gradient, relative_error
from tinytransformer.generate import generate
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("27 Local attention", steps=6)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)


def rng(seed):
    return backend.new_host_rng(seed)


# Settings: --quick trains fewer distances and two seeds instead of three.
V = 8                                     # the recall task's vocabulary: chance is 1/8
W, T_RECALL = 8, 16                       # the window, and the length of every recall sequence
DISTANCES = [1, 7, 8, 15] if lesson.quick else [1, 4, 7, 8, 12, 15]
SEEDS = [0, 1] if lesson.quick else [0, 1, 2]
STEPS, BATCH, LR = 100, 32, 1e-2          # the training budget per model

# %% [markdown]
# ## A window is a band in the mask
#
# Which keys may query $i$ see? With a causal mask, $j \le i$. With a window $W$ as well, $j > i - W$:
#
# $$\mathrm{mask}_{ij} = (i - W < j \le i)$$
#
# `causal_mask(T, window=W)` builds it. Below $T = 8$ and $W = 3$ (1 = may attend). Then a layer that
# uses it, and the number of scores it leaves at a longer length: $T \cdot W - W(W-1)/2$ instead of
# $T(T+1)/2$, linear in $T$ instead of quadratic.

# %%
lesson.step("A window is a band in the mask")
T_small, W_small = 8, 3
band = causal_mask(T_small, window=W_small)                              # [T, T]
print(band.astype(int))
by_rule = np.array([[i - W_small < j <= i for j in range(T_small)] for i in range(T_small)])
lesson.check("mask[i, j] is True exactly when i − W < j ≤ i", np.array_equal(band, by_rule))
layer = MultiHeadAttention(12, 3, rng=rng(0))
layer(backend.randn((2, T_small, 12), rng=rng(1)), mask=band)
outside = layer.weights[..., ~band]                                      # [B, heads, positions outside]
print(f"  attention weights outside the band: {outside.size} numbers, largest |w| = {np.abs(outside).max()}")
lesson.check("the attention weights outside the band are exactly 0, and each row still sums to 1",
             (outside == 0).all() and np.allclose(layer.weights.sum(axis=-1), 1))
T_long, W_long = 1024, 128
kept = int(causal_mask(T_long, window=W_long).sum())
print(f"  T = {T_long}, W = {W_long}: {kept:,} scores with the window, {T_long * (T_long + 1) // 2:,} without "
      f"({T_long * (T_long + 1) / 2 / kept:.1f}× as many)")
lesson.check("the window leaves T·W − W(W − 1)/2 scores of the causal T(T + 1)/2",
             kept == T_long * W_long - W_long * (W_long - 1) // 2, f"{kept:,}")

# %% [markdown]
# This library still computes the whole $T \times T$ score matrix and masks it: the saving in work needs a
# kernel that computes only the band (Longformer's, or FlashAttention's sliding window). The saving in the
# cache it gets for free (step 5).

# %% [markdown]
# ## One layer cannot see past its window
#
# Lesson 03's task: read random tokens (from 8) and, at the last position, name the token $d$ positions
# back. Every sequence here has $T = 16$ tokens, so only $d$ changes.
#
# One block of attention with a window of $W = 8$ sees $d = 0 \ldots 7$ positions back. We train one model
# per distance (100 steps of 32 sequences), test it on 1000 new sequences, at several seeds:
#
# - for $d < W$ the token is in the window, so it should be recalled;
# - for $d \ge W$ it is not, and nothing else in the sequence says what it was: chance, 1/8.
#
# As a control, the same model without the window, at the longest distance.

# %%
lesson.step("One layer cannot see past its window")


def recall_batch(generator, distance, n):
    """n random sequences of T_RECALL tokens; the target at the last position is the token `distance` back."""
    tokens = generator.integers(0, V, (n, T_RECALL))                    # [n, T]
    targets = np.full(tokens.shape, -100)                               # -100: no loss at that position
    targets[:, -1] = tokens[:, T_RECALL - 1 - distance]
    return tokens, targets


def recall_accuracy(distance, seed, window, n_layer=1):
    """Train a GPT of n_layer blocks (window or None) for STEPS steps; its accuracy on 1000 new sequences."""
    model = GPT(GPTConfig(vocab_size=V, block_size=T_RECALL, n_layer=n_layer, n_head=2, n_embd=32,
                          window=window, seed=seed))
    optimizer = AdamW(model.named_parameters(), lr=LR, weight_decay=0.0)
    batches = np.random.default_rng(seed)
    for _ in range(STEPS):
        model.zero_grad()
        model(*recall_batch(batches, distance, BATCH))
        model.backward()
        optimizer.step()
    tokens, targets = recall_batch(np.random.default_rng(10_000 + seed), distance, 1000)
    logits, _ = model(tokens)
    return float((logits[:, -1].argmax(axis=-1) == targets[:, -1]).mean())


accuracy = np.zeros((len(SEEDS), len(DISTANCES)))
control = np.zeros(len(SEEDS))
with backend.using("float32"), one_blas_thread():
    for i, seed in enumerate(SEEDS):
        accuracy[i] = [recall_accuracy(d, seed, W) for d in DISTANCES]
        control[i] = recall_accuracy(DISTANCES[-1], seed, None)
        print(f"  seed {seed}: window {W}, accuracy at d = {DISTANCES}: {accuracy[i]};  "
              f"no window, d = {DISTANCES[-1]}: {control[i]:.3f}")
inside = np.array([d < W for d in DISTANCES])
lesson.check(f"inside the window (d < {W}) the token is recalled: accuracy ≥ 0.9 (every seed)",
             (accuracy[:, inside] >= 0.9).all(), f"lowest {accuracy[:, inside].min():.3f}")
lesson.check(f"beyond it (d ≥ {W}) accuracy is at chance, 1/{V}: below 0.2 (every seed)",
             (accuracy[:, ~inside] < 0.2).all(), f"highest {accuracy[:, ~inside].max():.3f}")
lesson.check(f"without the window the same model recalls d = {DISTANCES[-1]}: ≥ 0.9 (every seed)",
             (control >= 0.9).all(), f"lowest {control.min():.3f}")
lesson.figure(plots.recall(DISTANCES, accuracy, control, W, V, STEPS), "27_recall_with_a_window")

# %% [markdown]
# The cliff is exactly at $d = W$: at $d = W - 1$ the token is the oldest one in the window, at $d = W$
# it has just left it. It is not the distance that defeats the model (without the window it recalls
# $d = 15$), it is the mask.

# %% [markdown]
# ## A convolution's receptive field
#
# A convolutional network (CNN) has the same limit: each output sees a few neighbouring inputs. A causal
# one-dimensional convolution with kernel size $k$ and weights $w_0, \ldots, w_{k-1}$ (each a
# `[c, c]` matrix, on $c$ channels):
#
# $$y_t = \sum_{i=0}^{k-1} x_{t-i}\, w_i \qquad (x_t = 0 \text{ for } t < 0)$$
#
# Its backward sends $dy_t$ back along the same taps: each tap $i$ adds $dy_t\, w_i^\top$ into $dx_{t-i}$.
#
# The **receptive field** of $y_t$ is the set of inputs it depends on: $x_{t-k+1} \ldots x_t$, $k$ of
# them. A second convolution on top (after a tanh) reaches $k - 1$ further: $2(k-1) + 1$ inputs.
# We write both in NumPy, check the backward against finite differences, and find the receptive field
# from the gradient of the last output.

# %%
lesson.step("A convolution's receptive field")


def conv_forward(x, w):
    """Causal convolution: x [T, c], w [k, c, c] -> y [T, c], y_t = Σ_i x_{t−i} w_i."""
    k, T = w.shape[0], x.shape[0]
    padded = np.concatenate([np.zeros((k - 1, x.shape[1])), x])         # [k − 1 + T, c]: x_t = 0 for t < 0
    return sum(padded[k - 1 - i:k - 1 - i + T] @ w[i] for i in range(k))  # row t: x_{t−i} w_i


def conv_backward(dy, w):
    """dx [T, c] from dy [T, c]: every tap sends dy_t back to x_{t−i}, through w_iᵀ."""
    k, T = w.shape[0], dy.shape[0]
    dpadded = np.zeros((k - 1 + T, dy.shape[1]))
    for i in range(k):
        dpadded[k - 1 - i:k - 1 - i + T] += dy @ w[i].T
    return dpadded[k - 1:]                                               # the padding has no gradient


def conv_stack(x, kernels):
    """tanh(conv(...tanh(conv(x)))): one tanh after every convolution; returns the output and the states."""
    states = [x]
    for w in kernels:
        states.append(np.tanh(conv_forward(states[-1], w)))
    return states[-1], states


def conv_stack_backward(dy, kernels, states):
    for w, h in zip(reversed(kernels), reversed(states[1:])):
        dy = conv_backward(dy * (1 - h ** 2), w)                         # through the tanh, then the taps
    return dy


k, T_conv, c = W_small, 16, 3                                          # k = W of the next step
x_conv = backend.randn((T_conv, c), rng=rng(2))
kernels = [backend.randn((k, c, c), std=0.6, rng=rng(3 + n)) for n in range(3)]
g = np.zeros((T_conv, c))
g[-1] = backend.randn((c,), rng=rng(9))                                 # a loss on the last output only
conv_reach, fd_errors = {}, []
for n_layer in (1, 2, 3):
    _, states = conv_stack(x_conv, kernels[:n_layer])
    dx = conv_stack_backward(g, kernels[:n_layer], states)
    numerical = numerical_gradient(lambda: (conv_stack(x_conv, kernels[:n_layer])[0] * g).sum(), x_conv)
    fd_errors.append(relative_error(dx, numerical))
    seen = np.flatnonzero(np.abs(dx).max(axis=1) > 0)                   # inputs with a non-zero gradient
    conv_reach[n_layer] = seen
    print(f"  {n_layer} convolution(s) of k = {k}: backward vs finite differences {fd_errors[-1]:.1e};  "
          f"the last output's gradient is non-zero at inputs {seen.min()}..{seen.max()} ({len(seen)} of {T_conv})")
lesson.check("the convolutions' backward matches finite differences to 1e-8", max(fd_errors) < 1e-8,
             f"worst {max(fd_errors):.1e}")
lesson.check(f"one convolution's last output depends on exactly its last k = {k} inputs",
             np.array_equal(conv_reach[1], np.arange(T_conv - k, T_conv)))
lesson.check(f"two stacked reach exactly 2(k − 1) + 1 = {2 * (k - 1) + 1} inputs, three 3(k − 1) + 1 = "
             f"{3 * (k - 1) + 1}", all(np.array_equal(conv_reach[n], np.arange(T_conv - n * (k - 1) - 1, T_conv))
                                       for n in (2, 3)))

# %% [markdown]
# Each layer adds $k - 1$: a deep CNN sees far only by stacking many layers. The lectures contrast this
# with attention, where one layer connects every pair of positions. A window takes that away, and gives
# attention back a CNN's locality.

# %% [markdown]
# ## Each layer reaches W − 1 further
#
# Does local attention widen the same way? Position $i$ in layer 1 sees inputs $i - W + 1 \ldots i$. In
# layer 2 it sees layer-1 positions $i - W + 1 \ldots i$, each of which saw $W - 1$ further back. So
# $L$ layers see $L(W - 1)$ positions back: the receptive field of $L$ convolutions with $k = W$.
#
# We test it as the library's tests do: in GPTs of 1, 2 and 3 blocks with a window of $W = 3$, change
# the token $d$ positions before the last one, for every $d$, and see whether the last position's
# logits move at all (float64, random weights).

# %%
lesson.step("Each layer reaches W − 1 further")
T_reach = T_conv
idx = rng(10).integers(0, 7, (1, T_reach))
moved, smallest_move = {}, {}
for n_layer in (1, 2, 3):
    model = GPT(GPTConfig(vocab_size=7, block_size=T_reach, n_layer=n_layer, n_head=2, n_embd=8,
                          positional="rope", window=W_small, seed=n_layer))
    last = model(idx)[0][0, -1]                                          # [vocab]
    change = []
    for d in range(T_reach):
        changed = idx.copy()
        changed[0, T_reach - 1 - d] = (changed[0, T_reach - 1 - d] + 1) % 7
        change.append(float(np.abs(model(changed)[0][0, -1] - last).max()))
    change = np.array(change)
    moved[n_layer] = np.flatnonzero(change > 0)                          # distances d whose change arrives
    smallest_move[n_layer] = change[moved[n_layer]].min()
    print(f"  {n_layer} block(s), W = {W_small}: the last logits move for d = 0..{moved[n_layer].max()} "
          f"(smallest change {smallest_move[n_layer]:.1e}); not at all for d = {moved[n_layer].max() + 1}..{T_reach - 1}")
reach = {n: int(moved[n].max()) for n in moved}
lesson.check(f"the last position is reached from exactly L·(W − 1) positions back: "
             f"{[n * (W_small - 1) for n in (1, 2, 3)]} for L = 1, 2, 3",
             all(np.array_equal(moved[n], np.arange(n * (W_small - 1) + 1)) for n in (1, 2, 3)),
             f"reach {reach}")
same_as_conv = all(np.array_equal(T_conv - 1 - moved[n][::-1], conv_reach[n]) for n in (1, 2, 3))
lesson.check(f"the same positions as the receptive field of L stacked convolutions with k = W = {k}",
             same_as_conv)
lesson.figure(plots.receptive_fields(conv_reach, moved, T_conv, k, W_small), "27_receptive_fields")
mistral = 32 * (4096 - 1)
print(f"  a model of Mistral 7B's shape (32 layers, W = 4096): reach 32·4095 = {mistral:,} positions back")

# %% [markdown]
# So a deep stack of windows still connects distant positions, but in $\lceil d / (W - 1) \rceil$ hops
# through the layers, as a CNN does, rather than in one. Sparse patterns such as Longformer's add a few
# global positions that every position sees, to keep some one-hop paths.

# %% [markdown]
# ## The KV cache keeps the last W − 1 positions
#
# When generating, the next query (at position $t$) sees keys $t - W + 1 \ldots t$: its own, which it
# brings, and the $W - 1$ before it. Nothing older will ever be seen again, by any later query. So the
# cache of each layer keeps only the last $W - 1$ positions.
#
# Two GPTs with the same weights (2 blocks of 4 heads of $d_k = 8$, RoPE, float64), with and without a
# window of $W = 8$: a prompt of 8 tokens, then one token at a time up to 128. We count the cache's
# bytes as the sequence grows.

# %%
lesson.step("The KV cache keeps the last W − 1 positions")
LENGTH, PROMPT = 128, W
cache_config = dict(vocab_size=V, block_size=LENGTH, n_layer=2, n_head=4, n_embd=32, positional="rope",
                    seed=5)
models = {W: GPT(GPTConfig(**cache_config, window=W)), None: GPT(GPTConfig(**cache_config))}
for n, (_, p) in enumerate(models[W].named_parameters()):               # larger weights than GPT-2's, so
    if p.data.ndim == 2:                                                 # that the tokens depend on the
        p.data[...] = backend.randn(p.data.shape, std=0.3, rng=rng(100 + n))   # context
for (name, p), (_, q) in zip(models[W].named_parameters(), models[None].named_parameters()):
    q.data[...] = p.data                                                 # the same weights in both
sequence = rng(11).integers(0, V, (1, LENGTH))
measured = {W: {}, None: {}}
for window, model in models.items():
    caches = [{} for _ in model.blocks]
    model.forward_cached(sequence[:, :PROMPT], caches)
    measured[window][PROMPT] = sum(c["k"].nbytes + c["v"].nbytes for c in caches)
    for t in range(PROMPT, LENGTH):
        model.forward_cached(sequence[:, t:t + 1], caches)
        measured[window][t + 1] = sum(c["k"].nbytes + c["v"].nbytes for c in caches)
for length in (PROMPT, 16, 32, 64, 128):
    print(f"  after {length:>3} tokens: cache {measured[None][length]:>7,} bytes without a window, "
          f"{measured[W][length]:>5,} with W = {W}")
per_position = 2 * cache_config["n_layer"] * cache_config["n_embd"] * 8    # K and V, every block, float64
lesson.check(f"with the window the cache holds min(t, W − 1) positions after t tokens: flat at {W - 1} positions, "
             f"{per_position * (W - 1):,} bytes, at every length from {PROMPT} to {LENGTH}",
             all(b == per_position * min(t, W - 1) for t, b in measured[W].items()))
lesson.check("without it the cache grows by one position per token: bytes = length · bytes per position",
             all(b == per_position * t for t, b in measured[None].items()))
lesson.figure(plots.cache_memory(measured, W), "27_cache_memory")

# %% [markdown]
# The cache of a windowed layer is a ring of $W - 1$ positions: a model of Mistral's shape keeps at most
# 4095 positions per layer, however long the conversation. (A real implementation overwrites the oldest
# slot in place; this one drops it by slicing.)

# %% [markdown]
# ## The same tokens as without the cache
#
# Dropping the old keys must change nothing: the cached path must give the logits of the full forward,
# which masks the same keys away.
#
# - The logits of every position, computed one token at a time with the cache, against one forward of
#   the whole sequence: to $10^{-12}$ in float64.
# - Generation of 100 tokens with and without the cache, greedy and sampled with one seed: the same
#   tokens.
# - And the window matters: the model without it computes other logits.

# %%
lesson.step("The same tokens as without the cache")
model = models[W]
full, _ = model(sequence)                                                # [1, LENGTH, V]
caches = [{} for _ in model.blocks]
steps = [model.forward_cached(sequence[:, :PROMPT], caches)]
steps += [model.forward_cached(sequence[:, t:t + 1], caches) for t in range(PROMPT, LENGTH)]
cached = np.concatenate(steps, axis=1)                                  # [1, LENGTH, V]
difference = float(np.abs(cached - full).max())
print(f"  {LENGTH} positions: |cached − full forward| ≤ {difference:.1e}")
lesson.check("the cached logits equal the full forward's at every position, to 1e-12", difference < 1e-12)
prompt = sequence[:, :PROMPT]
with_cache = generate(model, prompt, 100, temperature=0, use_cache=True)
without = generate(model, prompt, 100, temperature=0, use_cache=False)
print(f"  greedy, with the cache:    {with_cache[0, PROMPT:PROMPT + 36].tolist()} ...")
print(f"  greedy, without the cache: {without[0, PROMPT:PROMPT + 36].tolist()} ...")
sampled = [generate(model, prompt, 100, temperature=1.0, seed=0, use_cache=cache) for cache in (True, False)]
print(f"  sampled (T = 1, seed 0), with the cache: {sampled[0][0, PROMPT:PROMPT + 36].tolist()} ...")
lesson.check("greedy generation, and sampling with one seed, give the same 100 tokens with and without the cache",
             np.array_equal(with_cache, without) and np.array_equal(*sampled))
unwindowed, _ = models[None](sequence)
differ = np.flatnonzero(np.abs(unwindowed - full).max(axis=-1)[0] > 1e-9)    # positions whose logits differ
first = int(differ.min()) if differ.size else None
print(f"  the same weights without the window: the logits first differ at position {first}")
lesson.check(f"the window changes the logits from position W = {W} on, and not before",
             first == W, f"first difference at {first}")

# %% [markdown]
# Position $W$ is the first one whose window leaves out a token (token 0): from there on the two models
# see different things.
#
# What local attention trades:
#
# - **gains**: scores linear in $T$ (with a banded kernel), a cache of fixed size, one more inductive
#   bias (nearby tokens matter most), as a CNN has;
# - **loses**: one-hop access to the distant past. A fact $d$ tokens back needs
#   $\lceil d / (W - 1) \rceil$ layers to arrive, and one layer alone cannot recall it at all.

# %%
lesson.done()
