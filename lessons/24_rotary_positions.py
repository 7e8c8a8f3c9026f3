# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 24: rotary positions (RoPE), attention that sees how far apart two tokens are
#
# Lesson 04 added a position vector $P_t$ to every token vector, before the first block. LLaMA and most
# decoders since 2023 do something else: they leave the token vectors alone and **turn** every query and
# key by an angle proportional to its position. This is rotary position embedding (RoPE, Su et al. 2021).
#
# - Each pair of features of a query or key at position $m$ is rotated by the angle $m \cdot \theta_i$.
# - Then the score of a query at $m$ and a key at $n$ depends on the positions only through $n - m$.
# - Its backward is the inverse rotation (an exercise).
#
# And one question measured, not assumed: trained on windows of $T$ characters, how does each kind of
# position do on windows of $2T$ and $4T$?
#
# Run: `python lessons/24_rotary_positions.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson24 as plots

from tinytransformer import AdamW, backend, check_layer
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.layers.rotary import RotaryEmbedding, rope_angles, rotate_half
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.optim import clip_grad_norm, cosine_lr

lesson = Lesson("24 Rotary positions", steps=7)
library_rope_backward = RotaryEmbedding.backward   # kept: step 4 compares yours with it
# With --exercise, your rope_backward (lessons/exercises/) runs in place of the library's, in training too.
RotaryEmbedding.backward = lesson.exercise("rope_backward", RotaryEmbedding.backward)
backend.use("numpy", dtype="float64")  # the exact steps run in float64; the training in float32
np.set_printoptions(precision=3, suppress=True)

# Settings: --quick trains for fewer iterations and two seeds, so the lesson runs in seconds.
T = 32                                   # the context the models are trained on
N_LAYER, N_HEAD, N_EMBD = 2, 2, 32       # head size 16: eight pairs of features
ITERS = 150 if lesson.quick else 800
SEEDS = [0, 1] if lesson.quick else [0, 1, 2]
BATCH, LR = 16, 1e-2
N_VAL = 256                              # validation windows of 4T characters, the same for every model

# %% [markdown]
# ## One pair, turned by m·θ
#
# What does RoPE do to one vector? Take a query $x$ with $d_k = 8$ features, as four pairs. The library
# (as Hugging Face's LLaMA) pairs feature $i$ with feature $i + d_k/2$. At position $m$, pair $i$ is
# turned by the angle $m\,\theta_i$, with $\theta_i = 10000^{-2i/d_k}$:
#
# $$y_i = x_i \cos m\theta_i - x_{i+d_k/2} \sin m\theta_i, \qquad
# y_{i+d_k/2} = x_i \sin m\theta_i + x_{i+d_k/2} \cos m\theta_i$$
#
# the $2 \times 2$ rotation matrix times the pair $(x_i, x_{i+d_k/2})$.
#
# The library writes all pairs at once as $y = x \odot \cos + \mathrm{rotate\_half}(x) \odot \sin$, where
# `rotate_half` maps $(x_1, x_2) \mapsto (-x_2, x_1)$ on the two halves.
#
# Below: the same $x$ placed at positions $0..5$, turned by `RotaryEmbedding(8)`, and pair 1 redone by
# hand with the $2 \times 2$ matrix.

# %%
lesson.step("One pair, turned by m·θ")
d_k = 8
rope = RotaryEmbedding(d_k)
x = backend.randn((d_k,), rng=backend.new_host_rng(0))
y = rope(np.tile(x, (6, 1)))                                          # [T=6, d_k]: x at positions 0..5
i, half = 1, d_k // 2
theta_i = 10000.0 ** (-2 * i / d_k)
by_hand = []
for m in range(6):
    c, s = np.cos(m * theta_i), np.sin(m * theta_i)
    by_hand.append(np.array([[c, -s], [s, c]]) @ np.array([x[i], x[i + half]]))
by_hand = np.array(by_hand)                                           # [6, 2]
print(f"  x = {x}")
print(f"  pair {i} = (x[{i}], x[{i + half}]) = {np.array([x[i], x[i + half]])}, θ_{i} = {theta_i:g} rad per position")
for m in (0, 1, 5):
    print(f"    position {m}: turned by {m * theta_i:.2f} rad -> {y[m, [i, i + half]]}   by hand {by_hand[m]}")
lesson.check(f"pair {i} at position m is the 2×2 rotation by m·θ_{i} of (x[{i}], x[{i + half}]), for m = 0..5",
             np.allclose(y[:, [i, i + half]], by_hand, atol=1e-14, rtol=0))
pair_lengths = np.hypot(y[:, :half], y[:, half:])                     # [6, 4]: the length of every pair
lesson.check("lengths are kept: every pair, at every position, is as long as it was (so is the whole vector)",
             np.allclose(pair_lengths, np.hypot(x[:half], x[half:]), atol=1e-14, rtol=0)
             and np.allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x), atol=1e-14, rtol=0))
lesson.check("position 0 is not turned at all", np.array_equal(y[0], x))
lesson.figure(plots.pairs_turning(x, rope, positions=12), "24_pairs_turning")

# %% [markdown]
# Pair 0 turns one radian per position, pair 3 a thousandth. Nothing is added to the vector: its
# content (the length of every pair) is untouched, and only its direction says where it is.

# %% [markdown]
# ## Why: the score sees only n − m
#
# A rotation by $a$ followed by one by $b$ is a rotation by $a + b$, and $R_a^\top = R_{-a}$. So for a
# query $q$ at position $m$ and a key $k$ at position $n$:
#
# $$(R_m q) \cdot (R_n k) = q^\top R_m^\top R_n k = q^\top R_{n-m}\, k$$
#
# The positions enter only as the distance $n - m$. Move both tokens 5 or 1000 positions further and the
# score does not change.
#
# We build the score matrix $S_{mn}$ of one $q$ and one $k$ (`d_k = 16`) at positions $s .. s + 63$, for
# several shifts $s$ (the library's `offset`). Then we break it on purpose: angles $m^2 \theta_i$
# instead of $m\,\theta_i$, still a rotation of every pair, but no longer linear in $m$.

# %%
lesson.step("Why: the score sees only n − m")
d_k, L = 16, 64
rope = RotaryEmbedding(d_k)
q, k = (backend.randn((d_k,), rng=backend.new_host_rng(seed)) for seed in (1, 2))
Q, K = np.tile(q, (L, 1)), np.tile(k, (L, 1))                         # [L, d_k]: the same q, k everywhere


def rope_scores(offset):
    """S[m, n] = (R_{offset+m} q) · (R_{offset+n} k), by the library's RotaryEmbedding."""
    return rope(Q, offset=offset) @ rope(K, offset=offset).T         # [L, L]


def squared_angle_scores(offset):
    """The same with angles (offset + m)²·θ_i: every pair still rotated, but not by an angle linear in m."""
    m = np.arange(offset, offset + L, dtype=np.float64)[:, None] ** 2
    angles = np.concatenate([m * 10000.0 ** (-np.arange(0, d_k, 2) / d_k)] * 2, axis=-1)    # [L, d_k]
    turn = lambda v: v * np.cos(angles) + rotate_half(v) * np.sin(angles)                   # noqa: E731
    return turn(Q) @ turn(K).T


S = rope_scores(0)
shift_gaps = {s: float(np.abs(rope_scores(s) - S).max()) for s in (1, 5, 1000)}
diagonal_gap = float(np.abs(S[1:, 1:] - S[:-1, :-1]).max())          # S[m+1, n+1] against S[m, n]
along_row = float(np.ptp(S[L - 1]))                                  # one query, keys at every distance
squared = squared_angle_scores(0)
squared_gap = float(np.abs(squared_angle_scores(5) - squared).max())
print("  RoPE: largest change of S when both positions move by s: "
      + ", ".join(f"s = {s}: {gap:.1e}" for s, gap in shift_gaps.items()))
print(f"  RoPE: S[m+1, n+1] − S[m, n], largest: {diagonal_gap:.1e};  but along one row S ranges over "
      f"{along_row:.2f} (|q|·|k| = {np.linalg.norm(q) * np.linalg.norm(k):.2f})")
print(f"  angles m²·θ: largest change of S when both positions move by 5: {squared_gap:.2f}")
lesson.check("RoPE: moving both positions by 1, 5 or 1000 leaves every score unchanged (to 1e-10)",
             max(shift_gaps.values()) < 1e-10, f"{max(shift_gaps.values()):.1e}")
lesson.check("so S is constant along every diagonal: it is a function of n − m alone (to 1e-10)",
             diagonal_gap < 1e-10, f"{diagonal_gap:.1e}")
lesson.check("and the distance does count: one query's scores over the keys vary (by more than 1)",
             along_row > 1.0, f"{along_row:.2f}")
lesson.check("break it: with angles m²·θ (not linear in m) a shift of 5 changes the scores (by more than 1)",
             squared_gap > 1.0, f"{squared_gap:.2f}")
lesson.figure(plots.score_matrices(S, squared), "24_scores_by_distance")

# %% [markdown]
# Why does $m^2$ fail? $R_m^\top R_n$ turns by $n\theta - m\theta = (n - m)\theta$ only because the angle
# is linear in the position; $n^2 - m^2$ is not a function of $n - m$.
#
# Lesson 04's additive table had the same property for $P_t \cdot P_{t+k}$ alone. But a score there is
# $(x_m + P_m) W_q \cdot (x_n + P_n) W_k$, with cross terms such as $x_m W_q \cdot P_n W_k$ that
# depend on where $n$ is, not on how far. RoPE has no such terms: position acts on $q$ and $k$ only
# by the rotation.

# %% [markdown]
# ## Fast pairs see near, slow pairs far
#
# Why a different $\theta_i$ for every pair? Over the context, a pair turning fast goes round many
# times; one turning slowly hardly moves.
#
# - Pair 0 ($\theta_0 = 1$) turns once every $2\pi \approx 6.3$ positions: it tells distance 1 from 2,
#   but it confuses distances that differ by whole turns (0 and 44 are 7.0 turns apart).
# - The slowest pair ($d_k = 16$: $\theta_7 = 10000^{-14/16}$) turns once in about 20,000 positions:
#   across a context of 32 it barely moves, but it separates distances thousands apart.
#
# Together the pairs give every distance its own pattern, as the sinusoidal table did for positions
# (lesson 04). We measure each pair's turn per position from the library's output (the angle between
# its position-1 and position-0 versions), and each pair's share of the score $q \cdot R_{n-m} k$
# against the distance.

# %%
lesson.step("Fast pairs see near, slow pairs far")
half = d_k // 2
theta = 10000.0 ** (-2 * np.arange(half) / d_k)                      # [d_k/2]: the formula
e = np.tile(np.r_[np.ones(half), np.zeros(half)], (2, 1))            # every pair = (1, 0), at positions 0, 1
turned = rope(e)                                                     # [2, d_k]
measured = np.arctan2(turned[1, half:], turned[1, :half])            # the angle of each pair at position 1
print("  turn per position, pair by pair (measured): " + " ".join(f"{a:.4f}" for a in measured))
print("  period 2π/θ_i in positions:                  " + " ".join(f"{2 * np.pi / t:,.0f}" for t in theta))
lesson.check(f"the library turns pair i by θ_i = 10000^(−2i/{d_k}) per position, for each of the {half} pairs",
             np.allclose(measured, theta, atol=1e-12, rtol=0))
distances = np.arange(0, 4096)
cos, sin = rope_angles(len(distances), d_k)                          # [distances, d_k]
rotated_k = k * cos + rotate_half(k) * sin                           # R_r k for every distance r
share = (q * rotated_k)[:, :half] + (q * rotated_k)[:, half:]        # [distances, pairs]: pair i's share
codes = np.concatenate([cos[:4 * T, :half], sin[:4 * T, :half]], axis=1)   # each distance's angles, as points
closest = min(np.linalg.norm(codes[a] - codes[b]) for a in range(4 * T) for b in range(a))
print(f"  pair 0: distance 44 is {44 * theta[0] / (2 * np.pi):.3f} turns; cos(44·θ_0) = {np.cos(44 * theta[0]):.4f}"
      f" against cos(0) = 1: it confuses distances 0 and 44")
print(f"  over distances 0..{4 * T - 1}: the closest two patterns of all {half} pairs are {closest:.3f} apart")
lesson.check("alone, the fastest pair cannot tell distance 0 from 44 (its share differs by < 2% of its size)",
             abs(share[44, 0] - share[0, 0]) < 0.02 * np.linalg.norm(q[[0, half]]) * np.linalg.norm(k[[0, half]]))
lesson.check(f"all {half} pairs together give every distance up to 4T = {4 * T} a pattern of its own "
             f"(no two closer than 0.5)", closest > 0.5, f"{closest:.3f}")
slow = share[:, half - 1]
slow_size = np.linalg.norm(q[[half - 1, d_k - 1]]) * np.linalg.norm(k[[half - 1, d_k - 1]])
lesson.check(f"the slowest pair barely moves across the context (< 2% of its size over {T} positions) but "
             f"does across thousands (> 10% over {len(distances) - 1})",
             np.ptp(slow[:T]) < 0.02 * slow_size and np.ptp(slow) > 0.1 * slow_size,
             f"{np.ptp(slow[:T]) / slow_size:.3f} and {np.ptp(slow) / slow_size:.2f} of its size")
lesson.figure(plots.pair_shares(distances, share, theta, T), "24_fast_and_slow_pairs")

# %% [markdown]
# The base 10000 (`rope_theta`) sets the slowest period. Models that read long contexts raise it:
# $\theta_i = \mathrm{base}^{-2i/d_k}$, so a larger base slows every pair but the first.

# %% [markdown]
# ## Backward: the inverse rotation
#
# The forward is $y = R_m x$ for each position's pairs: linear, with no parameters. So the backward is
# its transpose, $dx = R_m^\top dy$. A rotation's transpose is its inverse, the rotation by $-m\theta_i$:
#
# $$dx = dy \odot \cos - \mathrm{rotate\_half}(dy \odot \sin)$$
#
# (cos is even, sin odd; and the transpose of `rotate_half` is $-$`rotate_half`). Exercise
# `rope_backward` asks you to write it (run this lesson with `--exercise`). It is checked three ways, in
# float64:
#
# - against finite differences, at offset 0 and at offset 7 (positions 7, 8, ..., as a KV cache sees them);
# - against the library's backward;
# - backward after forward gives the input back: $R_m^\top R_m = I$.

# %%
lesson.step("Backward: the inverse rotation")
rope = RotaryEmbedding(d_k)
x = backend.randn((2, 3, 5, d_k), rng=backend.new_host_rng(3))       # [B, heads, T, d_k]
errors = {offset: check_layer(rope, {"x": x}, forward_kwargs={"offset": offset})["x"] for offset in (0, 7)}
print("  dx against finite differences: " + ", ".join(f"offset {o}: {err:.1e}" for o, err in errors.items()))
lesson.check("RotaryEmbedding's backward matches finite differences to 1e-8, at offset 0 and at offset 7",
             max(errors.values()) < 1e-8, ", ".join(f"{err:.1e}" for err in errors.values()))
dy = backend.randn(x.shape, rng=backend.new_host_rng(4))
rope(x, offset=7)
ours = rope.backward(dy)
library = library_rope_backward(rope, dy)
lesson.check("it equals the library's backward (to 1e-12)", np.allclose(ours, library, atol=1e-12, rtol=0),
             f"{np.abs(ours - library).max():.0e}")
back = rope.backward(rope(x, offset=7))
lesson.check("backward(forward(x)) = x: the backward turns by −mθ, undoing the forward (to 1e-12)",
             np.allclose(back, x, atol=1e-12, rtol=0), f"{np.abs(back - x).max():.0e}")

# %% [markdown]
# In a GPT with `positional="rope"`, every attention layer turns its queries and keys after splitting
# them into heads (values are not turned), and its backward turns $dq$ and $dk$ back before the
# projections' backward. The whole model's gradients are checked by finite differences in
# `tests/test_modern_gpt.py`.

# %% [markdown]
# ## Three kinds of position, trained at T
#
# Now the measurement. Three small character GPTs learn Tiny Shakespeare on windows of $T = 32$:
#
# - **learned**: GPT-2's table of $T$ rows;
# - **sinusoidal**: the 2017 paper's fixed table, with token vectors of the paper's size (std 1) and an
#   untied output layer, as in lesson 19 (at GPT-2's std 0.02 the table drowns them and this budget
#   barely leaves the character frequencies);
# - **RoPE**: no table at all; queries and keys turned inside every attention.
#
# The same budget for each: 2 layers, 2 heads of 16, $d = 32$; AdamW, lr 0.01 with warmup and cosine
# decay, batches of 16 windows; in float32. Each is trained from 2 seeds with `--quick` (150 iterations),
# 3 without (800). Every model is read on the same 256 validation windows of $4T = 128$ characters,
# drawn once.

# %%
lesson.step("Three kinds of position, trained at T")
data = TextDataset(find_shakespeare().read_text(encoding="utf-8"))
V = data.tokenizer.vocab_size
KINDS = ("learned", "sinusoidal", "rope")


def config(kind, block_size, seed, window=None):
    return GPTConfig(vocab_size=V, block_size=block_size, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD,
                     positional=kind, tie_weights=kind != "sinusoidal", seed=seed, window=window)


def new_model(kind, seed):
    model = GPT(config(kind, T, seed))
    if kind == "sinusoidal":        # token vectors of the table's size (lesson 04), as in lesson 19
        table = model.wte.weight.data
        table[...] = backend.randn(table.shape, 1.0, backend.new_host_rng(seed), table.dtype)
    return model


def train(kind, seed):
    model = new_model(kind, seed)
    optimizer = AdamW(model.named_parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(seed)
    for it in range(ITERS):
        x, y = data.get_batch("train", BATCH, T, rng)
        model.zero_grad()
        model(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step(cosine_lr(it, lr=LR, min_lr=LR / 10, warmup_iters=20, lr_decay_iters=ITERS))
    return model


def loss_by_position(model, length, window=None):
    """The trained weights in a GPT of block_size `length` (and local attention of `window` positions, if
    given): the loss at every position of the first `length` characters of the validation windows, [length]."""
    longer = GPT(config(model.config.positional, length, model.config.seed, window))
    longer.load_state_dict(model.state_dict())
    logits, _ = longer(val_x[:, :length])
    z = backend.to_numpy(logits).astype(np.float64)
    log_p = z - z.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, val_y[:, :length, None], -1)[..., 0].mean(axis=0)


with backend.using("float32"), one_blas_thread():
    val_x, val_y = data.get_batch("val", N_VAL, 4 * T, np.random.default_rng(1000))   # [N_VAL, 4T]
    models = {(kind, seed): train(kind, seed) for seed in SEEDS for kind in KINDS}
    at_T = {key: loss_by_position(model, T) for key, model in models.items()}          # [T] each
sizes = {kind: models[kind, SEEDS[0]].num_parameters() for kind in KINDS}
for kind in KINDS:
    print(f"  {kind:>10}: {sizes[kind]:,} parameters; val loss at T = {T}: "
          + ", ".join(f"{at_T[kind, seed].mean():.3f}" for seed in SEEDS) + f"  (seeds {SEEDS})")
unigram = float(np.log(len(data.train)) - np.mean(np.log(np.bincount(data.train)[data.train])))
print(f"  for comparison: ln V = {np.log(V):.3f}; character frequencies alone {unigram:.3f}")
lesson.check("RoPE adds no parameters: the RoPE model has exactly T·d fewer than the learned table's",
             sizes["learned"] - sizes["rope"] == T * N_EMBD, f"{sizes['learned'] - sizes['rope']:,}")
lesson.check("every model, at every seed, learns beyond the character frequencies (val loss at T below them)",
             all(loss.mean() < unigram for loss in at_T.values()),
             f"highest {max(loss.mean() for loss in at_T.values()):.3f}")

# %% [markdown]
# The three are not equal at $T$ with this budget; the question here is what happens to each one's own
# loss past $T$.

# %% [markdown]
# ## Past T: windows of 2T and 4T
#
# Each trained model's weights go into a GPT with `block_size` $2T$ and $4T$ (nothing else changes),
# which reads the first $2T$ or $4T$ characters of the same validation windows.
#
# - The **learned** table has no rows past $T$: the model refuses a longer input, and its weights do not
#   fit a model with a longer table. It cannot be evaluated there at all.
# - **Sinusoidal** and **RoPE** can compute any position. Is what they compute there any good?
#
# A model is causal, so its first $T$ predictions in a window of $2T$ are those of the window of $T$:
# any change of the mean loss comes from the positions past $T$.

# %%
lesson.step("Past T: windows of 2T and 4T")
learned = models["learned", SEEDS[0]]
refusals = []
for attempt in (lambda: learned(val_x[:, :2 * T]),
                lambda: GPT(config("learned", 2 * T, 0)).load_state_dict(learned.state_dict())):
    try:
        with backend.using("float32"):
            attempt()
        refusals.append("no error")
    except ValueError as error:
        refusals.append(str(error).split(". ")[0])
print("  learned, a window of 2T:        " + refusals[0])
print("  learned, into a 2T-row table:   " + refusals[1])
lesson.check("the learned table cannot be evaluated past T: a longer input and a longer table both raise",
             "no error" not in refusals)
with backend.using("float32"), one_blas_thread():
    by_position = {(kind, seed): loss_by_position(models[kind, seed], 4 * T)
                   for kind in ("sinusoidal", "rope") for seed in SEEDS}
first_T = max(float(np.abs(by_position[key][:T] - at_T[key]).max()) for key in by_position)
lesson.check("causal: in a window of 4T the first T positions' losses are those of the window of T (to 1e-4)",
             first_T < 1e-4, f"{first_T:.0e}")
mean_at = {(kind, seed, n): float(by_position[kind, seed][:n * T].mean())
           for kind in ("sinusoidal", "rope") for seed in SEEDS for n in (1, 2, 4)}
growth = {(kind, seed, n): mean_at[kind, seed, n] - mean_at[kind, seed, 1]
          for kind in ("sinusoidal", "rope") for seed in SEEDS for n in (2, 4)}
print("  mean val loss over windows of T, 2T, 4T (per seed), and its growth over the loss at T:")
for kind in ("sinusoidal", "rope"):
    for seed in SEEDS:
        print(f"    {kind:>10} seed {seed}: " + "  ".join(f"{n}T {mean_at[kind, seed, n]:.3f}" for n in (1, 2, 4))
              + f"   growth at 2T {growth[kind, seed, 2]:+.3f}, at 4T {growth[kind, seed, 4]:+.3f}")
lesson.check("RoPE does not extrapolate for free: its loss grows at 2T, and more at 4T (every seed)",
             all(0 < growth["rope", seed, 2] < growth["rope", seed, 4] for seed in SEEDS))
lesson.check("but at 2T RoPE's loss grows less than sinusoidal's, at every seed",
             all(growth["rope", seed, 2] < growth["sinusoidal", seed, 2] for seed in SEEDS),
             ", ".join(f"{growth['rope', seed, 2]:+.3f} vs {growth['sinusoidal', seed, 2]:+.3f}" for seed in SEEDS))
curves = {kind: np.mean([by_position[kind, seed] for seed in SEEDS], axis=0) for kind in ("sinusoidal", "rope")}
lesson.figure(plots.loss_by_position(curves, T), "24_loss_past_T")

# %%
ratio = np.mean([growth["rope", seed, 2] / growth["sinusoidal", seed, 2] for seed in SEEDS])
lesson.say(f"""
    Measured here: past T both get worse, and RoPE's loss grows {ratio:.2f} times as much as sinusoidal's
    at 2T (mean over {len(SEEDS)} seeds). The positions past T are where the damage is (the figure):
    neither model was ever trained on them.""")

# %% [markdown]
# ## A window of T: only distances seen in training
#
# What goes wrong for RoPE past $T$? Its scores depend on distances only, and in training no query ever
# met a key $T$ or more positions back. In a window of $4T$ it meets keys up to $4T - 1$ back: angles
# its slow pairs never took.
#
# A test of that explanation: keep the same weights, and let each position attend only to the last $T$
# positions (local attention, `GPTConfig(window=T)`). Then every distance a query meets was met in
# training, whatever the position.
#
# - If RoPE's trouble is unseen **distances**, its loss past $T$ should come back to what it is inside
#   $T$ (at positions $T/2..T$, which see about as much context), and stop growing with the position.
# - Sinusoidal positions are **absolute**: the window does not give them back the positions they never
#   saw.

# %%
lesson.step("A window of T: only distances seen in training")
with backend.using("float32"), one_blas_thread():
    windowed = {(kind, seed): loss_by_position(models[kind, seed], 4 * T, window=T)
                for kind in ("sinusoidal", "rope") for seed in SEEDS}
late = lambda curve: float(curve[T // 2:T].mean())                  # noqa: E731  positions T/2 .. T − 1
past = lambda curve: float(curve[T:].mean())                         # noqa: E731  positions T .. 4T − 1
flat = lambda curve: float(curve[3 * T:].mean() - curve[T:2 * T].mean())   # noqa: E731  3T..4T against T..2T
print("  val loss on positions T/2..T (inside the trained context), and on T..4T with all keys / the last T:")
for kind in ("sinusoidal", "rope"):
    for seed in SEEDS:
        full, local = by_position[kind, seed], windowed[kind, seed]
        print(f"    {kind:>10} seed {seed}: inside {late(full):.3f};  past T: all keys {past(full):.3f}, "
              f"window {past(local):.3f};  window, 3T..4T against T..2T {flat(local):+.3f}")
excess = {key: past(windowed[key]) - late(by_position[key]) for key in windowed}
lesson.check("RoPE with a window of T: past T its loss is back within 0.05 of its loss inside T (every seed)",
             all(excess["rope", seed] < 0.05 for seed in SEEDS),
             ", ".join(f"{excess['rope', seed]:+.3f}" for seed in SEEDS))
lesson.check("... and it stops growing: positions 3T..4T within 0.05 of T..2T (every seed)",
             all(flat(windowed["rope", seed]) < 0.05 for seed in SEEDS),
             ", ".join(f"{flat(windowed['rope', seed]):+.3f}" for seed in SEEDS))
lesson.check("the same window does not rescue sinusoidal: past T it stays more than 0.1 above its loss inside T "
             "(every seed)", all(excess["sinusoidal", seed] > 0.1 for seed in SEEDS),
             ", ".join(f"{excess['sinusoidal', seed]:+.3f}" for seed in SEEDS))
lesson.figure(plots.windowed(by_position, windowed, SEEDS, T), "24_window_of_T")

# %% [markdown]
# So RoPE's positions are truly relative: what it lacks past $T$ is experience of long distances, not of
# late positions. Sliding-window attention (Mistral) uses exactly this. It does not make the model
# read further back than $T$; it only stops it from breaking.
#
# What the lectures say, against what we measured:
#
# - CS224N: sinusoidal positions can extrapolate in theory, but do so poorly in practice. Here too: past
#   $T$ its loss grew most, and a window did not help.
# - Relative positions, of which RoPE is today's form (LLaMA, Mistral, Qwen), see only $n - m$. That did
#   not make RoPE extrapolate for free either: its loss grew past $T$ as well, less than sinusoidal's.
# - Long-context models therefore train on long windows, and stretch RoPE's angles when they read past
#   them (position interpolation, NTK scaling, YaRN: not measured here).

# %%
lesson.done()
