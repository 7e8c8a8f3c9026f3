# %% [markdown]
"""Lesson 16: Training a small GPT on Shakespeare.

Everything so far comes together: a character-level GPT learns to predict the next character of Tiny
Shakespeare (1.1 million characters, 65 distinct ones). The loop is nanoGPT's, in tinytransformer/trainer.py:

    for it in 0 .. max_iters:
        every eval_interval: estimate the train and val loss (fixed batches, no update)
        x, y = random windows of block_size characters, y shifted by one
        loss = model(x, y);  model.backward()            (every layer's hand-written backward)
        clip the gradient norm;  AdamW step with a warmed-up cosine learning rate

With --quick the model is tiny and trains for 40 iterations (a few seconds); without it, a few hundred
iterations of a larger model (about a minute on a laptop CPU).

Run:  python lessons/16_train_gpt.py        (add --no-pause to run straight through)
"""

# %%
import json
import math
from collections import Counter

import numpy as np

from _lesson import Lesson

from tinytransformer.data import find_shakespeare
from tinytransformer.trainer import TrainConfig, train

lesson = Lesson("12 Training a small GPT on Shakespeare", __doc__, steps=3)

# %%
lesson.step("What loss to expect", """
    The loss is the mean cross-entropy of the next character, in nats. A model that knows nothing gives
    every one of the V = 65 characters probability 1/65, so its loss is ln 65 ≈ 4.17; GPT-2's
    initialisation (small weights) starts there. A model that learned only how often each character
    occurs, ignoring the context, would reach the entropy of the character frequencies. Anything below
    that needs the context: attention at work.""")
corpus = find_shakespeare().read_text(encoding="utf-8")
counts = Counter(corpus)
freq = np.array(list(counts.values()), dtype=np.float64) / len(corpus)
unigram_entropy = float(-(freq * np.log(freq)).sum())
uniform = math.log(len(counts))
print(f"  corpus: {len(corpus):,} characters, vocabulary V = {len(counts)}")
print(f"  uniform guess: ln V = {uniform:.3f} nats;  character frequencies alone: {unigram_entropy:.3f} nats")
print(f"  most common characters: {counts.most_common(5)}")

# %%
if lesson.quick:
    cfg = TrainConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, max_iters=40, lr=3e-3,
                      min_lr=3e-4, warmup_iters=5, lr_decay_iters=40, eval_interval=20, eval_iters=5,
                      log_interval=10, sample_chars=200)
else:
    # nanoGPT's "baby GPT" for the CPU (the trainer's defaults), for 600 of its 2000 iterations
    cfg = TrainConfig(max_iters=600, warmup_iters=60, lr_decay_iters=600, eval_interval=100, eval_iters=10,
                      log_interval=50, sample_chars=300)
cfg.out_dir = str(lesson.out / "16_train_gpt")        # metrics.jsonl, loss.png and ckpt.npz go here
cfg.seed = 1337
cfg.overwrite = True                                 # a rerun of this lesson replaces its earlier run

lesson.step("The run", f"""
    A GPT with n_layer = {cfg.n_layer}, n_head = {cfg.n_head}, n_embd = {cfg.n_embd}, context
    block_size = {cfg.block_size}; batches of {cfg.batch_size} windows; {cfg.max_iters} iterations of
    AdamW (lr {cfg.lr:g}, {cfg.warmup_iters} warmup iterations, cosine decay to {cfg.min_lr:g}, weight
    decay {cfg.weight_decay}, gradient norm clipped at {cfg.grad_clip}). Each window of T characters
    holds T training examples at once: predict character t + 1 from characters 0 .. t, for every t.
    The trainer prints as nanoGPT does; it writes metrics.jsonl, loss.png and a checkpoint to
    {cfg.out_dir}.""")
summary = train(cfg, log=lambda line: print("  " + line))

with open(f"{cfg.out_dir}/metrics.jsonl") as metrics:
    records = [json.loads(line) for line in metrics]
evals = [r for r in records if r["kind"] == "eval"]
steps = [r for r in records if r["kind"] == "train"]
first, last = evals[0], evals[-1]
print(f"\n  {summary['n_params']:,} parameters; {summary['ms_per_iter']:.1f} ms per iteration; "
      f"{summary['wall_s']:.1f} s in all")
print(f"  val loss: {first['val_loss']:.3f} at iteration {first['iter']} -> {last['val_loss']:.3f} at "
      f"iteration {last['iter']} (best {summary['best_val_loss']:.3f})")
lesson.check("before training the loss is ln V: predictions are nearly uniform (within 0.1)",
             abs(first["val_loss"] - uniform) < 0.1, f"{first['val_loss']:.3f} vs {uniform:.3f}")
drop = 0.5 if lesson.quick else 1.2
lesson.check(f"training lowers the val loss clearly below ln V (by more than {drop} nats)",
             summary["best_val_loss"] < uniform - drop, f"{summary['best_val_loss']:.3f}")
if not lesson.quick:
    lesson.check("the val loss is below the character-frequency entropy: the model uses the context",
                 summary["best_val_loss"] < unigram_entropy,
                 f"{summary['best_val_loss']:.3f} < {unigram_entropy:.3f}")
gap = last["val_loss"] - last["train_loss"]
print(f"  last evaluation: train {last['train_loss']:.3f}, val {last['val_loss']:.3f} (gap {gap:+.3f}): "
      "too few iterations to overfit")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7.5, 4.5))
ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=1, alpha=0.5, label="train (one batch)")
ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (estimate)")
ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val (estimate)")
ax.axhline(uniform, color="gray", linestyle="--", lw=1)
ax.text(0, uniform, f" ln {len(counts)} = {uniform:.2f} (uniform)", va="bottom", fontsize=8)
ax.axhline(unigram_entropy, color="gray", linestyle=":", lw=1)
ax.text(0, unigram_entropy, f" character frequencies only = {unigram_entropy:.2f}", va="bottom", fontsize=8)
ax.set(xlabel="iteration", ylabel="cross-entropy (nats per character)",
       title=f"char GPT on Tiny Shakespeare: {summary['n_params']:,} parameters, {cfg.max_iters} iterations")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
lesson.figure(fig, "16_loss_curve")
print(f"  (the trainer's own plot: {cfg.out_dir}/loss.png)")

# %%
lesson.step("A sample", f"""
    After training, the trainer continues the prompt "\\n" by {cfg.sample_chars} characters, sampling
    each from the model's next-character distribution at temperature 0.8 (lesson 17), with a fixed seed.
    A short run learns the alphabet's statistics, words' shapes, line breaks and capitalised names
    first; spelling and grammar need far longer training.""")
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

lesson.done()
