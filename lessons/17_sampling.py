# %% [markdown]
"""Lesson 17: Sampling: temperature, top-k, greedy, seeds and the KV cache.

A language model gives, for the next token, a vector of logits z (one per vocabulary entry). Turning that
into text is a choice:

    p = softmax(z / T)             temperature T: T < 1 sharpens, T > 1 flattens, T -> 0 is argmax
    top-k                          keep the k largest logits, renormalise, sample among those only
    greedy                         always the argmax (generate(..., temperature=0))

The model here is the one lesson 16 trained, when its checkpoint is in the --out folder; otherwise a tiny
model is trained first (a few seconds), so this lesson also runs on its own.

Run:  python lessons/17_sampling.py        (add --no-pause to run straight through)
"""

# %%
import math

import numpy as np

from _lesson import Lesson
from tinytransformer.machine import one_blas_thread

from tinytransformer import MultiHeadAttention, backend
from tinytransformer.training.checkpoint import load_checkpoint, restore
from tinytransformer.tokenizers import CharTokenizer
from tinytransformer.generate import generate, next_token_probs, sample
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.training import TrainConfig, train

lesson = Lesson("17 Sampling", __doc__, steps=6)
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


# %%
lesson.step("A model to sample from", """
    We need a GPT trained on Shakespeare. Lesson 16 leaves its checkpoint in <out>/16_train_gpt/ckpt.npz;
    if it is not there, a tiny GPT is trained for 40 iterations now. Either way the model is rebuilt from
    its checkpoint exactly as scripts/sample.py does it: the config, the weights, the tokenizer. The
    model of lesson 16's full run (2000 iterations) has learned words: after "hear me spea" it expects
    'k' (checked for that run only: at 1000 of its iterations it still expected 'r').""")
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

# %%
lesson.step("Temperature", """
    p_i = exp(z_i/T) / Σ_j exp(z_j/T). Dividing by T scales every log-odds: p_i/p_j = exp((z_i − z_j)/T).
    So halving T squares every probability ratio (the likely get likelier) and doubling it takes their
    square root (the distribution flattens). The entropy H(p) = −Σ p_i ln p_i measures how spread out p
    is: 0 for a certain outcome, ln V for uniform.""")
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

# %%
lesson.step("Top-k", """
    Even at T = 1 a model gives every character some small probability, and over hundreds of steps the
    unlikely ones do get drawn. Top-k sampling keeps the k largest logits, sets the rest to −∞ (probability
    0), and renormalises: the kept tokens keep their ratios.""")
k = 5
top_k_probs = to_numpy(next_token_probs(last, temperature=1.0, top_k=k))[0]
kept = np.flatnonzero(top_k_probs)
print(f"  top-{k}: non-zero for {[tokenizer.decode([i]) for i in kept]}, sum {top_k_probs.sum():.6f}")
lesson.check(f"exactly k = {k} tokens have non-zero probability, the {k} likeliest",
             len(kept) == k and set(kept) == set(top[:k]))
lesson.check("the kept tokens keep their ratios (and sum to 1)",
             np.allclose(top_k_probs[kept] / probs[1.0][kept], top_k_probs[kept[0]] / probs[1.0][kept[0]],
                         rtol=1e-4) and abs(top_k_probs.sum() - 1) < 1e-5)

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_bars, ax_entropy) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
width = 0.2
labels = [repr(tokenizer.decode([i])) for i in top]                    # quoted, so that ' ' and '\n' show
bars = [(f"T = {T}", probs[T]) for T in temperatures] + [(f"top-{k}, T = 1", top_k_probs)]
for n, (name, p) in enumerate(bars):
    ax_bars.bar(np.arange(len(top)) + (n - 1.5) * width, p[top], width, label=name)
ax_bars.set_xticks(range(len(top)), labels)
ax_bars.set(xlabel=f"next character (the 12 likeliest at T = 1) after ...{prompt[-12:]!r}",
            ylabel="probability", title="temperature reshapes the next-character distribution")
ax_bars.legend()
ax_entropy.semilogx(sweep, sweep_entropy)
ax_entropy.axhline(math.log(V), color="gray", linestyle="--", lw=1, label=f"ln V = {math.log(V):.2f} (uniform)")
ax_entropy.axhline(0, color="gray", linestyle=":", lw=1, label="0 (one-hot: greedy)")
ax_entropy.set(xlabel="temperature T", ylabel="entropy of p (nats)", title="entropy vs temperature")
ax_entropy.legend(fontsize=8)
ax_entropy.grid(alpha=0.3, which="both")
fig.tight_layout()
lesson.figure(fig, "17_temperature_and_top_k")

# %%
lesson.step("Drawing the next token", """
    generate() turns each step's logits into one id per row: divide by T, keep the top k, softmax, then
    draw from that distribution with a uniform number from its generator. sample_next(logits, T, top_k,
    rng) is that step on its own. A draw is random, so it is checked by behaviour: a temperature near 0
    and top_k = 1 leave only the argmax; with top_k = k no other token ever comes up; and over many draws
    each token comes up as often as its probability says (the frequency of a token with probability p
    over N draws has a standard deviation of √(p(1−p)/N), at most 0.0022 for N = 50,000).""")
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

# %%
n_new = block_size - 1 if lesson.quick else 400
start = backend.asarray(tokenizer.encode("\n")[None, :])               # [1, 1]
lesson.step("Greedy decoding and seeds", f"""
    generate(model, idx, n, temperature=0) takes the argmax at every step: deterministic, no randomness
    used. With temperature > 0 each step draws a uniform number from a generator seeded by seed=..., so
    the same seed gives the same text and another seed another text. Top-k with k = 1 leaves only the
    argmax: it is greedy whatever the seed. Here: {n_new} new characters after a newline.""")
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


def distinct_fraction(text, n=4):
    """Distinct n-character substrings / all of them: low when the text repeats itself."""
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams)


greedy_text = tokenizer.decode(greedy[0, 1:])
print(f"  distinct 4-character substrings: greedy {distinct_fraction(greedy_text):.2f}, "
      f"sampled (seed 1) {distinct_fraction(text_1):.2f}")
lesson.check("greedy text repeats itself more than sampled text",
             distinct_fraction(greedy_text) < distinct_fraction(text_1))
lesson.say("""
    Greedy decoding falls into loops: once a phrase is the most likely continuation of itself, it
    repeats forever. Sampling at a moderate temperature, often with top-k, is what makes model text
    varied; greedy remains the right choice when there is one correct answer (lesson 20's translation).""")

# %%
lesson.step("The KV cache", f"""
    Without a cache, step t runs the whole context of t tokens through the model again, to use only the
    last position's logits: generating n tokens costs O(n²) token-passes. In causal attention the keys
    and values of earlier positions never change, so generate(..., use_cache=True) keeps them (per block
    and head) and runs only the newest token each step: O(n) token-passes. Up to the context length
    ({block_size}) the two give the same logits, so the same tokens. (Beyond it every position shifts;
    the library then runs the cropped window in full, as without the cache.)
    A cached step of one block's attention: project the new token's q, k, v; append k and v to the
    cache along the time axis, so [B, n_head, past, d_k] becomes [B, n_head, past + 1, d_k]; attend with
    the new query over all past + 1 keys, its own included. First one layer on its own; then this
    model in float64, greedy, where the two paths must give the same logits at every step (to 1e-12),
    so exactly the same tokens; then in float32, sampling.""")
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
with_cache = generate(model, batch, n_cached, temperature=0.8, seed=7, use_cache=True)
without_cache = generate(model, batch, n_cached, temperature=0.8, seed=7, use_cache=False)
lesson.check(f"with and without the cache: the same {n_cached} tokens in all 8 rows",
             bool((with_cache == without_cache).all()))


def sample_time(use_cache):
    """Median of 3 timed runs, on one BLAS thread (small matrices gain nothing from more)."""
    return lesson.median_time(lambda: generate(model, batch, n_cached, temperature=0.8, seed=7,
                                               use_cache=use_cache), repeat=3, synchronize=backend.synchronize)


with one_blas_thread():
    t_cache, t_full = sample_time(True), sample_time(False)
print(f"  {n_cached} tokens × 8 rows: with cache {1000 * t_cache:.0f} ms, without {1000 * t_full:.0f} ms "
      f"({t_full / t_cache:.1f}× faster with the cache; median of 3)")
if not lesson.quick:
    lesson.check("the cache is faster (full run only; timings on a busy machine vary)", t_cache < t_full)
else:
    print("  (--quick: timing is reported, not checked)")

lesson.done()
