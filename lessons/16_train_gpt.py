# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 16: training a small GPT on Shakespeare
#
# Everything so far comes together: a character-level GPT learns to predict the next character of Tiny
# Shakespeare (1.1 million characters, 65 distinct ones).
#
# The loop is nanoGPT's: `training_loop` in `tinytransformer/training/loop.py`, one screen, a comment per
# phase:
#
# ```
# for it in 0 .. max_iters:
#     every eval_interval: estimate the train and val loss (fixed batches, no update)
#     x, y = random windows of block_size characters, y shifted by one
#     loss = model(x, y);  model.backward()        (every layer's hand-written backward)
#     clip the gradient norm;  AdamW step with a warmed-up cosine learning rate
# ```
#
# First the pieces of that loop, each checked on its own: AdamW, clipping, weight decay, the learning-rate
# schedule, warmup, one whole iteration. Then the run:
#
# - with `--quick` the model is tiny and trains for 40 iterations (a few seconds);
# - without it, nanoGPT's small CPU model trains for its 2000 iterations (a few minutes on a laptop CPU),
#   long enough that lesson 17's greedy text is made of words.
#
# The loss is read against two models with no attention at all: the character frequencies, and a bigram
# table of which character follows which. And the trained model is checked for the one way it could
# cheat: looking at the characters it is asked to predict.
#
# Run: `python lessons/16_train_gpt.py` (add `--no-pause` to run straight through).

# %%
import json
import math
from collections import Counter

import numpy as np

from _lesson import Lesson
from _plots import lesson16 as plots

from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer import AdamW, Parameter, backend
from tinytransformer.optim import clip_grad_norm, cosine_lr
from tinytransformer.training.checkpoint import load_checkpoint, restore
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.training import TrainConfig, train
from tinytransformer.training import accumulate_gradients

lesson = Lesson("16 Training a small GPT on Shakespeare", steps=12)
library_adamw_step = AdamW.step    # kept: steps 3 and 8 compare AdamW with it
# With --exercise, your AdamW step (lessons/exercises/adamw_step.py) runs in its place, in training too.
your_adamw_step = lesson.exercise("adamw_step", library_adamw_step)


def adamw_step_in_training(optimizer, lr=None, spread=None):
    """AdamW.step as train() calls it. train() may hand the updates to its workers (``spread``, one group
    of parameters each: training/step.py); here every update runs in one thread, through your step."""
    your_adamw_step(optimizer, lr)


AdamW.step = adamw_step_in_training


def training_iteration(model, optimizer, x, y, it, cfg, adamw_step=None):
    """One iteration of the trainer's loop (tinytransformer/training/loop.py, one micro-batch), from the
    library's own functions; adamw_step, when given, is the AdamW update to use instead of optimizer.step."""
    loss = accumulate_gradients(model, x, y, 1)
    clip_grad_norm(model.parameters(), cfg.grad_clip)
    lr = cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                   lr_decay_iters=cfg.lr_decay_iters)
    (adamw_step or type(optimizer).step)(optimizer, lr)
    return float(loss)


library_iteration = training_iteration    # kept: step 8 compares yours with it
# With --exercise, your training iteration (lessons/exercises/training_iteration.py) is checked in step 8.
training_iteration = lesson.exercise("training_iteration", training_iteration)

# %% [markdown]
# ## What loss to expect
#
# The loss is the mean cross-entropy of the next character, in nats. What numbers should we expect?
#
# - **Knowing nothing**: every one of the $V = 65$ characters gets probability $1/65$, a loss of
#   $\ln 65 \approx 4.17$. GPT-2's initialisation (small weights) starts there.
# - **Character frequencies only**, ignoring the context: the entropy of the frequencies.
# - **The current character only**: a bigram table $P(\text{next} \mid \text{current})$, counted on the
#   training split. Still no attention (the embedding table and the output layer alone can learn it),
#   yet it goes much further.
#
# The bigram table uses the trainer's own split: the first 90% to count, the last 10% to score. With
# add-one smoothing: every pair is counted once more than seen, so a pair never seen in training gets a
# small probability instead of 0 (whose log would be $-\infty$ on the validation text).

# %%
lesson.step("What loss to expect")
corpus = find_shakespeare().read_text(encoding="utf-8")
counts = Counter(corpus)
freq = np.array(list(counts.values()), dtype=np.float64) / len(corpus)
unigram_entropy = float(-(freq * np.log(freq)).sum())
uniform = math.log(len(counts))
print(f"  corpus: {len(corpus):,} characters, vocabulary V = {len(counts)}")
print(f"  uniform guess: ln V = {uniform:.3f} nats;  character frequencies alone: {unigram_entropy:.3f} nats")
print(f"  most common characters: {counts.most_common(5)}")

data = TextDataset(corpus)
V = data.tokenizer.vocab_size
pair_counts = np.ones((V, V))                                           # [current, next], add-one
np.add.at(pair_counts, (data.train[:-1], data.train[1:]), 1)
bigram = pair_counts / pair_counts.sum(axis=1, keepdims=True)           # rows: P(next | current)
bigram_val = float(-np.log(bigram[data.val[:-1], data.val[1:]]).mean())
print(f"  bigram table (add-one, counted on the {len(data.train):,} training characters): val loss "
      f"{bigram_val:.3f} nats on the {len(data.val):,} validation characters")

# %% [markdown]
# Only the loss below the bigram's needs context beyond the current character: that part is attention's
# work.

# %% [markdown]
# ## AdamW: the bias correction
#
# The run updates the weights with AdamW. It keeps running means of the gradient $g$ and of $g^2$:
#
# $$m \leftarrow \beta_1 m + (1 - \beta_1)\, g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2$$
#
# and moves each weight by
#
# $$\theta \leftarrow \theta - \mathrm{lr} \cdot \frac{\hat{m}}{\sqrt{\hat{v}} + \epsilon}$$
#
# Why the hats? Both means start at 0. After $t$ steps of a constant $g$, $m = (1 - \beta_1^t)\, g$: too
# small, only $0.1\, g$ at $t = 1$ with $\beta_1 = 0.9$. The **bias correction** divides that factor out:
# $\hat{m} = m / (1 - \beta_1^t)$, and $\hat{v} = v / (1 - \beta_2^t)$.
#
# So the first step is $\mathrm{lr} \cdot g / (|g| + \epsilon)$: a move of lr for every coordinate,
# whatever the gradient's scale. We test it with gradients of very different sizes.

# %%
lesson.step("AdamW: the bias correction")
def params(seed):
    """A matrix (decayed) and a vector (not decayed), in float64, with gradients of very different sizes."""
    r = np.random.default_rng(seed)
    named = [("weight", Parameter(r.normal(size=(3, 4)))), ("bias", Parameter(r.normal(size=4)))]
    for _, p in named:
        size = r.uniform(1.0, 3.0, p.data.shape) * 10.0 ** r.integers(-2, 3, p.data.shape)   # 1e-2 .. 3e2
        p.grad[...] = r.choice([-1.0, 1.0], p.data.shape) * size
    return named

named = params(0)
before = {name: p.data.copy() for name, p in named}
AdamW(named, lr=1e-3, weight_decay=0.0).step()
moves = np.concatenate([np.abs(p.data - before[name]).ravel() for name, p in named])
grads = np.concatenate([np.abs(p.grad).ravel() for _, p in named])
print(f"  step 1, gradients from {grads.min():.0e} to {grads.max():.0e}: every coordinate moved by "
      f"{moves.min():.7f} .. {moves.max():.7f} (lr = 1e-3)")
lesson.check("bias correction: the first step moves every coordinate by lr (to 1e-5), whatever its gradient",
             np.allclose(moves, 1e-3, rtol=1e-5, atol=0), f"{moves.min():.7f} .. {moves.max():.7f}")

# %% [markdown]
# ## AdamW: decoupled weight decay
#
# Weight decay is **decoupled** (the W of AdamW): $\theta$ shrinks by $\mathrm{lr} \cdot \mathrm{wd} \cdot
# \theta$ directly, before the Adam step.
#
# Why not add $\mathrm{wd} \cdot \theta$ to $g$ instead (L2)? It is not the same: the Adam step divides it
# by $\sqrt{\hat{v}}$, so a weight with a small gradient would be pulled towards 0 at a rate of lr, not
# $\mathrm{lr} \cdot \mathrm{wd} \cdot \theta$.
#
# Two tests:
#
# - one step with $g = 0$, so that only the decay can move a weight: the matrix shrinks, the vector (a
#   bias) does not move;
# - three whole steps, with new gradients at each and the lr from a schedule, against the library's
#   AdamW.

# %%
lesson.step("AdamW: decoupled weight decay")
named = params(1)
for _, p in named:
    p.grad[...] = 0.0
before = {name: p.data.copy() for name, p in named}
AdamW(named, lr=0.1, weight_decay=0.5).step()                       # lr·wd = 0.05
weight, bias = (p.data for _, p in named)
print(f"  g = 0, lr·wd = 0.05: the matrix became {float(np.median(weight / before['weight'])):.4f} × itself, "
      f"the vector moved by {float(abs(bias - before['bias']).max()):.0e}")
lesson.check("decoupled decay: with g = 0 a matrix shrinks by exactly lr·wd·θ, a vector does not move",
             np.allclose(weight, before["weight"] * (1 - 0.1 * 0.5), rtol=1e-12, atol=0)
             and bool((bias == before["bias"]).all()))

ours, library = params(2), params(2)
optimizers = (AdamW(ours, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1),
              AdamW(library, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1))
grad_rng = np.random.default_rng(3)
for it in range(3):                                                  # new gradients at every step
    for (_, p), (_, q) in zip(ours, library):
        q.grad[...] = p.grad[...] = grad_rng.normal(size=p.data.shape)
    optimizers[0].step(lr=1e-2 * (1 - 0.2 * it))                     # a schedule's lr, passed in
    library_adamw_step(optimizers[1], lr=1e-2 * (1 - 0.2 * it))
gap = max(float(abs(p.data - q.data).max()) for (_, p), (_, q) in zip(ours, library))
print(f"  three steps (β2 = 0.95, wd = 0.1, lr from a schedule): AdamW vs the library's, max |diff| {gap:.0e}")
lesson.check("three steps of AdamW equal the library's to 1e-12",
             all(np.allclose(p.data, q.data, rtol=1e-12, atol=1e-12) for (_, p), (_, q) in zip(ours, library)),
             f"{gap:.0e}")

# %% [markdown]
# ## Clipping the gradient norm
#
# What does a huge gradient do to a step? Clipping bounds it. All gradients are scaled by **one** factor,
# so that their global norm $n = \sqrt{\sum g^2}$ (over every parameter at once) is at most $c$:
#
# $$\text{if } n > c: \quad g \leftarrow g \cdot \frac{c}{n + 10^{-6}}$$
#
# (the $10^{-6}$ is torch's). The step keeps its direction and only gets shorter. We clip gradients with
# a global norm far above $c = 1$, and others scaled to a norm below it.

# %%
lesson.step("Clipping the gradient norm")
c = 1.0
big = [p for _, p in params(4)]
small = [p for _, p in params(5)]
flat = lambda ps: np.concatenate([p.grad.ravel() for p in ps])             # noqa: E731
shrink = 0.5 / np.linalg.norm(flat(small))
for p in small:
    p.grad *= shrink                                                       # global norm 0.5 < c
big_before, small_before = flat(big), flat(small)
norm = clip_grad_norm(big, c)
small_norm = clip_grad_norm(small, c)
after = flat(big)
cosine = float(after @ big_before / (np.linalg.norm(after) * np.linalg.norm(big_before)))
print(f"  clipping at c = {c:g}: global norm {norm:.1f} -> {np.linalg.norm(after):.12f} "
      f"(c·n/(n + 1e-6), torch's 1e-6); cosine with the gradient before: {cosine:.15f}")
lesson.check("clipping scales the global norm down to c (c·n/(n + 1e-6) to 1e-12) without turning it "
             "(cosine 1 to 1e-12)",
             abs(np.linalg.norm(after) - c * norm / (norm + 1e-6)) < 1e-12 and abs(cosine - 1) < 1e-12
             and np.linalg.norm(after) <= c, f"norm {np.linalg.norm(after):.15f}, cosine {cosine:.15f}")
lesson.check(f"gradients with a global norm below c ({small_norm:.2f}) are left exactly as they are",
             bool((flat(small) == small_before).all()) and abs(small_norm - 0.5) < 1e-12)

# %% [markdown]
# ## Weight decay, on which weights?
#
# On matrices and embedding tables only. A bias or a LayerNorm gain pulled towards 0 would only fight the
# layer it belongs to.
#
# The test, on a small GPT: one step with every gradient 0, so that only the decay can move a weight.

# %%
lesson.step("Weight decay, on which weights?")
gpt = GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=2, n_head=2, n_embd=16))
named = list(gpt.named_parameters())
before = {name: p.data.copy() for name, p in named}
AdamW(named, lr=0.1, weight_decay=0.5).step()                       # lr·wd = 0.05; every grad is 0
matrices = [name for name, p in named if p.data.ndim >= 2]
vectors = [name for name, p in named if p.data.ndim == 1]
print(f"  a small GPT, g = 0, lr·wd = 0.05: {len(matrices)} matrices and tables ({', '.join(matrices[:3])}, "
      f"...), {len(vectors)} vectors ({', '.join(vectors[:3])}, ...)")
lesson.check(f"weight decay shrinks every matrix and embedding table ({len(matrices)}) by exactly lr·wd·θ",
             len(matrices) > 0 and all(bool((dict(named)[name].data == before[name] * (1 - 0.1 * 0.5)).all())
                                       for name in matrices))
lesson.check(f"... and leaves every bias and LayerNorm gain ({len(vectors)} vectors) exactly as it was",
             len(vectors) > 0 and all(bool((dict(named)[name].data == before[name]).all()) for name in vectors))

# %% [markdown]
# ## The learning-rate schedule
#
# The learning rate is not constant. With $w$ warmup iterations and decay until iteration $d$:
#
# - it rises linearly over the warmup, while Adam's $v$ is still a poor estimate:
#   $\mathrm{lr}_t = \mathrm{lr} \cdot \frac{t + 1}{w + 1}$ for $t < w$;
# - then it falls along half a cosine to `min_lr`, and stays there:
#
# $$\mathrm{lr}_t = \mathrm{min\_lr} + \frac{1 + \cos(\pi r)}{2} \cdot (\mathrm{lr} - \mathrm{min\_lr})$$
#
# where $r = \min\left(\frac{t - w}{d - w}, 1\right)$ goes from 0 at the peak to 1 at iteration $d$.
#
# The code writes this formula out and compares it with the trainer's `cosine_lr`, at the full run's
# settings.

# %%
lesson.step("The learning-rate schedule")
sched = TrainConfig()
lr_max, lr_min, warm, decay = sched.lr, sched.min_lr, sched.warmup_iters, sched.lr_decay_iters
def formula(it):
    if it < warm:
        return lr_max * (it + 1) / (warm + 1)                           # linear rise
    r = min((it - warm) / (decay - warm), 1.0)                          # 0 at the peak, 1 at decay_iters
    return lr_min + 0.5 * (1 + math.cos(math.pi * r)) * (lr_max - lr_min)
lr_at = lambda it: cosine_lr(it, lr=lr_max, min_lr=lr_min, warmup_iters=warm, lr_decay_iters=decay)  # noqa: E731
probes = [0, warm // 2, warm - 1, warm, warm + (decay - warm) // 4, (warm + decay) // 2, decay - 1, decay,
          decay + 1, 3 * decay]
print("  lr at iteration " + ", ".join(f"{it}: {lr_at(it):.2e}" for it in probes))
rise = np.diff([lr_at(it) for it in range(warm + 1)])
lesson.check(f"the lr rises linearly over the {warm} warmup iterations and peaks at lr = {lr_max:g}",
             np.allclose(rise, lr_max / (warm + 1), rtol=1e-9, atol=0) and lr_at(warm) == lr_max,
             f"steps {rise.min():.3e} .. {rise.max():.3e}")
lesson.check("then it follows min_lr + ½(1 + cos(π·r))·(lr − min_lr) (to 1e-12 at " + str(len(probes)) +
             f" iterations), reaching min_lr = {lr_min:g} at {decay} and staying there",
             all(abs(lr_at(it) - formula(it)) < 1e-12 for it in probes)
             and lr_at(decay) == lr_at(3 * decay) == lr_min,
             f"largest gap {max(abs(lr_at(it) - formula(it)) for it in probes):.0e}")

# %% [markdown]
# ## Does the warmup matter?
#
# At a learning rate far too high, train the same small model with and without it, and watch the highest
# loss:
#
# - lr = 1, a thousand times the full run's;
# - 30 iterations of a small GPT, with the lr at 1 from the first step, or warmed up over 15 iterations;
# - the same weights and batches (the seed) for both, and three seeds.

# %%
lesson.step("Does the warmup matter?")
def peak_loss(seed, warmup_iters, iters=30):
    model = GPT(GPTConfig(vocab_size=V, block_size=32, n_layer=2, n_head=2, n_embd=32, seed=seed))
    optimizer = AdamW(model.named_parameters(), lr=1.0, betas=(0.9, 0.99), weight_decay=0.1)
    rng, losses = np.random.default_rng(seed), []
    for it in range(iters):
        x, y = data.get_batch("train", 8, 32, rng)
        model.zero_grad()
        _, loss = model(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step(cosine_lr(it, lr=1.0, min_lr=0.1, warmup_iters=warmup_iters, lr_decay_iters=iters))
        losses.append(float(loss))
    return max(losses)

peaks = [(peak_loss(seed, 0), peak_loss(seed, 15)) for seed in (0, 1, 2)]
print("  highest loss in 30 iterations at lr = 1, without / with 15 warmup iterations: " +
      ", ".join(f"seed {seed}: {cold:.1f} / {warm_peak:.1f}" for seed, (cold, warm_peak) in enumerate(peaks)) +
      f" nats (ln V = {uniform:.2f})")
lesson.check("without warmup the loss spikes to several times its peak with warmup (more than 2.5 times, "
             "for each of 3 seeds)", all(cold > 2.5 * warm_peak for cold, warm_peak in peaks),
             ", ".join(f"{cold / warm_peak:.1f}×" for cold, warm_peak in peaks))

# %% [markdown]
# Why so violent? The bias correction makes the very first step move every weight by the full lr: here
# by 1, all at once.

# %% [markdown]
# ## One training iteration
#
# One iteration of the loop puts the pieces above in order:
#
# 1. zero the gradients;
# 2. forward;
# 3. backward;
# 4. clip;
# 5. step, at the schedule's lr.
#
# Six iterations of `training_iteration` (defined at the top; with `--exercise`, yours), in float64 and
# clipped at 0.1, against the library's loop on the same batches.

# %%
lesson.step("One training iteration")
it_cfg = TrainConfig(lr=1e-2, min_lr=1e-3, warmup_iters=2, lr_decay_iters=6, grad_clip=0.1)
dtype_before = backend.default_dtype()
backend.set_default_dtype("float64")
models = [GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, n_embd=16, seed=5)) for _ in range(2)]
backend.set_default_dtype(dtype_before)
optimizers = [AdamW(m.named_parameters(), lr=it_cfg.lr, betas=(0.9, 0.99), weight_decay=0.1) for m in models]
batch_rng, losses, gaps = np.random.default_rng(6), [], []
for it in range(6):
    x, y = data.get_batch("train", 8, 16, batch_rng)
    losses.append(training_iteration(models[0], optimizers[0], x, y, it, it_cfg))
    library_loss = library_iteration(models[1], optimizers[1], x, y, it, it_cfg, adamw_step=library_adamw_step)
    gaps.append(max([abs(float(losses[-1]) - library_loss)] + [float(abs(p.data - q.data).max()) for p, q in
                    zip(models[0].parameters(), models[1].parameters())]))
print("  six iterations (float64, clipped at 0.1): loss " + ", ".join(f"{float(l):.3f}" for l in losses)
      + "; largest gap to the library's loop, by iteration: " + ", ".join(f"{g:.0e}" for g in gaps))
lesson.check("six training iterations give the library's loop's weights and losses to 1e-12 (float64)",
             max(gaps) < 1e-12, ", ".join(f"{g:.0e}" for g in gaps))
lesson.check("... and the loss falls (by more than 0.1 nats in six iterations)",
             float(losses[-1]) < float(losses[0]) - 0.1, f"{float(losses[0]):.3f} -> {float(losses[-1]):.3f}")

# %% [markdown]
# ## The run
#
# Now the real thing: `train(cfg)` runs that loop on Tiny Shakespeare. The code prints the configuration:
#
# - the model: `n_layer`, `n_head`, `n_embd`, and the context `block_size`;
# - the batches and the number of iterations;
# - AdamW: its peak lr, the warmup, the cosine decay to `min_lr`, the weight decay, the gradient clipping.
#
# Each window of $T$ characters holds $T$ training examples at once: predict character $t + 1$ from
# characters $0 \ldots t$, for every $t$.
#
# The trainer prints as nanoGPT does. It writes `metrics.jsonl`, `loss.png` and a checkpoint to its
# output folder.

# %%
lesson.step("The run")
if lesson.quick:
    cfg = TrainConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, max_iters=40, lr=3e-3,
                      min_lr=3e-4, warmup_iters=5, lr_decay_iters=40, eval_interval=20, eval_iters=5,
                      log_interval=10, sample_chars=200)
else:
    # nanoGPT's "baby GPT" for the CPU: the trainer's defaults, all 2000 iterations (600 stopped at val
    # 2.28, barely past the bigram table, and lesson 17's greedy text was "The the the ...")
    cfg = TrainConfig(max_iters=2000, eval_interval=250, eval_iters=20, log_interval=100, sample_chars=300)
cfg.out_dir = str(lesson.out / "16_train_gpt")        # metrics.jsonl, loss.png and ckpt.npz go here
cfg.seed = 1337
cfg.overwrite = True                                 # a rerun of this lesson replaces its earlier run
print(f"  a GPT with n_layer = {cfg.n_layer}, n_head = {cfg.n_head}, n_embd = {cfg.n_embd}, context "
      f"block_size = {cfg.block_size}")
print(f"  batches of {cfg.batch_size} windows; {cfg.max_iters} iterations of AdamW (lr {cfg.lr:g}, "
      f"{cfg.warmup_iters} warmup iterations, cosine decay to {cfg.min_lr:g}, weight decay {cfg.weight_decay}, "
      f"gradient norm clipped at {cfg.grad_clip})")
print(f"  output folder: {cfg.out_dir}\n")
summary = train(cfg, log=lambda line: print("  " + line))

with open(f"{cfg.out_dir}/metrics.jsonl") as metrics:
    records = [json.loads(line) for line in metrics]
evals = [r for r in records if r["kind"] == "eval"]
steps = [r for r in records if r["kind"] == "train"]
schedule = [cosine_lr(r["iter"], lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                      lr_decay_iters=cfg.lr_decay_iters) for r in steps]
lesson.check(f"the lr the trainer logged ({len(steps)} records) is the schedule of step 6",
             len(steps) > 0 and all(abs(r["lr"] - want) < 1e-15 for r, want in zip(steps, schedule)),
             f"{steps[0]['lr']:.2e} at iteration {steps[0]['iter']}, {steps[-1]['lr']:.2e} at {steps[-1]['iter']}")
first, last = evals[0], evals[-1]
print(f"\n  {summary['n_params']:,} parameters; {summary['ms_per_iter']:.1f} ms per iteration; "
      f"{summary['wall_s']:.1f} s in all")
print(f"  val loss: {first['val_loss']:.3f} at iteration {first['iter']} -> {last['val_loss']:.3f} at "
      f"iteration {last['iter']} (best {summary['best_val_loss']:.3f})")
lesson.check("before training the loss is ln V: predictions are nearly uniform (within 0.1)",
             abs(first["val_loss"] - uniform) < 0.1, f"{first['val_loss']:.3f} vs {uniform:.3f}")

# %% [markdown]
# ## Reading the loss
#
# How far did the loss fall, and where did the drop come from? Split the fall from $\ln V$ to the model's
# best val loss by the yardsticks of step 1:
#
# - from $\ln V$ to the character frequencies' entropy: frequencies alone;
# - from there to the bigram table: the current character;
# - below the bigram table: the context before it, attention's work.
#
# In the full run that last part must be more than 0.4 nats. And the last gap between the train and val
# losses: one that keeps growing would be overfitting.

# %%
lesson.step("Reading the loss")
drop = 0.5 if lesson.quick else 1.2
lesson.check(f"training lowers the val loss clearly below ln V (by more than {drop} nats)",
             summary["best_val_loss"] < uniform - drop, f"{summary['best_val_loss']:.3f}")
context_gain = bigram_val - summary["best_val_loss"]
print(f"  of the drop from ln V to the model's {summary['best_val_loss']:.3f}: {uniform - unigram_entropy:.2f} nats "
      f"come from character frequencies, {unigram_entropy - bigram_val:.2f} from the current character "
      f"(the bigram table), {context_gain:.2f} from the context before it "
      f"({100 * max(context_gain, 0) / (uniform - summary['best_val_loss']):.0f}% of the drop)")
if not lesson.quick:
    lesson.check("the val loss is well below the bigram table's (by more than 0.4 nats): the model uses "
                 "the context before the current character", context_gain > 0.4,
                 f"{summary['best_val_loss']:.3f} vs bigram {bigram_val:.3f}")
else:
    print("  (--quick: 40 iterations do not reach the bigram table; the full run is checked against it)")
gap = last["val_loss"] - last["train_loss"]
print(f"  last evaluation: train {last['train_loss']:.3f}, val {last['val_loss']:.3f} (gap {gap:+.3f}; "
      "a gap that keeps growing would be overfitting)")
lesson.figure(plots.loss_curve(steps, evals, uniform, unigram_entropy, bigram_val, len(counts),
                               summary["n_params"], cfg.max_iters), "16_loss_curve")
print(f"  (the trainer's own plot: {cfg.out_dir}/loss.png)")

# %% [markdown]
# ## Only the past: could the model be cheating?
#
# A low loss proves nothing if the model can see the answer. The target at position $t$ is the input at
# $t + 1$. A model without the causal mask could copy it from the next position: its loss would fall
# towards 0 while every check above still passed.
#
# Two checks that such a model fails:
#
# 1. Change every character after position $t$ and run the trained model again: the logits at positions
#    $0 \ldots t$ must not move at all.
# 2. (The full run.) The val loss must stay far above 0. Character models many times larger than this
#    one, trained far longer, stay above 1.4 nats on this split (nanoGPT's 10.7M-parameter GPU model
#    reaches about 1.47). A loss below 1.2 would mean the answer leaked in.

# %%
lesson.step("Only the past: could the model be cheating?")
checkpoint = load_checkpoint(f"{cfg.out_dir}/ckpt.npz")
model = GPT(GPTConfig(**checkpoint.config["model"]))
restore(checkpoint, model)
model.eval()
T = model.config.block_size
t = T // 2                                                              # positions 0 .. t stay as they are
x = data.val[None, :T]                                                  # [1, T]: the first validation window
changed = x.copy()
changed[0, t + 1:] = np.random.default_rng(0).integers(0, V, T - t - 1)  # a different future
logits, _ = model(backend.asarray(x))                                   # [1, T, V]
logits_changed, _ = model(backend.asarray(changed))
moved = np.abs(backend.to_numpy(logits - logits_changed))[0].max(axis=-1)   # [T]: largest change per position
print(f"  window: {data.tokenizer.decode(x[0, :t + 1])!r} | then {T - t - 1} characters replaced")
print(f"  largest change of a logit at positions 0..{t}: {moved[:t + 1].max():.2e};  "
      f"at positions {t + 1}..{T - 1}: {moved[t + 1:].max():.2f}")
lesson.check(f"changing the characters after position {t} leaves the logits at 0..{t} unchanged: the "
             "prediction at t sees only the past", moved[:t + 1].max() < 1e-5, f"{moved[:t + 1].max():.1e}")
lesson.check("... while the logits after it do change (the model reads its input)", moved[t + 1:].min() > 1e-3,
             f"smallest change {moved[t + 1:].min():.2f}")
floor = 1.2
if not lesson.quick:
    lesson.check(f"the val loss stays far above 0 (above {floor} nats): no answer leaked in",
                 summary["best_val_loss"] > floor, f"{summary['best_val_loss']:.3f}")
else:
    print(f"  (--quick: 40 iterations are far from the floor of {floor} nats, leak or not; the full run checks it)")
lesson.figure(plots.future_cannot_leak(moved, t), "16_future_cannot_leak")

# %% [markdown]
# In the figure, the positions up to $t$ (blue) did not move; only those after it (orange) did.

# %% [markdown]
# ## A sample
#
# After training, the trainer continues a prompt of one newline character by `sample_chars` characters
# (printed below). It samples each from the model's next-character distribution at temperature 0.8
# (lesson 17), with a fixed seed.

# %%
lesson.step("A sample")
print(f"  the prompt (a newline) and {cfg.sample_chars} sampled characters:")
sample = summary["sample"]
print("  " + "-" * 60)
print("\n".join("  | " + line for line in sample.split("\n")))
print("  " + "-" * 60)
lesson.check("the sample is the prompt plus the requested number of characters",
             len(sample) == 1 + cfg.sample_chars and sample[0] == "\n", f"{len(sample)} characters")
sample_counts = Counter(sample)
print(f"  most common characters in the sample: {sample_counts.most_common(5)}")
lesson.check("its most common character is the corpus's most common one, the space",
             sample_counts.most_common(1)[0][0] == counts.most_common(1)[0][0] == " ")

# %% [markdown]
# A short run learns the alphabet's statistics, words' shapes, line breaks and capitalised names first;
# spelling and grammar need far longer training.

# %%
lesson.done()
