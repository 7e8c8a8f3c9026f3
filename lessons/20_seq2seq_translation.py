# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 20: an encoder-decoder learns a toy translation: reversing strings
#
# The task of `scripts/train_seq2seq.py`: translate a string of letters into the same string reversed,
# "attention" → "noitnetta".
#
# - To write output character $t$, the decoder must find source character $L-1-t$ (for a source of
#   $L$ letters).
# - The only way the decoder can see the source is **cross-attention**.
# - So the cross-attention weights of a trained model should form an **anti-diagonal**: the picture of
#   a model that has learned where to look.
#
# The lesson imports the task's data, evaluation and heat-map functions from
# `tinytransformer/tasks/reversal.py` and trains the library's `Seq2Seq` with the script's loop.
# With `--quick`: a small model on strings of 3-6 letters, about a second of training. The full run: the
# script's model on 3-10 letters.
#
# Run: `python lessons/20_seq2seq_translation.py` (add `--no-pause` to run straight through).

# %%
import time

import numpy as np

from _lesson import Lesson
from _plots import lesson20 as plots

from tinytransformer import AdamW, backend, clip_grad_norm, cosine_lr
from tinytransformer.models import Seq2Seq, Seq2SeqConfig
from tinytransformer.tasks import reversal as task  # PAD, BOS, EOS, ITOS, encode, exact_match_accuracy, ...

lesson = Lesson("20 Encoder-decoder: a toy translation", steps=6)

if lesson.quick:
    settings = {"n_layer": 1, "n_embd": 32, "n_head": 4, "min_len": 3, "max_len": 6, "n_train": 3000,
                "n_test": 300, "batch_size": 32, "iters": 200, "lr": 5e-3, "min_lr": 5e-4, "warmup_iters": 20,
                "log_interval": 25}
else:  # the script's model, for fewer iterations than its 1500
    settings = {"n_layer": 2, "n_embd": 64, "n_head": 4, "min_len": 3, "max_len": 10, "n_train": 10000,
                "n_test": 1000, "batch_size": 64, "iters": 600, "lr": 2e-3, "min_lr": 2e-4, "warmup_iters": 60,
                "log_interval": 50}
S = settings

# %% [markdown]
# ## The data
#
# What do we train on? Random strings of letters, all distinct.
#
# - Some are for training; the rest are **held out**, never seen in training.
# - One vocabulary for both sides: `PAD` = 0, `BOS` = 1, `EOS` = 2, then the letters a..z.

# %%
lesson.step("The data")
rng = np.random.default_rng(1337)
strings = task.unique_random_strings(S["n_train"] + S["n_test"], rng, S["min_len"], S["max_len"])
train_strings, test_strings = strings[:S["n_train"]], strings[S["n_train"]:]
width = S["max_len"] + 1                                             # the longest x + EOS
train, test = task.encode(train_strings, width), task.encode(test_strings, width)
print(f"  {len(strings):,} strings of {S['min_len']}-{S['max_len']} letters: {len(train_strings):,} for "
      f"training, {len(test_strings):,} held out, e.g. {train_strings[:4]}")
print(f"  vocabulary: {len(task.ITOS)} tokens: {task.ITOS[:4]} ... {task.ITOS[-1]!r}")
lesson.check("no held-out string is in the training set", not set(train_strings) & set(test_strings))

# %% [markdown]
# ## What the encoder and the decoder read
#
# Take $x$ = "attend" and its translation $y$ = "dnetta" ($x$ reversed):
#
# - the **encoder** reads `src` = $x$ + `EOS`;
# - the **decoder** is trained with *teacher forcing*: it reads `tgt_in` = `BOS` + $y$ and predicts
#   `targets` = $y$ + `EOS`, every position at once, under the causal mask.
#
# `PAD` fills each row to a fixed width. It is masked in attention and ignored by the loss.

# %%
lesson.step("What the encoder and the decoder read")
src, tgt_in, targets = task.encode(["attend"], width)                # one example, [1, width] each
for name, row in (("src", src), ("tgt_in", tgt_in), ("targets", targets)):
    print(f"  {name:<8} {row[0].tolist()}  = {' '.join(task.ITOS[i] for i in row[0])}")
n = len("attend")
lesson.check("tgt_in is BOS, then targets shifted right by one (the decoder never reads EOS)",
             tgt_in[0, 0] == task.BOS and (tgt_in[0, 1:n + 1] == targets[0, :n]).all())
lesson.check("targets spell the source reversed, then EOS",
             task.to_text(task.until_eos(targets[0].tolist())) == "attend"[::-1])

# %% [markdown]
# At position $t$ the decoder has seen $y_{<t}$ and predicts $y_t$: the `targets` row is `tgt_in`
# moved one place to the left.

# %% [markdown]
# ## The model
#
# `Seq2Seq` has two stacks of blocks:
#
# - **encoder** blocks: self-attention over the source, in both directions;
# - **decoder** blocks: causal self-attention, then cross-attention over the encoder's output.
#
# Positions are **learned** vectors. Why not the fixed sinusoidal table? With it
# (`python scripts/train_seq2seq.py --positional sinusoidal`) the script's model sits on a plateau near
# loss 2.8 for about 900 iterations before it finds the task. Learned positions are free to become
# whatever makes "output $t$ looks at source $L-1-t$" easy to compute.

# %%
lesson.step("The model")
config = Seq2SeqConfig(src_vocab_size=len(task.ITOS), tgt_vocab_size=len(task.ITOS), block_size=width,
                       n_encoder_layer=S["n_layer"], n_decoder_layer=S["n_layer"], n_head=S["n_head"],
                       n_embd=S["n_embd"], positional="learned", pad_id=task.PAD, seed=1337)
model = Seq2Seq(config)
optimizer = AdamW(model.named_parameters(), lr=S["lr"], weight_decay=0.01)
print(f"  {S['n_layer']} encoder block(s), {S['n_layer']} decoder block(s), n_embd = {S['n_embd']}, "
      f"{S['n_head']} heads: {model.num_parameters():,} parameters")

# %% [markdown]
# ## Training
#
# The loop of `scripts/train_seq2seq.py`, once per iteration:
#
# 1. a random batch of training examples;
# 2. forward with the loss;
# 3. zero the gradients, backward;
# 4. clip the gradient norm to 1;
# 5. an AdamW step, with a warmed-up cosine learning rate.
#
# What loss means "it reads the source"? A model that ignores the source can at best learn which
# letters and lengths are common. Its loss stays near $\ln 26 \approx 3.3$ per letter. Falling well
# below that requires reading the source through cross-attention.

# %%
lesson.step("Training")
print(f"  {S['iters']} iterations, batches of {S['batch_size']}, lr {S['lr']:.0e} -> {S['min_lr']:.0e}")
losses, held_out = [], []
t0 = time.perf_counter()
for it in range(S["iters"]):
    ix = rng.integers(len(train_strings), size=S["batch_size"])
    batch = [backend.asarray(a[ix]) for a in train]                   # src, tgt_in, targets: [B, width] each
    lr = cosine_lr(it, lr=S["lr"], min_lr=S["min_lr"], warmup_iters=S["warmup_iters"],
                   lr_decay_iters=S["iters"])
    _, loss = model(*batch)
    model.zero_grad()
    model.backward()
    clip_grad_norm(model.parameters(), 1.0)
    optimizer.step(lr=lr)
    losses.append(float(loss))
    if it % S["log_interval"] == 0 or it == S["iters"] - 1:
        held_out.append((it, task.held_out_loss(model, test)))
        print(f"  iter {it}: loss {losses[-1]:.4f}, held-out loss {held_out[-1][1]:.4f}, lr {lr:.2e}")
seconds = time.perf_counter() - t0
start_loss, end_loss = np.mean(losses[:5]), np.mean(losses[-10:])
print(f"  {S['iters']} iterations in {seconds:.1f} s; loss {start_loss:.3f} (first 5) -> "
      f"{end_loss:.3f} (last 10)")
lesson.check("the training loss falls to less than half its starting value", end_loss < 0.5 * start_loss,
             f"{start_loss:.3f} -> {end_loss:.3f}")
lesson.check("so does the loss on held-out strings", held_out[-1][1] < 0.5 * held_out[0][1],
             f"{held_out[0][1]:.3f} -> {held_out[-1][1]:.3f}")

# %% [markdown]
# ## Translating unseen strings
#
# At inference there is no target to read. `greedy_decode`:
#
# 1. encodes the source once;
# 2. starts from `BOS`;
# 3. appends the most likely token, feeding its own outputs back in, until `EOS`.
#
# A prediction counts only if the whole output equals the reversed string (**exact match**).

# %%
lesson.step("Translating unseen strings")
accuracy, predictions = task.exact_match_accuracy(model, test_strings, test)
for s, prediction in list(zip(test_strings, predictions))[:5]:
    output = task.to_text(prediction)
    print(f"  {s:>{S['max_len']}} -> {output:<{S['max_len']}} {'ok' if output == s[::-1] else 'wrong'}")
print(f"  held-out exact-match accuracy: {accuracy:.3f} "
      f"({round(accuracy * len(test_strings))}/{len(test_strings)})")
if not lesson.quick:
    lesson.check("held-out exact-match accuracy is above 95%", accuracy > 0.95, f"{accuracy:.3f}")
else:
    print("  (--quick: the accuracy is reported; the full run checks it)")

# %% [markdown]
# ## Where the decoder looks
#
# Run the model once on a held-out example, teacher-forced with its own prediction. Then read the
# cross-attention weights of the last decoder block: shape `[h, T_tgt, T_src]`, one row per output
# position.
#
# Reversal predicts an **anti-diagonal**: output $t$ (the letter $x_{L-1-t}$) looks at source
# position $L-1-t$. How strong is "looks at"? The source has $L+1$ tokens ($L$ letters and `EOS`), so
# attention spread evenly would give each $\frac{1}{L+1}$.
#
# The script's plot shows every head; the lesson's figure shows their mean, beside the loss curve.

# %%
lesson.step("Where the decoder looks")
example = max(test_strings[:100], key=len)                           # a long example shows the pattern best
prediction = predictions[test_strings.index(example)]
heads_path = lesson.out / "20_cross_attention_heads.png"
task.plot_cross_attention(model, example, prediction, heads_path)    # also leaves the weights in the model
lesson.figure_file(heads_path, "every head, by scripts/train_seq2seq.py")
weights = backend.to_numpy(model.decoder_blocks[-1].cross_attn.sublayer.weights)[0]   # [h, T_tgt, T_src]
mean_weights = weights.mean(axis=0)                                  # [T_tgt, T_src]
L = len(example)
rows = min(len(prediction), L)
on_diagonal = np.array([mean_weights[t, L - 1 - t] for t in range(rows)])
hits = sum(int(mean_weights[t].argmax() == L - 1 - t) for t in range(rows))
print(f"  example {example!r} -> {task.to_text(prediction)!r}")
print(f"  mean weight on the anti-diagonal source position: {on_diagonal.mean():.2f} (uniform would be "
      f"{1 / (L + 1):.2f}); rows whose largest weight is there: {hits}/{rows}")
lesson.check("cross-attention puts more weight on the anti-diagonal than a uniform spread would",
             on_diagonal.mean() > 1 / (L + 1), f"{on_diagonal.mean():.2f} > {1 / (L + 1):.2f}")
lesson.check("in at least 80% of the rows the largest weight is on the anti-diagonal", hits >= 0.8 * rows,
             f"{hits}/{rows}")
lesson.figure(plots.loss_and_cross_attention(losses, held_out, mean_weights, list(example) + ["<eos>"],
                                             [task.ITOS[i] for i in prediction] + ["<eos>"]),
              "20_seq2seq_loss_and_cross_attention")

# %% [markdown]
# The last row writes `EOS`. It has no letter to copy, and may look anywhere.

# %%
lesson.done()
