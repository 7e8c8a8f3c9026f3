# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 17: sampling: temperature, top-k, greedy, seeds and the KV cache
#
# For the next token a language model gives a vector of logits $z$, one per vocabulary entry. Turning
# that into text is a choice:
#
# - **temperature** $T$: sample from $p = \mathrm{softmax}(z/T)$. $T < 1$ sharpens, $T > 1$ flattens,
#   $T \to 0$ is the argmax.
# - **top-k**: keep the $k$ largest logits, renormalise, sample among those only.
# - **greedy**: always the argmax (`generate(..., temperature=0)`).
#
# Around that choice runs the **generation loop**: predict, sample, append, crop to the context; written
# by hand below, and checked against `generate()`.
#
# Then the **KV cache**: how `generate` avoids running the whole context through the model for every
# new token, and how much work that saves, counted.
#
# The model is the one lesson 16 trained, when its checkpoint is in the `--out` folder. Otherwise a tiny
# model is trained first (a few seconds), so this lesson also runs on its own.
#
# Run: `python lessons/17_sampling.py` (add `--no-pause` to run straight through).

# %%
import math

import numpy as np
from _lesson import Lesson
from _plots import lesson17 as plots

from tinytransformer import MultiHeadAttention, backend
from tinytransformer.generate import generate, next_token_probs, sample
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.tokenizers import CharTokenizer
from tinytransformer.training import TrainConfig, train
from tinytransformer.training.checkpoint import load_checkpoint, restore

lesson = Lesson("17 Sampling", steps=13)
FULL_RUN_ITERS = 2000   # lesson 16's full run (at 1000 of its iterations the model still says 'r')


def entropy(p) -> float:
    """H(p) = −Σ p log p in nats (terms with p = 0 contribute 0)."""
    p = backend.to_numpy(p).ravel()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def to_numpy(a):
    return backend.to_numpy(a)


def sample_next(logits, temperature, top_k, rng):
    """One next id per row of logits [B, V], drawn with rng: the library's step of generate()."""
    return to_numpy(sample(next_token_probs(backend.asarray(logits), temperature, top_k), rng))


# With --exercise, your sample_next (lessons/exercises/) runs in place of the library's.
sample_next = lesson.exercise("sample_next", sample_next)

# %% [markdown]
# ## A model to sample from
#
# We need a GPT trained on Shakespeare.
#
# - Lesson 16 leaves its checkpoint in `<out>/16_train_gpt/ckpt.npz`: run it first, with the same
#   `--out`, to sample from its model.
# - If it is not there, a tiny GPT is trained now, for 40 iterations.
#
# Either way the model is rebuilt from its checkpoint exactly as `scripts/sample.py` does it: the config,
# the weights, the tokenizer.

# %%
lesson.step("A model to sample from")
checkpoint_path = lesson.out / "16_train_gpt" / "ckpt.npz"
from_lesson_16 = checkpoint_path.exists()
if from_lesson_16:
    print(f"  using lesson 16's model: {checkpoint_path}")
else:
    out_dir = lesson.out / "17_model"
    print(f"  no {checkpoint_path}; training a tiny model in {out_dir}")
    train(TrainConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, max_iters=40, lr=3e-3,
                      min_lr=3e-4, warmup_iters=5, lr_decay_iters=40, eval_interval=40, eval_iters=5,
                      log_interval=20, sample_chars=10, out_dir=str(out_dir), overwrite=True),
          log=lambda line: print("    " + line))
    checkpoint_path = out_dir / "ckpt.npz"
checkpoint = load_checkpoint(checkpoint_path)
model = GPT(GPTConfig(**checkpoint.config["model"]))
restore(checkpoint, model)
model.eval()
tokenizer = CharTokenizer.from_dict(checkpoint.tokenizer)
V, block_size = model.config.vocab_size, model.config.block_size
print(f"  {model.num_parameters():,} parameters, vocabulary {V}, context {block_size}, "
      f"trained {checkpoint.iteration} iterations (val loss {checkpoint.extra['best_val_loss']:.3f})")

# %% [markdown]
# ## The next character's logits
#
# What does the model say after a prompt? Its output at the last position: one logit per character of
# the vocabulary. `next_token_probs` turns them into probabilities.
#
# The model of lesson 16's full run (2000 iterations) has learned words: after "hear me spea" it
# expects 'k'. That is checked for that run only: at 1000 of its iterations it still expected 'r'.

# %%
lesson.step("The next character's logits")
prompt = "First Citizen:\nBefore we proceed any further, hear me spea"
idx = backend.asarray(tokenizer.encode(prompt)[None, -block_size:])     # [1, ≤ block_size]
logits, _ = model(idx)
last = logits[:, -1, :]                                                 # [1, V]: the next character's logits
print(f"  prompt ends: {prompt[-30:]!r}; the model's logits for the next character: shape {tuple(last.shape)}")
likeliest = to_numpy(last)[0].argsort()[::-1][:5]
p_next = to_numpy(next_token_probs(last))[0]
print("  its five likeliest next characters: " + ", ".join(f"{tokenizer.decode([i])!r} {p_next[i]:.2f}"
                                                         for i in likeliest))
# Claims about what the model knows hold only for a model trained long enough: lesson 16's full run.
full_run = from_lesson_16 and checkpoint.config["train"]["max_iters"] >= FULL_RUN_ITERS
if full_run:
    lesson.check("full run: the model completes \"hear me spea\" with 'k'", tokenizer.decode([likeliest[0]]) == "k")
else:
    print(f"  (not lesson 16's full run of {FULL_RUN_ITERS} iterations: the checks of what the model knows are "
          "skipped; the checks of sampling itself hold for any model)")

# %% [markdown]
# ## Temperature
#
# How does dividing the logits by $T$ reshape the distribution?
#
# $$p_i = \frac{\exp(z_i/T)}{\sum_j \exp(z_j/T)}$$
#
# It scales every log-odds:
#
# $$\frac{p_i}{p_j} = \exp\left(\frac{z_i - z_j}{T}\right)$$
#
# - halving $T$ squares every probability ratio: the likely get likelier;
# - doubling $T$ takes their square root: the distribution flattens.
#
# The entropy $H(p) = -\sum_i p_i \ln p_i$ says how spread out $p$ is: 0 for a certain outcome,
# $\ln V$ for uniform.

# %%
lesson.step("Temperature")
temperatures = (0.5, 1.0, 2.0)
probs = {T: to_numpy(next_token_probs(last, temperature=T))[0] for T in temperatures}
top = np.argsort(probs[1.0])[::-1][:12]                                 # the 12 likeliest at T = 1
for T in temperatures:
    shown = ", ".join(f"{tokenizer.decode([i])!r}:{probs[T][i]:.2f}" for i in top[:6])
    print(f"  T = {T}:  entropy {entropy(probs[T]):.3f} nats;  {shown}, ...")
print(f"  (ln V = {math.log(V):.3f})")
lesson.check("entropy increases with T (0.5 < 1 < 2)",
             entropy(probs[0.5]) < entropy(probs[1.0]) < entropy(probs[2.0]))
a, b = top[0], top[1]
ratio_1, ratio_half = probs[1.0][a] / probs[1.0][b], probs[0.5][a] / probs[0.5][b]
char_a, char_b = tokenizer.decode([a]), tokenizer.decode([b])
print(f"  p({char_a!r})/p({char_b!r}): {ratio_1:.3f} at T = 1, {ratio_half:.3f} at T = 0.5 "
      f"(= {ratio_1:.3f}² = {ratio_1 ** 2:.3f})")
lesson.check("halving T squares the probability ratios", abs(ratio_half / ratio_1 ** 2 - 1) < 1e-3)

# %% [markdown]
# ## The two limits of temperature
#
# What happens at the extremes?
#
# - $T \to 0$: the gap between the largest logit and the others is divided by almost nothing. All the
#   probability goes to the argmax: greedy.
# - $T \to \infty$: every $z_i/T$ goes to 0, so every token gets the same $1/V$: uniform, with entropy
#   $\ln V$.
#
# We look at $T = 0.01$ and $T = 1000$, and sweep 40 temperatures from 0.02 to 50 for the figure.

# %%
lesson.step("The two limits of temperature")
sweep = np.geomspace(0.02, 50, 40)
sweep_entropy = [entropy(next_token_probs(last, temperature=T)) for T in sweep]
cold = to_numpy(next_token_probs(last, temperature=0.01))[0]
hot = to_numpy(next_token_probs(last, temperature=1000.0))[0]
argmax = int(to_numpy(last).argmax())
print(f"  T = 0.01: p(argmax {tokenizer.decode([argmax])!r}) = {cold[argmax]:.6f};   T = 1000: entropy "
      f"{entropy(hot):.4f} (ln V = {math.log(V):.4f})")
lesson.check("T -> 0 approaches one-hot at the argmax (T = 0.01: p > 0.99)",
             cold.argmax() == argmax and cold[argmax] > 0.99)
lesson.check("T -> ∞ approaches uniform (T = 1000: entropy within 0.01 of ln V)",
             abs(entropy(hot) - math.log(V)) < 0.01)

# %% [markdown]
# ## Top-k
#
# Even at $T = 1$ a model gives every character some small probability. Over hundreds of steps the
# unlikely ones do get drawn. Top-k sampling cuts them off:
#
# 1. keep the $k$ largest logits;
# 2. set the others to $-\infty$, so their probability is 0;
# 3. renormalise: the kept tokens keep their ratios.

# %%
lesson.step("Top-k")
k = 5
top_k_probs = to_numpy(next_token_probs(last, temperature=1.0, top_k=k))[0]
kept = np.flatnonzero(top_k_probs)
print(f"  top-{k}: non-zero for {[tokenizer.decode([i]) for i in kept]}, sum {top_k_probs.sum():.6f}")
lesson.check(f"exactly k = {k} tokens have non-zero probability, the {k} likeliest",
             len(kept) == k and set(kept) == set(top[:k]))
lesson.check("the kept tokens keep their ratios (and sum to 1)",
             np.allclose(top_k_probs[kept] / probs[1.0][kept], top_k_probs[kept[0]] / probs[1.0][kept[0]],
                         rtol=1e-4) and abs(top_k_probs.sum() - 1) < 1e-5)
labels = [repr(tokenizer.decode([i])) for i in top]                    # quoted, so that ' ' and '\n' show
bars = [(f"T = {T}", probs[T]) for T in temperatures] + [(f"top-{k}, T = 1", top_k_probs)]
lesson.figure(plots.temperature_and_top_k(bars, top, labels, prompt[-12:], sweep, sweep_entropy, V),
              "17_temperature_and_top_k")

# %% [markdown]
# Left: the 12 likeliest characters at $T = 1$, at three temperatures and with top-5. Right: the entropy
# of the distribution over the sweep of temperatures, between 0 (one-hot: greedy) and $\ln V$ (uniform).

# %% [markdown]
# ## Drawing the next token
#
# How does `generate()` turn one step's logits into one id per row?
#
# 1. divide by $T$;
# 2. keep the top $k$;
# 3. softmax;
# 4. draw from that distribution, with a uniform number from its generator.
#
# `sample_next(logits, T, top_k, rng)` is that step on its own. A draw is random, so we check it by
# behaviour. First where nothing is left to chance: a temperature near 0, or `top_k = 1`, leaves only the
# argmax.
#
# The test logits: 64 rows, each a shuffle of evenly spaced values, so no ties and the top two of a row
# 0.2 apart. At $T = 0.001$, $z/T$ is in the thousands: the draw must not overflow.

# %%
lesson.step("Drawing the next token")
draw_rng = np.random.default_rng(17)
V_draw = 40
# 64 rows, each a shuffle of evenly spaced logits: no ties, the top two of a row 0.2 apart.
spaced = np.linspace(-4.0, 3.8, V_draw)
rows = np.stack([draw_rng.permutation(spaced) for _ in range(64)])    # [64, V_draw]
row_argmax = rows.argmax(axis=-1)
order = np.argsort(rows, axis=-1)[:, ::-1]                              # each row's ids, largest logit first
cold_ids = np.concatenate([sample_next(rows + shift, 0.001, None, np.random.default_rng(s))
                           for s, shift in enumerate((0.0, 5.0, -5.0))])
lesson.check("T = 0.001 gives the argmax in every row (z/T in the thousands: no overflow)",
             np.array_equal(cold_ids, np.tile(row_argmax, 3)),
             f"{int((cold_ids != np.tile(row_argmax, 3)).sum())} of {cold_ids.size} rows differ")
top1_ids = np.concatenate([sample_next(rows, T, 1, np.random.default_rng(s)) for s, T in enumerate((0.5, 1.0, 3.0))])
lesson.check("top_k = 1 gives the argmax in every row, at T = 0.5, 1 and 3",
             np.array_equal(top1_ids, np.tile(row_argmax, 3)))

# %% [markdown]
# ## Many draws, counted
#
# Now the random draws. One row of logits, drawn 50,000 times:
#
# - with `top_k = k`, no token outside the $k$ largest may ever come up;
# - the same seed must give the same ids, another seed other ids;
# - each token must come up as often as its probability says.
#
# How close is "as often"? The frequency of a token with probability $p$ over $N$ draws has a standard
# deviation of $\sqrt{p(1-p)/N}$: at most 0.0022 for $N$ = 50,000. The check allows 0.015.

# %%
lesson.step("Many draws, counted")
k_draw, N_draw = 5, 50_000
row = rows[:1]                                                          # [1, V_draw]: one row, drawn N times
many = np.repeat(row, N_draw, axis=0)                                   # [N, V_draw]
ids_k = sample_next(many, 1.0, k_draw, np.random.default_rng(5))
lesson.check(f"with top_k = {k_draw}, only the {k_draw} largest logits come up in {N_draw:,} draws",
             set(np.unique(ids_k).tolist()) <= set(order[0, :k_draw].tolist()),
             f"ids drawn: {np.unique(ids_k).tolist()}; the {k_draw} largest: {sorted(order[0, :k_draw].tolist())}")
again = sample_next(many[:1000], 1.0, None, np.random.default_rng(3))
lesson.check("the draws come from the generator passed in: the same seed gives the same ids, another another",
             np.array_equal(again, sample_next(many[:1000], 1.0, None, np.random.default_rng(3)))
             and not np.array_equal(again, sample_next(many[:1000], 1.0, None, np.random.default_rng(4))))
worst = {}
for T, k in ((1.0, None), (0.7, k_draw), (2.0, 12)):
    expected = to_numpy(next_token_probs(backend.asarray(row), T, k))[0]
    counts = np.bincount(sample_next(many, T, k, np.random.default_rng(11)), minlength=V_draw)
    worst[(T, k)] = float(np.abs(counts[:V_draw] / N_draw - expected).max())
    print(f"  T = {T}, top_k = {k}: largest |frequency − probability| over {N_draw:,} draws {worst[(T, k)]:.4f}")
lesson.check("the frequencies match softmax(z/T) on the top k, to 0.015, at (T, k) = (1, all), (0.7, 5), (2, 12)",
             all(w < 0.015 for w in worst.values()))

# %% [markdown]
# ## The generation loop, by hand
#
# A model gives the next token's distribution; text comes from a loop around it. Each turn:
#
# 1. **crop**: keep the last `block_size` tokens, all the model can read (its position table ends there);
# 2. **predict**: run the model on them and take the **last** position's logits: that position has read
#    the whole context, and it predicts what comes after it;
# 3. **sample**: $p = \mathrm{softmax}(z/T)$, then one uniform number $u$ per row from the generator, and
#    the first id whose cumulative probability reaches $u$;
# 4. **append** that id, so that the next turn reads it.
#
# Below, the loop in plain NumPy, against `generate()` with the same seed: two rows, $T = 0.8$, past
# the context length, so that the crop matters. In float64, so that the two softmaxes agree to the last
# bits and no draw can land on the other side of a cumulative probability by rounding. (`generate()`
# also keeps a KV cache while the context fits: that changes the work, not the tokens; the last steps
# of this lesson.)

# %%
lesson.step("The generation loop, by hand")


def generate_by_hand(model, ids, n_new, temperature, seed):
    """ids [B, T0] -> [B, T0 + n_new]: crop, predict, sample, append, n_new times."""
    rng = np.random.default_rng(seed)                                   # the generator generate() makes from seed
    for _ in range(n_new):
        context = ids[:, -block_size:]                                  # 1. crop: the last block_size tokens
        logits, _ = model(backend.asarray(context))                     # 2. predict: [B, t, V]
        z = to_numpy(logits)[:, -1, :] / temperature                    #    the last position's logits, / T: [B, V]
        p = np.exp(z - z.max(axis=-1, keepdims=True))                   # 3. sample: softmax (shifted: no overflow)
        p /= p.sum(axis=-1, keepdims=True)
        u = rng.random(len(ids))[:, None]                               #    one uniform per row: [B, 1]
        next_ids = np.minimum((p.cumsum(axis=-1) < u).sum(axis=-1), V - 1)   # first id with cumulative p >= u
        ids = np.concatenate([ids, next_ids[:, None]], axis=1)          # 4. append
    return ids


loop_prompt = np.array([tokenizer.encode("KING"), tokenizer.encode("To b")])   # [2, 4]
n_loop, T_loop, seed_loop = block_size + 16, 0.8, 3
with backend.using(dtype="float64"):
    model_f64 = GPT(GPTConfig(**checkpoint.config["model"]))              # this model, in float64
    restore(checkpoint, model_f64)
    model_f64.eval()
    by_hand = generate_by_hand(model_f64, loop_prompt, n_loop, T_loop, seed_loop)
    library = to_numpy(generate(model_f64, backend.asarray(loop_prompt), n_loop, temperature=T_loop, seed=seed_loop))
n_cropped = loop_prompt.shape[1] + n_loop - 1 - block_size                 # turns whose context was longer
print(f"  {n_loop} tokens after 'KING' and 'To b' (context {block_size}: the last {n_cropped} turns crop); "
      f"row 1 by hand: {tokenizer.decode(by_hand[1, 4:])[:60]!r}")
same_shape = by_hand.shape == library.shape
differ = np.flatnonzero((by_hand != library).any(axis=0)) if same_shape else []   # positions that differ
lesson.check(f"the loop by hand gives exactly generate()'s tokens: 2 rows × {n_loop} at T = {T_loop}, seed "
             f"{seed_loop}, the last {n_cropped} from a cropped context", same_shape and len(differ) == 0,
             f"shapes {by_hand.shape} and {library.shape}" if not same_shape else
             f"first difference at position {differ[0]} (the first token drawn from a cropped context is at "
             f"position {block_size + 1})" if len(differ) else "")

# %% [markdown]
# ## Greedy decoding and seeds
#
# Now whole texts, from the model. `generate(model, idx, n, temperature=0)` takes the argmax at every
# step: deterministic, no randomness used.
#
# With `temperature > 0` each step draws a uniform number from a generator seeded by `seed=...`:
#
# - the same seed gives the same text;
# - another seed gives another text.
#
# Top-k with $k = 1$ leaves only the argmax: it is greedy, whatever the seed.

# %%
lesson.step("Greedy decoding and seeds")
n_new = block_size - 1 if lesson.quick else 400
start = backend.asarray(tokenizer.encode("\n")[None, :])               # [1, 1]
print(f"  {n_new} new characters after a newline")
greedy = generate(model, start, n_new, temperature=0)
greedy_again = generate(model, start, n_new, temperature=0)
top_1 = generate(model, start, n_new, temperature=1.0, top_k=1, seed=123)
first_logits, _ = model(start)
print("  greedy:   " + repr(tokenizer.decode(greedy[0, 1:])[:70]))
lesson.check("greedy's first character is the argmax of the logits",
             int(greedy[0, 1]) == int(to_numpy(first_logits[0, -1]).argmax()))
lesson.check("greedy is deterministic, and equals top-k with k = 1",
             bool((greedy == greedy_again).all() and (greedy == top_1).all()))
text_1, text_1b, text_2 = (tokenizer.decode(generate(model, start, n_new, temperature=1.0, seed=s)[0, 1:])
                           for s in (1, 1, 2))
print("  seed 1:   " + repr(text_1[:70]))
print("  seed 1:   " + repr(text_1b[:70]))
print("  seed 2:   " + repr(text_2[:70]))
lesson.check("the same seed gives the same text", text_1 == text_1b)
lesson.check("another seed gives another text", text_1 != text_2)

# %% [markdown]
# ## Greedy text repeats itself
#
# Does greedy text read like the sampled text? One measure: the fraction of its 4-character substrings
# that are distinct. A text that repeats itself scores low.

# %%
lesson.step("Greedy text repeats itself")


def distinct_fraction(text, n=4):
    """Distinct n-character substrings / all of them: low when the text repeats itself."""
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams)


greedy_text = tokenizer.decode(greedy[0, 1:])
print(f"  distinct 4-character substrings: greedy {distinct_fraction(greedy_text):.2f}, "
      f"sampled (seed 1) {distinct_fraction(text_1):.2f}")
lesson.check("greedy text repeats itself more than sampled text",
             distinct_fraction(greedy_text) < distinct_fraction(text_1))

# %% [markdown]
# Why? Greedy decoding falls into loops: once a phrase is the most likely continuation of itself, it
# repeats forever.
#
# - Sampling at a moderate temperature, often with top-k, is what makes model text varied.
# - Greedy remains the right choice when there is one correct answer (lesson 20's translation).

# %% [markdown]
# ## The KV cache
#
# Without a cache, each step runs the whole context through the model again, only to use the last
# position's logits.
#
# But in causal attention the keys and values of earlier positions never change. So
# `generate(..., use_cache=True)` keeps them, per block and head, and runs only the newest token each
# step.
#
# A cached step of one block's attention:
#
# 1. project the new token's $q$, $k$, $v$;
# 2. append $k$ and $v$ to the cache along the time axis: `[B, n_head, past, d_k]` becomes
#    `[B, n_head, past + 1, d_k]`;
# 3. attend with the new query over all past + 1 keys, its own included.
#
# First one layer on its own: 3 heads of $d_k = 4$, a prompt of 4 positions, then 3 steps of 1.

# %%
lesson.step("The KV cache")
# With --exercise, your cached step (lessons/exercises/kv_cache_step.py) runs in every block from here on.
MultiHeadAttention._forward_cached = lesson.exercise("kv_cache_step", MultiHeadAttention._forward_cached)
dtype_before = backend.default_dtype()
backend.set_default_dtype("float64")                                   # exact comparisons, in float64
layer = MultiHeadAttention(12, 3, rng=backend.new_host_rng(0))          # 3 heads of d_k = 4
x_all = backend.randn((2, 7, 12), rng=backend.new_host_rng(1))          # a prompt of 4, then 3 steps of 1
cache, grown, detail = {}, [], ""
try:
    for start, stop in ((0, 4), (4, 5), (5, 6), (6, 7)):
        layer(x_all[:, start:stop], cache=cache)
        grown.append((tuple(cache["k"].shape), tuple(cache["v"].shape)))
    detail = "cache['k'] after each call: " + ", ".join(str(list(k)) for k, _ in grown)
except (ValueError, IndexError) as err:                                 # shapes that cannot be joined
    detail = f"{type(err).__name__}: {str(err)[:120]}"
print(f"  {detail}")
lesson.check("the cache grows by one position per step along the time axis: [B, n_head, past, d_k] -> "
             "[B, n_head, past + 1, d_k]",
             len(grown) == 4 and all(k == v == (2, 3, 4 + i, 4) for i, (k, v) in enumerate(grown)), detail)

# %% [markdown]
# ## The same tokens, with or without the cache
#
# Up to the context length the two paths give the same logits, so the same tokens. (Beyond it every
# position shifts; the library then runs the cropped window in full, as without the cache.)
#
# - This model in float64, greedy, after "KING" and "To b": every step's logits must agree to
#   $10^{-12}$, so the tokens are exactly the same. We compare the logits too, not only the tokens: a
#   token can survive a wrong cache by luck.
# - Then in float32, sampling at $T = 0.8$ with one seed: 8 rows at once, up to the context length.

# %%
lesson.step("The same tokens, with or without the cache")
model64 = GPT(GPTConfig(**checkpoint.config["model"]))                  # the same model, in float64
restore(checkpoint, model64)
model64.eval()
start64 = backend.asarray(np.array([tokenizer.encode("KING"), tokenizer.encode("To b")]))   # [2, 4]
n64 = min(20, block_size - 4)
greedy_cached = to_numpy(generate(model64, start64, n64, temperature=0, use_cache=True))
greedy_full = to_numpy(generate(model64, start64, n64, temperature=0, use_cache=False))
# The logits of every step too, along the uncached path's tokens: a token can survive a wrong cache by luck.
sequence = backend.asarray(greedy_full)
caches = [{} for _ in model64.blocks]
gaps = [float(abs(model64.forward_cached(sequence[:, :4], caches)[:, -1] - model64(sequence[:, :4])[0][:, -1]).max())]
for t in range(4, greedy_full.shape[1] - 1):                            # one new token per step
    cached_logits = model64.forward_cached(sequence[:, t:t + 1], caches)[:, -1]
    gaps.append(float(abs(cached_logits - model64(sequence[:, :t + 1])[0][:, -1]).max()))
backend.set_default_dtype(dtype_before)
texts = [tokenizer.decode(row[4:]) for row in (greedy_cached[0], greedy_full[0])]
print(f"  float64, greedy, {n64} tokens after 'KING': with the cache {texts[0]!r}, without {texts[1]!r}; "
      f"largest logit gap over {len(gaps)} steps {max(gaps):.0e}")
same = bool((greedy_cached == greedy_full).all())
lesson.check("greedy in float64: generating with the cache gives exactly the tokens of the uncached path, "
             "and every step's logits to 1e-12", same and max(gaps) < 1e-12,
             f"tokens {'the same' if same else 'differ'}; logit gaps by step: "
             + ", ".join(f"{gap:.0e}" for gap in gaps[:8]))
n_cached = block_size - 1                                               # stay within the context
batch = backend.asarray(np.repeat(tokenizer.encode("\n")[None, :], 8, axis=0))   # [8, 1]: 8 samples at once
print(f"  float32, T = 0.8, seed 7: 8 rows of {n_cached} tokens after a newline (context length {block_size})")
with_cache = generate(model, batch, n_cached, temperature=0.8, seed=7, use_cache=True)
without_cache = generate(model, batch, n_cached, temperature=0.8, seed=7, use_cache=False)
lesson.check(f"with and without the cache: the same {n_cached} tokens in all 8 rows",
             bool((with_cache == without_cache).all()))

# %% [markdown]
# ## What the cache saves
#
# How much work does the cache save? We count it instead of timing it: a timing depends on whatever else
# the machine is doing, a count does not.
#
# Generate $n$ tokens after a prompt of $T_0$. Step $i$ predicts from a context of
# $t = T_0 + i - 1$ tokens.
#
# **Positions** that go through the model:
#
# - without the cache, the whole context every step:
#   $T_0 + (T_0 + 1) + \dots + (T_0 + n - 1) = nT_0 + n(n-1)/2$, which grows as $n^2$;
# - with it, the prompt once, then one new position per token: $T_0 + n - 1$, which grows as $n$.
#
# **Attention scores** $q \cdot k$, per row and head, in every layer:
#
# - without the cache, every query against every key: $t^2$ at each step, so
#   $T_0^2 + (T_0 + 1)^2 + \dots + (T_0 + n - 1)^2$ (the causal mask hides about half of them, but
#   they are computed);
# - with it, $T_0^2$ for the prompt, then one new query against $t$ keys:
#   $T_0^2 + (T_0 + 1) + \dots + (T_0 + n - 1)$, which grows as $n^2$ instead of $n^3$.
#
# We count the sampling run of the last step (8 rows, $T_0 = 1$): the positions where the tokens enter
# the model (its token embedding), the scores inside every attention layer.

# %%
lesson.step("What the cache saves")


def count_work(use_cache):
    """Generate as the last step did, counting per row the positions that enter the model (at its token
    embedding) and the attention scores computed (queries × keys, per head, summed over the layers)."""
    counted = {"positions": 0, "scores": 0}
    embed = model.wte.forward

    def counting_embed(ids):
        counted["positions"] += ids.shape[1]                            # ids [B, T]: T positions per row
        return embed(ids)

    def counting(attention):
        attend = attention.forward

        def forward(q, k, v, mask=None):
            counted["scores"] += q.shape[2] * k.shape[2]                # [B, h, T_q, d_k] x [B, h, T_k, d_k]
            return attend(q, k, v, mask)
        return forward

    attentions = [block.self_attn.sublayer.attention for block in model.blocks]
    model.wte.forward = counting_embed                                  # for this one call only
    for attention in attentions:
        attention.forward = counting(attention)
    try:
        generate(model, batch, n_cached, temperature=0.8, seed=7, use_cache=use_cache)
    finally:
        del model.wte.forward
        for attention in attentions:
            del attention.forward
    return counted


T0, n, n_layer = batch.shape[1], n_cached, len(model.blocks)
contexts = range(T0, T0 + n)                                            # the context length at each step
expected = {True: {"positions": T0 + n - 1, "scores": n_layer * (T0 ** 2 + sum(contexts[1:]))},
            False: {"positions": n * T0 + n * (n - 1) // 2, "scores": n_layer * sum(t * t for t in contexts)}}
work = {use_cache: count_work(use_cache) for use_cache in (True, False)}
for use_cache, name in ((True, "with the cache:   "), (False, "without the cache:")):
    print(f"  {name} {work[use_cache]['positions']:6,} positions per row (formula "
          f"{expected[use_cache]['positions']:,}), {work[use_cache]['scores']:8,} scores per row and head over "
          f"{n_layer} layers (formula {expected[use_cache]['scores']:,})")
print(f"  T0 = {T0}, n = {n}: the cache does {work[False]['positions'] / work[True]['positions']:.1f}× fewer "
      f"positions and {work[False]['scores'] / work[True]['scores']:.1f}× fewer attention scores")
lesson.check("counted: with the cache one new position per token after the prompt (T0 + n − 1 in all), "
             "without it the whole context every step (n·T0 + n(n − 1)/2)",
             all(work[c]["positions"] == expected[c]["positions"] for c in (True, False)),
             f"with {work[True]['positions']} (formula {expected[True]['positions']}), without "
             f"{work[False]['positions']} (formula {expected[False]['positions']})")
lesson.check("counted: attention scores per row and head: T0² + Σ t with the cache (one new query over t keys), "
             "Σ t² without (every query over every key), in every layer",
             all(work[c]["scores"] == expected[c]["scores"] for c in (True, False)),
             f"with {work[True]['scores']} (formula {expected[True]['scores']}), without "
             f"{work[False]['scores']} (formula {expected[False]['scores']})")


def sample_time(use_cache):
    """Median of 3 timed runs, on one BLAS thread (small matrices gain nothing from more)."""
    return lesson.median_time(lambda: generate(model, batch, n_cached, temperature=0.8, seed=7,
                                               use_cache=use_cache), repeat=3, synchronize=backend.synchronize)


with one_blas_thread():
    t_cache, t_full = sample_time(True), sample_time(False)
print(f"  timed, for information: {n_cached} tokens × 8 rows, with the cache {1000 * t_cache:.0f} ms, without "
      f"{1000 * t_full:.0f} ms ({t_full / t_cache:.1f}×; median of 3; not checked: it depends on the machine's load)")

# %% [markdown]
# The counts depend only on the algorithm: the cache turns a cost that grows as $n^2$ positions into one
# that grows as $n$. The timing beside them depends also on the machine and on whatever else it runs,
# which is why it is printed and not checked.

# %%
lesson.done()
