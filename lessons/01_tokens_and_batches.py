# %% [markdown]
"""Lesson 01: from characters to integers, and from a text to training batches.

A language model reads numbers, not letters. This lesson turns Tiny Shakespeare into token ids with the
character-level tokenizer (one id per distinct character: 65 of them), checks that decoding undoes
encoding, and then cuts the ids into the batches a model trains on: B windows of block_size tokens as
inputs x, and the same windows shifted by one position as targets y. One window of block_size tokens
holds block_size training examples at once: every prefix x[:t+1] predicts the next character y[t].

Run:  python lessons/01_tokens_and_batches.py        (add --no-pause to run straight through)
"""

# %%
import numpy as np
from _lesson import Lesson

from tinytransformer import backend
from tinytransformer.data import SHAKESPEARE_SIZE, TextDataset, find_shakespeare
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.tokenizers import CharTokenizer

lesson = Lesson("01 Tokens and batches", __doc__, steps=7)
backend.use("numpy")  # lessons run on the CPU

# %%
lesson.step("The corpus", """
    Tiny Shakespeare is one plain-text file of about 1.1 million characters: the lines of several plays,
    each speech headed by the speaker's name. find_shakespeare() returns its path (a cached copy, a
    download, or the copy shared beside the checkout).""")
path = find_shakespeare()
text = path.read_text()
print(f"  file: {path}")
print(f"  {len(text):,} characters; the first 150:\n")
print("  | " + text[:150].replace("\n", "\n  | "))
lesson.check("the corpus has its known length", len(text) == SHAKESPEARE_SIZE,
             f"{len(text):,} characters")

# %%
lesson.step("The vocabulary: one id per distinct character", """
    CharTokenizer.from_text(text) sorts the set of characters of the text; a character's id is its
    place in that sorted list. So the vocabulary is fixed by the corpus, and vocab_size is both the number
    of rows of the model's embedding table and the number of scores its output layer produces.""")
tokenizer = CharTokenizer.from_text(text)
print(f"  vocab_size = {tokenizer.vocab_size}")
print(f"  characters = {tokenizer.chars!r}")
print("  a few ids:  " + ", ".join(f"{c!r}->{tokenizer.stoi[c]}" for c in "\n !AZaz"))
lesson.check("Tiny Shakespeare has 65 distinct characters", tokenizer.vocab_size == 65)
lesson.check("ids are 0 .. 64 in sorted character order",
             [tokenizer.stoi[c] for c in sorted(set(text))] == list(range(65)))

# %%
lesson.step("Encode and decode", """
    encode maps a string to an array of ids, decode maps ids back to the string. Nothing is lost: a
    character tokenizer is a bijection between strings over the vocabulary and id sequences. A character
    outside the vocabulary has no id, and encoding it is an error that names it.""")
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

# %%
lesson.step("Train and validation splits", """
    TextDataset encodes the whole text once and keeps it as one long array of ids. As in nanoGPT, the
    first 90% is for training and the last 10% is held out to measure how well the model does on text it
    has not been trained on.""")
data = TextDataset(text, tokenizer)
print(f"  train: {len(data.train):,} ids   val: {len(data.val):,} ids   dtype {data.train.dtype}")
lesson.check("the two splits together are the whole text, in order",
             len(data.train) + len(data.val) == len(text)
             and tokenizer.decode(data.val[:200]) == text[len(data.train):len(data.train) + 200])

# %%
batch_size, block_size = 4, 8
lesson.step("A batch: inputs x and targets y, shifted by one", f"""
    get_batch draws batch_size random starting points and cuts a window of block_size ids at each: x
    has shape [B, T] = [{batch_size}, {block_size}]. The targets y are the same windows one position
    later, so y[b, t] is the character that follows x[b, t] in the text. block_size is the longest
    context the model ever sees; batch_size is how many windows it processes at once.""")
rng = np.random.default_rng(1337)
x, y = data.get_batch("train", batch_size=batch_size, block_size=block_size, rng=rng)
x, y = backend.to_numpy(x), backend.to_numpy(y)
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

# %%
lesson.step("One block holds block_size training examples", """
    The model predicts a next character at every position, from everything up to that position. So the
    window x[0] gives block_size examples: context x[0, :t+1] -> target y[0, t], for t = 0 .. T-1. The
    contexts have every length from 1 to block_size, which is also why a model trained this way can
    start generating from a single character. One forward pass over the window computes all of them
    at once, and gives the same answers as block_size separate passes, one per context: a causal mask
    (lesson 07) keeps each position from seeing the characters after it, its own target among them.
    We check that on a small GPT (lesson 12 opens it), untrained: what it says matters less here than
    where each answer comes from.""")
for t in range(block_size):
    print(f"  t={t}: {tokenizer.decode(x[0, :t + 1])!r:>12} -> {tokenizer.decode([y[0, t]])!r}")
print(f"  one batch: {batch_size} windows x {block_size} positions = {x.size} (context -> target) examples")
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

# %%
lesson.step("Pictures: how often each character occurs, and a batch as a grid of ids", """
    Characters are far from equally common: space, 'e', 't', 'o' dominate, while '$' occurs once and '&'
    three times. A model that knew only these frequencies would already beat uniform guessing; the left panel
    shows them. The right panel is the batch above: one row per window, one column per position, each
    cell an id (its character written inside).""")
counts = np.bincount(data.train, minlength=tokenizer.vocab_size)
frequency = counts / counts.sum()
uniform_bits = np.log2(tokenizer.vocab_size)
entropy_bits = -(frequency[frequency > 0] * np.log2(frequency[frequency > 0])).sum()
print("  most common: " + ", ".join(f"{tokenizer.chars[i]!r} {frequency[i]:.3f}"
                                     for i in np.argsort(-counts)[:5]))
print(f"  guessing uniformly costs log2(65) = {uniform_bits:.2f} bits per character; knowing only the "
      f"frequencies, {entropy_bits:.2f} bits")
lesson.check("space is the most common character", tokenizer.chars[int(np.argmax(counts))] == " ")
lesson.check("character frequencies alone beat uniform guessing", entropy_bits < uniform_bits)

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
order = np.argsort(-counts)
shown = {" ": "␣", "\n": "\\n"}  # make the invisible characters visible
labels = [shown.get(tokenizer.chars[i], tokenizer.chars[i]) for i in order]
ax1.bar(range(len(order)), frequency[order], color="tab:blue")
ax1.set_xticks(range(len(order)))
ax1.set_xticklabels(labels, fontsize=7, family="monospace")
ax1.set_yscale("log")
ax1.set_ylabel("fraction of the training text (log scale)")
ax1.set_title(f"Tiny Shakespeare: the {tokenizer.vocab_size} characters, most common first")
ax2.imshow(x, cmap="viridis", aspect="auto")
for b in range(batch_size):
    for t in range(block_size):
        ch = shown.get(tokenizer.chars[x[b, t]], tokenizer.chars[x[b, t]])
        ax2.text(t, b, f"{x[b, t]}\n{ch}", ha="center", va="center", fontsize=9,
                 color="white" if x[b, t] < 30 else "black")
ax2.set_xticks(range(block_size))
ax2.set_yticks(range(batch_size))
ax2.set_xlabel("position t (block_size = 8)")
ax2.set_ylabel("window b (batch_size = 4)")
ax2.set_title("a batch x: token ids (and their characters)")
lesson.figure(fig, "01_characters_and_batch")

lesson.done()
