# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 01: from characters to integers, and from a text to training batches
#
# A language model reads numbers, not letters. This lesson takes Tiny Shakespeare from text to the batches
# a model trains on:
#
# - the character-level tokenizer gives each distinct character an id (65 of them);
# - decoding undoes encoding;
# - the ids are cut into batches: $B$ windows of `block_size` tokens as inputs $x$, and the same windows
#   shifted by one position as targets $y$.
#
# One window holds `block_size` training examples at once: every prefix predicts the next character,
#
# $$x_0 \ldots x_t \to y_t, \qquad t = 0, \ldots, T-1.$$
#
# Run: `python lessons/01_tokens_and_batches.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson01 as plots

from tinytransformer import backend
from tinytransformer.data import SHAKESPEARE_SIZE, TextDataset, find_shakespeare
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.tokenizers import CharTokenizer

lesson = Lesson("01 Tokens and batches", steps=9)
backend.use("numpy")  # lessons run on the CPU

# %% [markdown]
# ## The corpus
#
# What will the model read? Tiny Shakespeare: one plain-text file of about 1.1 million characters, the
# lines of several plays, each speech headed by the speaker's name.
#
# `find_shakespeare()` returns its path: a cached copy, a download, or the copy shared beside the checkout.

# %%
lesson.step("The corpus")
path = find_shakespeare()
text = path.read_text()
print(f"  file: {path}")
print(f"  {len(text):,} characters; the first 150:\n")
print("  | " + text[:150].replace("\n", "\n  | "))
lesson.check("the corpus has its known length", len(text) == SHAKESPEARE_SIZE,
             f"{len(text):,} characters")

# %% [markdown]
# ## The vocabulary: one id per distinct character
#
# Which numbers stand for which letters? `CharTokenizer.from_text(text)` sorts the set of characters of
# the text. A character's id is its place in that sorted list.

# %%
lesson.step("The vocabulary: one id per distinct character")
tokenizer = CharTokenizer.from_text(text)
print(f"  vocab_size = {tokenizer.vocab_size}")
print(f"  characters = {tokenizer.chars!r}")
print("  a few ids:  " + ", ".join(f"{c!r}->{tokenizer.stoi[c]}" for c in "\n !AZaz"))
lesson.check("Tiny Shakespeare has 65 distinct characters", tokenizer.vocab_size == 65)
lesson.check("ids are 0 .. 64 in sorted character order",
             [tokenizer.stoi[c] for c in sorted(set(text))] == list(range(65)))

# %% [markdown]
# So the corpus fixes the vocabulary. And `vocab_size` sets two sizes in the model:
#
# - the number of rows of its embedding table (lesson 02);
# - the number of scores its output layer produces, one per possible next character.

# %% [markdown]
# ## Encode and decode
#
# `encode` maps a string to an array of ids; `decode` maps ids back to the string. Is anything lost on the
# way?

# %%
lesson.step("Encode and decode")
sample = "First Citizen:\nBefore we proceed"
ids = tokenizer.encode(sample)
print(f"  text: {sample!r}")
print(f"  ids:  {ids.tolist()}")
print(f"  back: {tokenizer.decode(ids)!r}")
lesson.check("decode(encode(s)) == s for the sample", tokenizer.decode(ids) == sample)
span = text[:100_000] if lesson.quick else text
lesson.check(f"decode(encode(s)) == s for {len(span):,} characters of the corpus",
             tokenizer.decode(tokenizer.encode(span)) == span)
try:
    tokenizer.encode("Romeo é")
    raised = ""
except ValueError as err:
    raised = str(err)
print(f"  encode('Romeo é') -> ValueError: {raised[:70]}...")
lesson.check("an unknown character is refused, by name", "'é'" in raised)

# %% [markdown]
# Nothing is lost. A character tokenizer is a bijection between strings over the vocabulary and id
# sequences.
#
# A character outside the vocabulary has no id: encoding it is an error that names it.

# %% [markdown]
# ## Train and validation splits
#
# How do we know the model learned something, and did not just memorise? We hold text back.
#
# `TextDataset` encodes the whole text once and keeps it as one long array of ids. As in nanoGPT:
#
# - the first 90% is for training;
# - the last 10% is held out, to measure how well the model does on text it has not been trained on.

# %%
lesson.step("Train and validation splits")
data = TextDataset(text, tokenizer)
print(f"  train: {len(data.train):,} ids   val: {len(data.val):,} ids   dtype {data.train.dtype}")
lesson.check("the two splits together are the whole text, in order",
             len(data.train) + len(data.val) == len(text)
             and tokenizer.decode(data.val[:200]) == text[len(data.train):len(data.train) + 200])

# %% [markdown]
# ## A batch: inputs x and targets y, shifted by one
#
# What does the model see at once? `get_batch` draws `batch_size` random starting points and cuts a
# window of `block_size` ids at each:
#
# - $x$ has shape $[B, T]$ = `[batch_size, block_size]`;
# - the targets $y$ are the same windows one position later, so `y[b, t]` is the character that follows
#   `x[b, t]` in the text.

# %%
lesson.step("A batch: inputs x and targets y, shifted by one")
batch_size, block_size = 4, 8
rng = np.random.default_rng(1337)
x, y = data.get_batch("train", batch_size=batch_size, block_size=block_size, rng=rng)
x, y = backend.to_numpy(x), backend.to_numpy(y)
print(f"  batch_size = {batch_size}, block_size = {block_size}")
print(f"  x.shape = {x.shape}, y.shape = {y.shape}")
for b in range(batch_size):
    print(f"  x[{b}] = {x[b].tolist()}  {tokenizer.decode(x[b])!r}")
    print(f"  y[{b}] = {y[b].tolist()}  {tokenizer.decode(y[b])!r}")
lesson.check("x and y have shape [batch_size, block_size]",
             x.shape == y.shape == (batch_size, block_size))
lesson.check("y is x shifted left by one: y[:, :-1] == x[:, 1:]", np.array_equal(y[:, :-1], x[:, 1:]))
train_text = text[:len(data.train)]
lesson.check("each window x[b] followed by y[b, -1] is a stretch of the training text",
             all(tokenizer.decode(np.append(x[b], y[b, -1])) in train_text for b in range(batch_size)))

# %% [markdown]
# The two sizes mean:
#
# - `block_size` is the longest context the model ever sees;
# - `batch_size` is how many windows it processes at once.

# %% [markdown]
# ## One block holds block_size training examples
#
# The model predicts a next character at every position, from everything up to that position. So how many
# examples is one window?
#
# `block_size` of them: context `x[:t+1]` predicts target `y[t]`, for $t = 0, \ldots, T-1$.

# %%
lesson.step("One block holds block_size training examples")
for t in range(block_size):
    print(f"  t={t}: {tokenizer.decode(x[0, :t + 1])!r:>12} -> {tokenizer.decode([y[0, t]])!r}")
print(f"  one batch: {batch_size} windows x {block_size} positions = {x.size} (context -> target) examples")

# %% [markdown]
# The contexts have every length from 1 to `block_size`. That is also why a model trained this way can
# start generating from a single character.

# %% [markdown]
# ## One pass computes them all
#
# Must we run the model once per context? No. One forward pass over the window gives the same answers as
# `block_size` separate passes, one per context.
#
# A causal mask (lesson 07) keeps each position from seeing the characters after it, its own target among
# them. We check it on a small GPT (lesson 12 opens it), untrained: what it says matters less here than
# where each answer comes from.

# %%
lesson.step("One pass computes them all")
dtype = backend.default_dtype()
backend.set_default_dtype("float64")          # so that the two ways agree to 1e-12, not to float32 rounding
model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32))
window_logits, window_loss = model(x, y)                                    # one pass: [B, T, V], a number
alone = np.stack([backend.to_numpy(model(x[:, :t + 1])[0])[:, t] for t in range(block_size)], axis=1)
log_probs = alone - np.log(np.exp(alone).sum(-1, keepdims=True))            # [B, T, V]: one context each
examples_loss = -np.take_along_axis(log_probs, y[..., None], -1).mean()     # the mean of B·T examples
backend.set_default_dtype(dtype)
difference = float(np.abs(backend.to_numpy(window_logits) - alone).max())
print(f"  the window in one pass vs each context x[:, :t+1] alone: largest logit difference {difference:.1e}; "
      f"loss {float(window_loss):.6f} vs the mean of the {x.size} examples' losses {examples_loss:.6f}")
lesson.check("at every position t, one pass over the window gives what the context x[:t+1] alone gives",
             difference < 1e-12, f"{difference:.1e}")
lesson.check("so the batch's loss is the mean loss of batch_size * block_size separate examples",
             abs(float(window_loss) - examples_loss) < 1e-12, f"{float(window_loss):.6f} vs {examples_loss:.6f}")

# %% [markdown]
# So one batch of shape $[B, T]$ trains on $B \cdot T$ examples, for the price of one pass.

# %% [markdown]
# ## How often each character occurs
#
# Are all characters equally common? Far from it. Count them in the training split.
#
# Uniform guessing over 65 characters costs $\log_2 65$ bits per character. A model that knew only the
# frequencies $p_c$ would pay their entropy, $-\sum_c p_c \log_2 p_c$ bits.

# %%
lesson.step("How often each character occurs")
counts = np.bincount(data.train, minlength=tokenizer.vocab_size)
frequency = counts / counts.sum()
uniform_bits = np.log2(tokenizer.vocab_size)
entropy_bits = -(frequency[frequency > 0] * np.log2(frequency[frequency > 0])).sum()
print("  most common: " + ", ".join(f"{tokenizer.chars[i]!r} {frequency[i]:.3f}"
                                     for i in np.argsort(-counts)[:5]))
print("  rarest: " + ", ".join(f"{tokenizer.chars[i]!r} x{counts[i]}" for i in np.argsort(counts, kind="stable")[:3]))
print(f"  guessing uniformly costs log2(65) = {uniform_bits:.2f} bits per character; knowing only the "
      f"frequencies, {entropy_bits:.2f} bits")
lesson.check("space is the most common character", tokenizer.chars[int(np.argmax(counts))] == " ")
lesson.check("character frequencies alone beat uniform guessing", entropy_bits < uniform_bits)

# %% [markdown]
# Space, 'e', 't', 'o' dominate; a few characters occur only a handful of times. Knowing the
# frequencies alone already beats uniform guessing.

# %% [markdown]
# ## Pictures: how often each character occurs, and a batch as a grid of ids
#
# - Left: the frequency of each character, most common first (log scale).
# - Right: the batch above. One row per window, one column per position; each cell is an id, with its
#   character written inside.

# %%
lesson.step("Pictures: how often each character occurs, and a batch as a grid of ids")
lesson.figure(plots.characters_and_batch(frequency, x, tokenizer.chars), "01_characters_and_batch")

# %%
lesson.done()
