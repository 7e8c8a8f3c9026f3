# %% [markdown]
"""Lesson 04: positional encodings, because attention alone cannot see word order.

Self-attention compares every token with every other token by content only. Shuffle the input tokens and
the outputs are shuffled the same way, nothing else changes (attention is permutation-equivariant), so
"Zuko made his uncle" and "his uncle made Zuko" look alike to it. Adding a position vector P[t] to each
token vector fixes that. This lesson shows the sinusoidal table of the 2017 paper and what makes it
useful (a shift by k positions is the same rotation at every t), demonstrates the permutation problem
with the library's MultiHeadAttention and how positions solve it, and shows the limit of a learned
table: it has no row past its length.

Run:  python lessons/04_positional_encoding.py        (add --no-pause to run straight through)
"""

# %%
import numpy as np
from _lesson import Lesson

from tinytransformer import (Embedding, LearnedPositionalEncoding, MultiHeadAttention,
                             SinusoidalPositionalEncoding, backend, check_layer, sinusoidal_table)
from tinytransformer.models import GPT, GPTConfig

lesson = Lesson("04 Positional encoding", __doc__, steps=6)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# %%
length, d = 100, 64
lesson.step("The sinusoidal table", f"""
    "Attention Is All You Need" adds a fixed vector to position t:
    P[t, 2i] = sin(t / 10000^(2i/d_model)),  P[t, 2i+1] = cos(t / 10000^(2i/d_model)).
    Each pair of columns (2i, 2i+1) is one sinusoid, a clock hand turning at its own speed
    ω_i = 1/10000^(2i/d_model): the first pair turns once every 2π ≈ 6.3 positions, the last (for
    d_model = {d}) once every {2 * np.pi * 10000 ** ((d - 2) / d):,.0f}. Read across a row, the fast hands
    tell nearby positions apart, the slow ones far ones.
    Below: sinusoidal_table({length}, {d}), and one entry recomputed by hand.
    How large is P next to a token vector? Every entry lies in [-1, 1] and each row has norm
    √(d_model/2). The 2017 paper multiplies the token embeddings by √d_model before adding P (its code
    draws them with std 1/√d_model, so after the scale they have norm ≈ √d_model, P's size). This library
    follows GPT-2 instead, in all three model families: embeddings start at std 0.02 and are added
    unscaled. With learned positions (the default of GPT and the encoder, also std 0.02) the two start
    at the same size; with the sinusoidal table the positions start far larger, and training grows the
    token vectors as it needs them.""")
P = sinusoidal_table(length, d)                                        # [T, d_model]
t, i = 7, 3
by_hand_sin = np.sin(t / 10000 ** (2 * i / d))
by_hand_cos = np.cos(t / 10000 ** (2 * i / d))
print(f"  P[{t}, {2 * i}] = {P[t, 2 * i]:.6f};  by hand sin({t} / 10000^({2 * i}/{d})) = {by_hand_sin:.6f}")
print(f"  P[{t}, {2 * i + 1}] = {P[t, 2 * i + 1]:.6f};  by hand cos(...) = {by_hand_cos:.6f}")
print(f"  P[0, :8] = {P[0, :8]}   (sin 0 = 0, cos 0 = 1)")
lesson.check("the library's table matches the formula", abs(P[t, 2 * i] - by_hand_sin) < 1e-12
             and abs(P[t, 2 * i + 1] - by_hand_cos) < 1e-12)
lesson.check("every entry lies in [-1, 1], and every row has norm √(d_model/2)",
             np.abs(P).max() <= 1.0 and np.allclose(np.linalg.norm(P, axis=1), np.sqrt(d / 2)))
gpt = GPT(GPTConfig(vocab_size=65, block_size=length, n_layer=1, n_head=4, n_embd=d, seed=0,
                    positional="sinusoidal"))
token_norm = float(np.linalg.norm(gpt.wte.weight.data, axis=1).mean())   # a freshly initialised token vector
print(f"  at initialisation: a token vector has norm {token_norm:.3f} (std 0.02 × √{d} = {0.02 * np.sqrt(d):.2f}), "
      f"a row of P {np.sqrt(d / 2):.2f}: {np.sqrt(d / 2) / token_norm:.0f}× larger")
lesson.check("here embeddings are not scaled by √d_model: a new GPT's sinusoidal positions outweigh its "
             "token vectors more than 10×", np.sqrt(d / 2) > 10 * token_norm, f"×{np.sqrt(d / 2) / token_norm:.0f}")
lesson.check("no two of the 100 positions share a row",
             min(np.linalg.norm(P[a] - P[b]) for a in range(length) for b in range(a)) > 0.1)

# %%
lesson.step("Why sines and cosines: a shift is a rotation", """
    For each pair, (sin ω(t+k), cos ω(t+k)) is (sin ωt, cos ωt) rotated by the angle ωk, whatever t is
    (the angle-addition formulas). So there is one fixed matrix M_k, block-diagonal with 2x2 rotations,
    with P[t+k] = M_k P[t] at every position t: "k steps later" is the same linear map everywhere,
    which a layer can learn once. A consequence: P[t]·P[t+k] = Σ_i cos(ω_i k) depends on the offset k,
    not on t.""")
k = 5
omega = 1.0 / 10000 ** (np.arange(0, d, 2) / d)                       # [d/2]
M = np.zeros((d, d))
for pair, w in enumerate(omega):                                       # one 2x2 rotation per pair
    c, s = np.cos(w * k), np.sin(w * k)
    M[2 * pair:2 * pair + 2, 2 * pair:2 * pair + 2] = [[c, s], [-s, c]]
shifted = P[:-k] @ M.T                                                 # M_k P[t] for every t, as rows
lesson.check(f"P[t+{k}] == M_{k} P[t] for every t (one matrix for all positions)",
             np.allclose(P[k:], shifted, atol=1e-10), f"max error {np.abs(P[k:] - shifted).max():.1e}")
dots = (P[:-k] * P[k:]).sum(axis=1)                                    # P[t]·P[t+k] for every t
print(f"  P[t]·P[t+{k}] for t = 0, 10, 50: {dots[0]:.6f} {dots[10]:.6f} {dots[50]:.6f};"
      f"  Σ cos(ω_i·{k}) = {np.cos(omega * k).sum():.6f}")
lesson.check(f"P[t]·P[t+{k}] is the same for every t", np.allclose(dots, np.cos(omega * k).sum()))

# %%
lesson.step("Attention alone cannot tell who made whom", """
    Give four words an embedding each and run the library's MultiHeadAttention on two sentences with the
    same words in another order, with no positions added. Each output is softmax(QKᵀ/√d_k)V, where Q, K, V
    are per-token projections: a token's output depends on its own vector and on the *set* of the
    others, not on where they stand. Permuting the input permutes the output rows, and nothing else:
    "Zuko" gets the same vector as the subject and as the object.""")
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

# %%
lesson.step("Add positions, and the sentences differ", """
    Now add P[t] before attention: the input of "Zuko" is embedding(Zuko) + P[0] in sentence A and
    embedding(Zuko) + P[3] in sentence B. Its queries, keys and values change with its place, so its
    output does too. Both kinds of positional encoding do this: the fixed sinusoidal table, and a
    learned table (one trained vector per position, used by GPT).""")
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

# %%
lesson.step("A learned table stops at its length", """
    A learned table P [block_size, d_model] is a parameter like the embedding table (its backward adds
    Σ_b dy[b] into the rows that were used). It can fit whatever the data needs, but it has exactly
    block_size rows: a sequence longer than that has no vector for its last positions, and the library
    refuses it with a clear error rather than wrapping around. The sinusoidal formula gives a row for
    any t (whether the model has learned to use positions it never saw in training is another matter).""")
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
small = LearnedPositionalEncoding(block_size=4, d_model=3)
errors = check_layer(small, {"x": backend.randn((2, 3, 3), rng=np.random.default_rng(0))})
lesson.check("the learned table's backward matches finite differences to 1e-8", max(errors.values()) < 1e-8,
             ", ".join(f"{n} {e:.1e}" for n, e in errors.items()))

# %%
lesson.step("Pictures", """
    Left: the sinusoidal table; fast columns on the left, slow on the right. Middle: P[t]·P[s] for all
    pairs: a band along the diagonal, the same at every t, falling off with |t - s|. Right: how far each
    word's attention output moves between the two sentences: 0 without positions.""")
import matplotlib.pyplot as plt  # noqa: E402

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(18, 5), gridspec_kw={"width_ratios": [1.2, 1, 1]},
                                    layout="constrained")
image = ax1.imshow(P, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
ax1.set_xlabel("column (pairs 2i, 2i+1: sin, cos)")
ax1.set_ylabel("position t")
ax1.set_title(f"sinusoidal_table({length}, {d})")
fig.colorbar(image, ax=ax1, fraction=0.04)
image = ax2.imshow(P @ P.T, cmap="viridis")
ax2.set_xlabel("position s")
ax2.set_ylabel("position t")
ax2.set_title("P[t]·P[s]: depends only on t - s")
fig.colorbar(image, ax=ax2, fraction=0.04)
xs = np.arange(len(words))
ax3.bar(xs - 0.27, [no_position[w] for w in words], 0.27, label="no positions")
ax3.bar(xs, [with_position["sinusoidal"][w] for w in words], 0.27, label="+ sinusoidal")
ax3.bar(xs + 0.27, [with_position["learned"][w] for w in words], 0.27, label="+ learned")
for x_ in xs:
    ax3.text(x_ - 0.27, 0.005, "0", ha="center", va="bottom", color="tab:blue")
ax3.set_xticks(xs)
ax3.set_xticklabels(words)
ax3.set_ylabel("|output in A − output in B|")
ax3.set_title("'Zuko made his uncle' vs 'his uncle made Zuko'")
ax3.legend()
lesson.figure(fig, "04_positional_encoding")

lesson.done()
