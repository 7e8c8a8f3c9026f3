# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 14: three training objectives: next token, masked token, sequence to sequence
#
# Lesson 13 showed the three families' attention patterns on untrained models. What makes a family is
# also what it is trained to predict, and so what it may look at while predicting:
#
# - **next token** (GPT): read tokens $0 \ldots t$, predict token $t + 1$. Every position is a target,
#   and the causal mask hides the answer (the next token is in the input). Loss: $-\log p(x_{t+1} \mid
#   x_{\le t})$, averaged over every position $t$.
# - **masked token** (BERT): replace ~15% of the tokens by `[MASK]`, read the whole sequence both ways,
#   predict the hidden tokens. Loss: $-\log p(x_t \mid \tilde{x})$, with $\tilde{x}$ the masked input,
#   averaged over the masked positions only.
# - **sequence to sequence**: read the whole source $x$, write the target $y$ one token at a time. The
#   decoder sees the source in full and the target up to $t$. Loss: $-\log p(y_{t+1} \mid y_{\le t}, x)$.
#
# The lesson trains one small model of each with the same training loop (only the batches differ): a
# GPT and an encoder on Tiny Shakespeare's characters, and the encoder-decoder on lesson 20's string
# reversal. Each gets one number, and a check that would fail if its objective leaked the answer.
#
# Run: `python lessons/14_three_objectives.py` (add `--no-pause` to run straight through).

# %%
import math
import time

import numpy as np
from _lesson import Lesson
from _plots import lesson14 as plots

from tinytransformer import AdamW, backend, causal_mask, clip_grad_norm, cosine_lr, padding_mask
from tinytransformer.data import TextDataset, find_shakespeare, read_text
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, EncoderClassifier, EncoderConfig, GPTConfig, Seq2Seq, Seq2SeqConfig
from tinytransformer.tasks import reversal  # lesson 20's task: encode, exact_match_accuracy, ...

lesson = Lesson("14 Three training objectives", steps=8)

if lesson.quick:
    S = {"n_layer": 1, "n_embd": 32, "block_size": 16, "batch_size": 16, "gpt_iters": 100, "mlm_iters": 400,
         "s2s_iters": 300, "eval_batches": 8}
else:
    S = {"n_layer": 2, "n_embd": 64, "block_size": 32, "batch_size": 32, "gpt_iters": 400, "mlm_iters": 800,
         "s2s_iters": 400, "eval_batches": 16}
MASK_RATE = 0.3         # BERT hides 15%; twice that gives twice the targets per batch in a short run
MLM_MARGIN = 0.1        # nats below the frequency entropy, in the full run (which measured 2.66 vs 3.31)
FREQ_NEAR = 0.15        # nats above the frequency entropy that still count as having learned the frequencies
ACCURACY_MARGIN = 0.05  # full run: top-guess accuracy above always guessing the space
SEED = 1337


def train(model, next_batch, iters, lr=3e-3):
    """The loop every family shares: forward with the loss, backward, clip, AdamW with a cosine schedule.

    ``next_batch(it)`` returns the model's inputs and targets; nothing else differs between objectives."""
    optimizer = AdamW(model.named_parameters(), lr=lr, weight_decay=0.01)
    losses = []
    with one_blas_thread():  # matrices this small run fastest on one BLAS thread
        for it in range(iters):
            _, loss = model(*next_batch(it))
            model.zero_grad()
            model.backward()
            clip_grad_norm(model.parameters(), 1.0)
            optimizer.step(lr=cosine_lr(it, lr=lr, min_lr=lr / 10, warmup_iters=iters // 10, lr_decay_iters=iters))
            losses.append(float(loss))
    return losses


# %% [markdown]
# ## What each model may see
#
# One picture per objective, drawn from the masks the library's models build (`causal_mask`,
# `padding_mask`), on a short text. How to read a picture:
#
# - row $i$ is a position that produces an output;
# - column $j$ is an input it may read (yellow);
# - the letter at the row's end is what it is trained to output there.
#
# Where is each model's answer, and can it read it?

# %%
lesson.step("What each model may see")
text = "to be or not"
T = len(text) - 1
gpt_x, gpt_y = text[:-1], text[1:]
visible_gpt = backend.to_numpy(causal_mask(T))                                     # [T, T]
rng_demo = np.random.default_rng(3)
hidden = np.sort(rng_demo.choice(T, size=3, replace=False))                         # positions to mask
mlm_x = "".join("_" if i in hidden else c for i, c in enumerate(gpt_x))
mlm_y = [c if i in hidden else None for i, c in enumerate(gpt_x)]           # None: no target here
N_PAD = 2
mlm_cols = list(mlm_x) + ["·"] * N_PAD                                              # padded to T + 2
is_pad = np.array([[False] * T + [True] * N_PAD])                                   # [1, T + 2]
visible_mlm = backend.to_numpy(padding_mask(backend.asarray(is_pad)))[0, 0]         # [1, T + 2]
visible_mlm = np.broadcast_to(visible_mlm, (T + N_PAD, T + N_PAD))                  # [T + 2, T + 2]
source, target = "abcd", "dcba"
tgt_in = "^" + target                                                               # ^ = BOS
s2s_cols = list(source) + list(tgt_in)
n_src, n_tgt = len(source), len(tgt_in)
visible_s2s = np.zeros((n_src + n_tgt, n_src + n_tgt), dtype=bool)
visible_s2s[:n_src, :n_src] = True                                   # encoder: bidirectional over source
visible_s2s[n_src:, :n_src] = True                                   # cross-attention: all of the source
visible_s2s[n_src:, n_src:] = backend.to_numpy(causal_mask(n_tgt))   # decoder self-attention: causal
s2s_targets = [None] * n_src + list(target) + ["$"]                  # $ = EOS; encoder rows: no target
print(f"  next token:   input {gpt_x!r}  targets {gpt_y!r}")
print(f"  masked token: input {mlm_x!r}  targets {''.join(c or '.' for c in mlm_y)!r}  (only at the _ "
      "positions; . = no target)")
print(f"  seq2seq:      source {source!r}, decoder input {tgt_in!r}, targets {target + '$'!r}")
answer_visible = [bool(visible_gpt[i, i + 1]) for i in range(T - 1)]
lesson.check("the GPT's row i cannot read column i + 1, where its target sits", not any(answer_visible))
lesson.check("the encoder's padding mask lets every row read every real column, those after it and its own "
             "answer's included, and no row read a padding column",
             bool(visible_mlm[:, :T].all()) and not visible_mlm[:, T:].any())
panels = [(visible_gpt, "next token (GPT): causal", list(gpt_x), list(gpt_x), list(gpt_y)),
          (visible_mlm, "masked token (encoder): sees all but padding, input masked", mlm_cols, mlm_cols,
           mlm_y + [None] * N_PAD),
          (visible_s2s, "seq2seq: source both ways, target causal", s2s_cols, s2s_cols, s2s_targets)]
lesson.figure(plots.what_each_sees(panels, n_src), "14_what_each_objective_sees")

# %% [markdown]
# What the three pictures show:
#
# - **GPT**: its targets are its own input shifted by one, so the answer for row $i$ sits in column
#   $i + 1$, which the causal mask hides.
# - **masked model**: it sees every column, left and right, except padding (two pad tokens, `·`, end
#   this example). So its *input* must hide the answer instead: the targets sit at the `[MASK]`
#   positions (marked `_`), and every other row has no target.
# - **encoder-decoder**: the decoder rows see the whole source, and the target so far.

# %% [markdown]
# ## Next token: a GPT on Shakespeare
#
# The objective of lessons 16 and 17:
#
# - the inputs are windows of `block_size` characters;
# - the targets are the same windows shifted by one;
# - the loss is averaged over every position.
#
# Where should the val loss land? Two baselines, in nats per character:
#
# - guessing uniformly costs $\ln V$;
# - knowing only the character frequencies $f_v$ costs their entropy, $-\sum_v f_v \log f_v$.
#
# The val loss must land below both, and well above zero.

# %%
lesson.step("Next token: a GPT on Shakespeare")
corpus = read_text(find_shakespeare())
data = TextDataset(corpus)
V = data.tokenizer.vocab_size
freq = np.bincount(data.train, minlength=V) / len(data.train)
unigram_entropy = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
rng = np.random.default_rng(SEED)
gpt = GPT(GPTConfig(vocab_size=V, block_size=S["block_size"], n_layer=S["n_layer"], n_head=2, n_embd=S["n_embd"],
                    seed=SEED))
print(f"  windows of block_size = {S['block_size']} characters, {S['batch_size']} per batch; V = {V}")
t0 = time.perf_counter()
gpt_losses = train(gpt, lambda it: data.get_batch("train", S["batch_size"], S["block_size"], rng),
                   S["gpt_iters"])
val_rng = np.random.default_rng(0)
val_batches = [data.get_batch("val", S["batch_size"], S["block_size"], val_rng) for _ in range(S["eval_batches"])]
gpt_val = float(np.mean([float(gpt(x, y)[1]) for x, y in val_batches]))
print(f"  {S['gpt_iters']} iterations in {time.perf_counter() - t0:.1f} s; train loss {gpt_losses[0]:.3f} -> "
      f"{np.mean(gpt_losses[-5:]):.3f}")
print(f"  next-char val loss {gpt_val:.3f} nats;  ln V = {math.log(V):.3f};  character frequencies: "
      f"{unigram_entropy:.3f}")
lesson.check("next-char val loss is below the character-frequency entropy", gpt_val < unigram_entropy,
             f"{gpt_val:.3f} < {unigram_entropy:.3f}")
lesson.check("and well above 0: the model never saw the character it predicts", gpt_val > 1.0,
             f"{gpt_val:.3f} > 1.0")

# %% [markdown]
# Why "well above zero"? A model that could see the character it predicts (no causal mask, or targets
# not shifted) would copy it, and drive the loss towards 0.

# %% [markdown]
# ## Next token: the prediction at t ignores what comes after
#
# Does the trained GPT really never look ahead? Change every token after position 7 of a val batch, and
# compare the logits at positions 0 … 7 before and after.

# %%
lesson.step("Next token: the prediction at t ignores what comes after")
x, _ = val_batches[0]
later = x.copy()
later[:, 8:] = (later[:, 8:] + 1) % V                                    # change every token after t = 7
moved = float(np.abs(backend.to_numpy(gpt(x)[0] - gpt(later)[0]))[:, :8].max())
print(f"  changing the tokens after position 7 moves the trained model's logits at 0..7 by {moved:.1e}")
lesson.check("the trained GPT's prediction at t does not depend on tokens after t", moved < 1e-6)

# %% [markdown]
# ## Masked token: an encoder fills in hidden characters
#
# BERT's objective, on the same characters:
#
# 1. pick a fraction `MASK_RATE` of the positions of each window (BERT takes 15%; more targets per batch
#    suit a run of seconds);
# 2. replace their input by a new token `[MASK]` (id $V$);
# 3. train the encoder (`EncoderClassifier` with a per-token head, `head="token"`, one class per
#    character) to name the hidden character.
#
# The targets are -100 ("ignore") everywhere else, so the loss counts only the masked positions.
#
# BERT also leaves 10% of the chosen tokens unchanged and swaps 10% for random ones, so that the model
# cannot trust an unmasked input blindly. Here every chosen token is masked.
#
# How do we judge it?
#
# - its loss at the masked positions, in nats, against the entropy of the character frequencies: what
#   a model that ignores the context can reach;
# - the accuracy of its top guess, beside that of always guessing the most common character.

# %%
lesson.step("Masked token: an encoder fills in hidden characters")
MASK_ID, PAD_ID = V, V + 1        # two ids the text never uses; nothing is padded here
print(f"  MASK_RATE = {MASK_RATE:.0%} of the positions; [MASK] = id {MASK_ID}")


def masked_batch(split, rng, hide=True):
    """(input with [MASK], targets -100 except at the masked positions), both [B, T]."""
    x, _ = data.get_batch(split, S["batch_size"], S["block_size"], rng)
    x = backend.to_numpy(x)
    chosen = rng.random(x.shape) < MASK_RATE                              # [B, T]
    targets = np.where(chosen, x, -100)
    inputs = np.where(chosen, MASK_ID, x) if hide else x
    return backend.asarray(inputs), backend.asarray(targets)


def masked_accuracy(model, batches):
    right = total = 0
    for inputs, targets in batches:
        guess = backend.to_numpy(model(inputs)[0].argmax(axis=-1))      # [B, T]
        chosen = backend.to_numpy(targets) != -100
        right += int((guess == backend.to_numpy(targets))[chosen].sum())
        total += int(chosen.sum())
    return right / total


def make_encoder():
    return EncoderClassifier(EncoderConfig(vocab_size=V + 2, n_classes=V, block_size=S["block_size"],
                                           n_layer=S["n_layer"], n_head=2, n_embd=S["n_embd"], head="token",
                                           pad_id=PAD_ID, seed=SEED))


val_rng = np.random.default_rng(0)
mlm_val = [masked_batch("val", val_rng) for _ in range(S["eval_batches"])]
encoder = make_encoder()
untrained_loss = float(np.mean([float(encoder(inputs, targets)[1]) for inputs, targets in mlm_val]))
rng = np.random.default_rng(SEED)
t0 = time.perf_counter()
mlm_losses = train(encoder, lambda it: masked_batch("train", rng), S["mlm_iters"], lr=5e-3)
mlm_accuracy = masked_accuracy(encoder, mlm_val)
mlm_val_loss = float(np.mean([float(encoder(inputs, targets)[1]) for inputs, targets in mlm_val]))
common = int(np.argmax(freq))
unigram_accuracy = float(np.mean([(backend.to_numpy(t)[backend.to_numpy(t) != -100] == common).mean()
                                  for _, t in mlm_val]))
print(f"  {S['mlm_iters']} iterations in {time.perf_counter() - t0:.1f} s; masked-char loss "
      f"{mlm_losses[0]:.3f} -> {np.mean(mlm_losses[-5:]):.3f}")
print(f"  masked-char val loss {mlm_val_loss:.3f} nats, untrained {untrained_loss:.3f} (ln V = {math.log(V):.3f}; "
      f"character frequencies: {unigram_entropy:.3f});  "
      f"accuracy {mlm_accuracy:.1%}, always guessing {data.tokenizer.chars[common]!r}: {unigram_accuracy:.1%}")
lesson.check("before training the loss at the masked positions is ln V (every character equally likely)",
             abs(untrained_loss - math.log(V)) < 0.1, f"{untrained_loss:.3f} vs {math.log(V):.3f}")
lesson.check(f"trained, it reaches the character frequencies: within {FREQ_NEAR} nats of their entropy, or below",
             mlm_val_loss < unigram_entropy + FREQ_NEAR, f"{mlm_val_loss:.3f} vs {unigram_entropy:.3f}")
if not lesson.quick:
    lesson.check("and, with the context, gets below their entropy", mlm_val_loss < unigram_entropy - MLM_MARGIN,
                 f"{mlm_val_loss:.3f} < {unigram_entropy:.3f} - {MLM_MARGIN}")
    lesson.check("its top guess beats always guessing the most common character",
                 mlm_accuracy > unigram_accuracy + ACCURACY_MARGIN,
                 f"{mlm_accuracy:.1%} vs {unigram_accuracy:.1%}")
else:
    print("  (--quick: a few seconds take it from ln V to the frequency entropy or a little below, seed to "
          "seed, and its top guess barely beats always guessing the space; the full run checks that the "
          "context takes it clearly below the entropy, and its accuracy clearly above)")
lesson.check("and well above 0: the answer was hidden", mlm_val_loss > 1.0, f"{mlm_val_loss:.3f} > 1.0")

# %% [markdown]
# The honest model must get below the entropy, and stay far above 0: the answer was never in its input.

# %% [markdown]
# ## Masked token: with the answer visible, it copies
#
# What does the mask prevent? Train the same encoder on the same batches, with the chosen characters
# left visible in its input, for a quarter of the iterations.

# %%
lesson.step("Masked token: with the answer visible, it copies")
leaky = make_encoder()
rng = np.random.default_rng(SEED)
train(leaky, lambda it: masked_batch("train", rng, hide=False), S["mlm_iters"] // 4, lr=5e-3)
val_rng = np.random.default_rng(0)
leaky_val = [masked_batch("val", val_rng, hide=False) for _ in range(S["eval_batches"])]
leaky_accuracy = masked_accuracy(leaky, leaky_val)
leaky_loss = float(np.mean([float(leaky(inputs, targets)[1]) for inputs, targets in leaky_val]))
print(f"  {S['mlm_iters'] // 4} iterations")
print(f"  the same encoder with the chosen characters left visible: loss {leaky_loss:.3f}, accuracy "
      f"{leaky_accuracy:.1%} (it copies)")
lesson.check("with the answer left in the input the same training copies it (over 95% right)",
             leaky_accuracy > 0.95, f"{leaky_accuracy:.1%}")

# %% [markdown]
# It learns to copy, in a quarter of the iterations: the answer is right there in its input. That is
# what the mask prevents.

# %% [markdown]
# ## Masked token: the guess reads both sides
#
# Unlike the GPT, the masked model may read the characters after the gap. Does it use them? Take a
# masked position $t$, change every visible character to its right, and see whether the logits at $t$
# move.

# %%
lesson.step("Masked token: the guess reads both sides")
inputs = backend.to_numpy(mlm_val[0][0])
t = int(np.flatnonzero(inputs[0, :-2] == MASK_ID)[0])                      # a masked position of row 0
changed = inputs.copy()
after = changed[:, t + 1:]
changed[:, t + 1:] = np.where(after == MASK_ID, MASK_ID, (after + 1) % V)  # every visible character after t
inputs, changed = backend.asarray(inputs), backend.asarray(changed)
right_moved = float(np.abs(backend.to_numpy(encoder(inputs)[0] - encoder(changed)[0]))[0, t].max())
print(f"  changing the characters to the right of masked position {t} moves its logits by {right_moved:.2f}")
lesson.check("the masked model's guess uses the characters after the gap too", right_moved > 1e-3,
             f"{right_moved:.2e}")

# %% [markdown]
# A change after $t$ did not move the trained GPT's logits at $t$; here it moves the guess.

# %% [markdown]
# ## Sequence to sequence: reverse a string
#
# The encoder-decoder of lesson 20, on its task:
#
# - the encoder reads the source string of letters;
# - the decoder reads BOS + the reversed string, and predicts it shifted by one (teacher forcing).
#
# So its loss is next-token loss, conditioned on a source it sees whole.
#
# At test time the decoder has no target to read: it writes greedily, feeding back its own output. The
# number is held-out exact match: a whole string right or wrong.

# %%
lesson.step("Sequence to sequence: reverse a string")
rng = np.random.default_rng(SEED)
strings = reversal.unique_random_strings(3300, rng, 3, 6)
train_strings, test_strings = strings[:3000], strings[3000:]
width = 7
train_data, test_data = reversal.encode(train_strings, width), reversal.encode(test_strings, width)
s2s = Seq2Seq(Seq2SeqConfig(src_vocab_size=len(reversal.ITOS), tgt_vocab_size=len(reversal.ITOS),
                            block_size=width, n_encoder_layer=1, n_decoder_layer=1, n_head=4, n_embd=32,
                            positional="learned", pad_id=reversal.PAD, seed=SEED))


def reversal_batch(it):
    ix = rng.integers(len(train_strings), size=32)
    return [backend.asarray(a[ix]) for a in train_data]                   # src, tgt_in, targets


t0 = time.perf_counter()
s2s_losses = train(s2s, reversal_batch, S["s2s_iters"], lr=5e-3)
exact, predictions = reversal.exact_match_accuracy(s2s, test_strings, test_data)
print(f"  {S['s2s_iters']} iterations in {time.perf_counter() - t0:.1f} s; loss {s2s_losses[0]:.3f} -> "
      f"{np.mean(s2s_losses[-5:]):.3f}")
for s, p in list(zip(test_strings, predictions))[:3]:
    print(f"    {s:>6} -> {reversal.to_text(p)}")
print(f"  held-out exact match {exact:.1%} ({round(exact * len(test_strings))}/{len(test_strings)})")
if not lesson.quick:
    lesson.check("most held-out strings come out exactly reversed (chance: 26^-length)", exact > 0.8,
                 f"{exact:.1%}")
else:
    print("  (--quick: the exact match is reported, not checked: in a few hundred iterations some seeds are "
          "still on the plateau before the model finds where to look; the full run checks it)")

# %% [markdown]
# Why exact match, and not the loss? A decoder that could read the token it must predict would make the
# training loss vanish, and still fail here, where no answer is there to read.

# %% [markdown]
# ## Three numbers
#
# Each objective has its own measure:
#
# | objective | its number | against |
# |---|---|---|
# | next token (GPT) | val loss, nats | $\ln V$ and the frequency entropy |
# | masked token (encoder) | loss at the masked positions | the same entropy, and the copy it makes when the answer is visible |
# | sequence to sequence | held-out exact match | |

# %%
lesson.step("Three numbers")
lesson.figure(plots.three_numbers(V, unigram_entropy, gpt_val, mlm_val_loss, leaky_loss, exact), "14_three_numbers")

# %% [markdown]
# Which objective is easier? The masked model has an easier task per position than the GPT (context on
# both sides), but it learns from only some of the positions of each window.
#
# And it cannot write text: nothing in its objective says what comes next. The GPT can, one token at a
# time; the encoder-decoder can when it is given a source.

# %%
lesson.done()
