# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 04: positional encodings, because attention alone cannot see word order
#
# Self-attention compares every token with every other token by content only. Shuffle the input tokens and
# the outputs are shuffled the same way; nothing else changes. Attention is **permutation-equivariant**, so
# "Zuko made his uncle" and "his uncle made Zuko" look alike to it.
#
# The fix: add a position vector $P_t$ to the token vector at position $t$. This lesson
#
# - builds the sinusoidal table of the 2017 paper, and shows what makes it useful: a shift by $k$
#   positions is the same rotation at every $t$;
# - shows the permutation problem with the library's `MultiHeadAttention`, and how positions solve it;
# - shows the limit of a learned table: it has no row past its length.
#
# Run: `python lessons/04_positional_encoding.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson04 as plots

from tinytransformer import (Embedding, LearnedPositionalEncoding, MultiHeadAttention,
                             SinusoidalPositionalEncoding, backend, check_layer, sinusoidal_table)
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("04 Positional encoding", steps=9)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The sinusoidal table
#
# What vector does position $t$ get? "Attention Is All You Need" adds a fixed one:
#
# $$P_{t,2i} = \sin(\omega_i t), \qquad P_{t,2i+1} = \cos(\omega_i t), \qquad
# \omega_i = 1/10000^{2i/d_{model}}$$
#
# Each pair of columns $(2i, 2i+1)$ is one sinusoid: a clock hand turning at its own speed $\omega_i$.
#
# - The first pair turns once every $2\pi \approx 6.3$ positions.
# - The last pair turns far more slowly (its period is printed below).
#
# Below: `sinusoidal_table(100, 64)`, and one entry recomputed by hand.

# %%
lesson.step("The sinusoidal table")
length, d = 100, 64
P = sinusoidal_table(length, d)                                        # [T, d_model]
t, i = 7, 3
by_hand_sin = np.sin(t / 10000 ** (2 * i / d))
by_hand_cos = np.cos(t / 10000 ** (2 * i / d))
print(f"  P.shape = {P.shape};  periods: first pair {2 * np.pi:.1f} positions, "
      f"last pair (d_model = {d}) {2 * np.pi * 10000 ** ((d - 2) / d):,.0f}")
print(f"  P[{t}, {2 * i}] = {P[t, 2 * i]:.6f};  by hand sin({t} / 10000^({2 * i}/{d})) = {by_hand_sin:.6f}")
print(f"  P[{t}, {2 * i + 1}] = {P[t, 2 * i + 1]:.6f};  by hand cos(...) = {by_hand_cos:.6f}")
print(f"  P[0, :8] = {P[0, :8]}   (sin 0 = 0, cos 0 = 1)")
lesson.check("the library's table matches the formula", abs(P[t, 2 * i] - by_hand_sin) < 1e-12
             and abs(P[t, 2 * i + 1] - by_hand_cos) < 1e-12)
lesson.check("no two of the 100 positions share a row",
             min(np.linalg.norm(P[a] - P[b]) for a in range(length) for b in range(a)) > 0.1)

# %% [markdown]
# Read across a row: the fast hands tell nearby positions apart, the slow ones far ones. Together they give
# every position its own row.

# %% [markdown]
# ## How large is P next to a token vector?
#
# Every entry of $P$ lies in $[-1, 1]$, and each row has norm $\sqrt{d_{model}/2}$ (each pair contributes
# $\sin^2 + \cos^2 = 1$).
#
# Two conventions for the token vectors:
#
# - The 2017 paper multiplies the token embeddings by $\sqrt{d_{model}}$ before adding $P$. Its code draws
#   them with std $1/\sqrt{d_{model}}$, so after the scale they have norm $\approx \sqrt{d_{model}}$:
#   $P$'s size.
# - This library follows GPT-2 instead, in all three model families: embeddings start at std 0.02 and are
#   added unscaled.
#
# What does that give for a new GPT with sinusoidal positions?

# %%
lesson.step("How large is P next to a token vector?")
lesson.check("every entry lies in [-1, 1], and every row has norm √(d_model/2)",
             np.abs(P).max() <= 1.0 and np.allclose(np.linalg.norm(P, axis=1), np.sqrt(d / 2)))
gpt = GPT(GPTConfig(vocab_size=65, block_size=length, n_layer=1, n_head=4, n_embd=d, seed=0,
                    positional="sinusoidal"))
token_norm = float(np.linalg.norm(gpt.wte.weight.data, axis=1).mean())   # a freshly initialised token vector
print(f"  at initialisation: a token vector has norm {token_norm:.3f} (std 0.02 × √{d} = {0.02 * np.sqrt(d):.2f}), "
      f"a row of P {np.sqrt(d / 2):.2f}: {np.sqrt(d / 2) / token_norm:.0f}× larger")
lesson.check("here embeddings are not scaled by √d_model: a new GPT's sinusoidal positions outweigh its "
             "token vectors more than 10×", np.sqrt(d / 2) > 10 * token_norm, f"×{np.sqrt(d / 2) / token_norm:.0f}")

# %% [markdown]
# - With learned positions (the default of GPT and of the encoder, also std 0.02), positions and tokens
#   start at the same size.
# - With the sinusoidal table, the positions start far larger; training grows the token vectors as it
#   needs them.

# %% [markdown]
# ## Why sines and cosines: a shift is a rotation
#
# Why this formula, and not just any distinct rows? Take one pair. By the angle-addition formulas,
# $(\sin \omega(t+k), \cos \omega(t+k))$ is $(\sin \omega t, \cos \omega t)$ rotated by the angle
# $\omega k$, whatever $t$ is.
#
# So there is one fixed matrix $M_k$, block-diagonal with $2 \times 2$ rotations, such that
#
# $$P_{t+k} = M_k P_t \quad \text{at every position } t.$$
#
# We build $M_5$ and check it on all 100 positions.

# %%
lesson.step("Why sines and cosines: a shift is a rotation")
k = 5
omega = 1.0 / 10000 ** (np.arange(0, d, 2) / d)                       # [d/2]
M = np.zeros((d, d))
for pair, w in enumerate(omega):                                       # one 2x2 rotation per pair
    c, s = np.cos(w * k), np.sin(w * k)
    M[2 * pair:2 * pair + 2, 2 * pair:2 * pair + 2] = [[c, s], [-s, c]]
shifted = P[:-k] @ M.T                                                 # M_k P[t] for every t, as rows
lesson.check(f"P[t+{k}] == M_{k} P[t] for every t (one matrix for all positions)",
             np.allclose(P[k:], shifted, atol=1e-10), f"max error {np.abs(P[k:] - shifted).max():.1e}")

# %% [markdown]
# "$k$ steps later" is the same linear map everywhere: a layer can learn it once.

# %% [markdown]
# ## So P[t]·P[t+k] depends on the offset k, not on t
#
# A consequence of the rotation: each pair contributes $\cos(\omega_i k)$ to the dot product, so
#
# $$P_t \cdot P_{t+k} = \sum_i \cos(\omega_i k),$$
#
# the same at every $t$.

# %%
lesson.step("So P[t]·P[t+k] depends on the offset k, not on t")
dots = (P[:-k] * P[k:]).sum(axis=1)                                    # P[t]·P[t+k] for every t
print(f"  P[t]·P[t+{k}] for t = 0, 10, 50: {dots[0]:.6f} {dots[10]:.6f} {dots[50]:.6f};"
      f"  Σ cos(ω_i·{k}) = {np.cos(omega * k).sum():.6f}")
lesson.check(f"P[t]·P[t+{k}] is the same for every t", np.allclose(dots, np.cos(omega * k).sum()))

# %% [markdown]
# ## Attention alone cannot tell who made whom
#
# Now the problem positions solve. Give four words an embedding each. Run the library's
# `MultiHeadAttention` on two sentences with the same words in another order, with no positions added.
#
# Each output is $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$, where $Q$, $K$, $V$ are per-token projections.
# So a token's output depends on its own vector and on the **set** of the others, not on where they stand.

# %%
lesson.step("Attention alone cannot tell who made whom")
words = ["Zuko", "made", "his", "uncle"]
sentence_a = ["Zuko", "made", "his", "uncle"]
sentence_b = ["his", "uncle", "made", "Zuko"]
ids_a = np.array([[words.index(w) for w in sentence_a]])                 # [1, 4]
ids_b = np.array([[words.index(w) for w in sentence_b]])
perm = [sentence_a.index(w) for w in sentence_b]                       # B = A[perm]
d_model = 16
backend.seed(3)
embedding = Embedding(len(words), d_model)
attention = MultiHeadAttention(d_model, n_head=2)
out_a = attention(embedding(ids_a))[0]                                 # [4, d_model]
out_b = attention(embedding(ids_b))[0]
no_position = {}
for w in words:
    no_position[w] = np.linalg.norm(out_a[sentence_a.index(w)] - out_b[sentence_b.index(w)])
    print(f"  {w:>5}: output in A[:3] = {out_a[sentence_a.index(w), :3]}   in B[:3] = "
          f"{out_b[sentence_b.index(w), :3]}")
lesson.check("without positions, output(B) is output(A) with its rows permuted",
             np.allclose(out_b, out_a[perm], atol=1e-12), f"max difference {np.abs(out_b - out_a[perm]).max():.1e}")
lesson.check("so the two sentences give the same bag of output vectors (e.g. equal means)",
             np.allclose(out_a.mean(axis=0), out_b.mean(axis=0), atol=1e-12))

# %% [markdown]
# Permuting the input permutes the output rows, and nothing else: "Zuko" gets the same vector as the
# subject and as the object.

# %% [markdown]
# ## Add positions, and the sentences differ
#
# Now add $P_t$ before attention. The input of "Zuko" becomes
#
# - `embedding(Zuko)` + $P_0$ in sentence A,
# - `embedding(Zuko)` + $P_3$ in sentence B.
#
# Its queries, keys and values change with its place, so its output does too. We try both kinds of
# positional encoding: the fixed sinusoidal table, and a learned table (one trained vector per position,
# used by GPT).

# %%
lesson.step("Add positions, and the sentences differ")
sinusoidal = SinusoidalPositionalEncoding(d_model)
learned = LearnedPositionalEncoding(block_size=8, d_model=d_model)
with_position = {}
for name, encoding in (("sinusoidal", sinusoidal), ("learned", learned)):
    pos_a = attention(encoding(embedding(ids_a)))[0]
    pos_b = attention(encoding(embedding(ids_b)))[0]
    gaps = {w: np.linalg.norm(pos_a[sentence_a.index(w)] - pos_b[sentence_b.index(w)]) for w in words}
    with_position[name] = gaps
    scale = np.linalg.norm(pos_a, axis=1).mean()
    print(f"  {name:>10}: |output_A(w) - output_B(w)| = "
          + ", ".join(f"{w} {g:.3f}" for w, g in gaps.items()) + f"   (typical |output| {scale:.3f})")
    lesson.check(f"with {name} positions every word's output changes with the word order",
                 min(gaps.values()) > 0.05 * scale)

# %% [markdown]
# ## A learned table stops at its length
#
# A learned table $P$ of shape `[block_size, d_model]` can fit whatever the data needs. But it has exactly
# `block_size` rows. What happens to a longer sequence?
#
# Its last positions have no vector. The library refuses it with a clear error rather than wrapping
# around. The sinusoidal formula, in contrast, gives a row for any $t$.

# %%
lesson.step("A learned table stops at its length")
x8 = np.zeros((1, 8, d_model))
x9 = np.zeros((1, 9, d_model))
print(f"  learned, block_size 8, T=8: output shape {learned(x8).shape}")
messages = []
for what, call in (("T=9", lambda: learned(x9)), ("T=3 starting at position 6", lambda: learned(x8[:, :3], start=6))):
    try:
        call()
        messages.append("")
    except ValueError as err:
        messages.append(str(err))
    print(f"  learned, {what}: ValueError: {messages[-1][:60]}...")
lesson.check("9 positions on an 8-row table: 'model context is 8, got 9'", "model context is 8, got 9" in messages[0])
lesson.check("positions 6..8 (e.g. while generating) fail the same way", "model context is 8, got 9" in messages[1])
long = sinusoidal(np.zeros((1, 1000, d_model)))
lesson.check("the sinusoidal encoding takes 1000 positions", long.shape == (1, 1000, d_model))

# %% [markdown]
# Whether a model has learned to use positions it never saw in training is another matter: the formula
# only guarantees that the rows exist.

# %% [markdown]
# ## The learned table's backward
#
# A learned table is a parameter, like the embedding table of lesson 02. Its forward adds row $t$ to
# every sequence of the batch at position $t$, so its backward adds the gradients of the batch into the
# rows that were used:
#
# $$dP_t = \sum_b dy_{b,t}$$
#
# `check_layer` compares it with finite differences.

# %%
lesson.step("The learned table's backward")
small = LearnedPositionalEncoding(block_size=4, d_model=3)
errors = check_layer(small, {"x": backend.randn((2, 3, 3), rng=np.random.default_rng(0))})
lesson.check("the learned table's backward matches finite differences to 1e-8", max(errors.values()) < 1e-8,
             ", ".join(f"{n} {e:.1e}" for n, e in errors.items()))

# %% [markdown]
# ## Pictures
#
# - Left: the sinusoidal table; fast columns on the left, slow on the right.
# - Middle: $P_t \cdot P_s$ for all pairs: a band along the diagonal, the same at every $t$, falling off
#   with $|t - s|$.
# - Right: how far each word's attention output moves between the two sentences: 0 without positions.

# %%
lesson.step("Pictures")
lesson.figure(plots.positional_encoding(P, words, no_position, with_position), "04_positional_encoding")

# %%
lesson.done()
