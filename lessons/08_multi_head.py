# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 08: multi-head attention, n_head attentions side by side
#
# One attention head computes one set of weights per query: one notion of "what is relevant".
# Multi-head attention runs `n_head` heads in parallel. Each works on its own slice of
# $d_k = d_{\mathrm{model}} / n_{\mathrm{head}}$ features of Q, K and V:
#
# $$\mathrm{head}_h = \mathrm{softmax}(Q_h K_h^\top / \sqrt{d_k})\, V_h, \qquad
# y = \mathrm{concat}(\mathrm{head}_1, \ldots, \mathrm{head}_n)\, W_o$$
#
# The split is a reshape and a transpose, not a loop: `[B, T, d_model]` → `[B, T, n_head, d_k]` →
# `[B, n_head, T, d_k]`. So all heads run in one batched matmul.
#
# We check:
#
# - that head $h$ really is columns $h \cdot d_k$ .. $(h+1) \cdot d_k$ of Q;
# - that the layer equals `n_head` separate attentions, concatenated, then $W_o$;
# - that `n_head` heads cost what one head of width $d_{\mathrm{model}}$ costs;
# - that two heads set by hand do two jobs: one looks one token back, the other always at the same word;
# - why $W_q$ and $W_k$ are two matrices: tied, they make every score matrix symmetric, and on a ring of
#   tokens a previous-token head cannot be learned.
#
# Run: `python lessons/08_multi_head.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson08 as plots

from tinytransformer import (AdamW, CrossEntropyLoss, Embedding, Linear, Module, MultiHeadAttention,
                             ScaledDotProductAttention, backend, check_layer)
from tinytransformer.machine import one_blas_thread

lesson = Lesson("08 Multi-head attention", steps=10)
# With --exercise, your split_heads and merge_heads (lessons/exercises/) run in place of the library's.
MultiHeadAttention.split_heads = lesson.exercise("split_heads", MultiHeadAttention.split_heads)
MultiHeadAttention.merge_heads = lesson.exercise("merge_heads", MultiHeadAttention.merge_heads)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Splitting into heads is a reshape
#
# How does one `[B, T, d_model]` tensor become `n_head` heads? `split_heads` makes two moves:
#
# 1. reshape Q from `[B, T, d_model]` to `[B, T, n_head, d_k]`: each row is cut into `n_head`
#    consecutive pieces of $d_k$ features;
# 2. move the head axis forward: `[B, n_head, T, d_k]`.
#
# `merge_heads` undoes both. No number is computed; the numbers are only regrouped.

# %%
lesson.step("Splitting into heads is a reshape")
B, T, d_model, n_head = 2, 5, 12, 3
print(f"  d_model = {d_model}, n_head = {n_head}: each head gets d_k = {d_model // n_head} features")
backend.seed(0)
mha = MultiHeadAttention(d_model, n_head)
d_k = mha.d_k
x = rng.standard_normal((B, T, d_model))                                # [B, T, d_model]
q = mha.q_proj(x)                                                       # [B, T, d_model]
q_heads = mha.split_heads(q)                                            # [B, n_head, T, d_k]
print(f"  x {x.shape} -> Q = x W_q {q.shape} -> split_heads {q_heads.shape} -> merge_heads "
      f"{mha.merge_heads(q_heads).shape}")
print(f"  Q[0, 0] (token 0)  = {q[0, 0]}")
for h in range(n_head):
    print(f"  head {h}, token 0   = {q_heads[0, h, 0]}   = Q[0, 0, {h * d_k}:{(h + 1) * d_k}]")
lesson.check("head h of the split is columns h·d_k .. (h+1)·d_k of Q, for every h",
             all(np.array_equal(q_heads[:, h], q[:, :, h * d_k:(h + 1) * d_k]) for h in range(n_head)))
lesson.check("merge_heads(split_heads(Q)) == Q exactly", np.array_equal(mha.merge_heads(q_heads), q))

# %% [markdown]
# So head $h$ owns a fixed block of Q's columns. The transpose only puts the heads where a batched matmul
# wants them: in front of T.

# %% [markdown]
# ## The same as n_head separate attentions, concatenated
#
# Is the batched layer really `n_head` independent attentions? Compute it the long way:
#
# - for each head $h$, take its columns of $W_q$, $W_k$, $W_v$ (and of the biases);
# - project x, and run one `ScaledDotProductAttention` on the result;
# - concatenate the heads' outputs along the features, and apply $W_o$.
#
# The library's batched version must give the same numbers.
#
# One more way to read the last product: concat, then $W_o$, is a sum over heads,
#
# $$\mathrm{concat}(\mathrm{head}_1, \ldots, \mathrm{head}_n)\, W_o = \sum_h \mathrm{head}_h\, W_o[h d_k : (h+1) d_k,\ :]$$
#
# Each head writes its own contribution into the output, through its own rows of $W_o$.

# %%
lesson.step("The same as n_head separate attentions, concatenated")
y = mha(x)                                                              # [B, T, d_model]
heads, weights = [], []
for h in range(n_head):
    cols = slice(h * d_k, (h + 1) * d_k)
    q_h = x @ mha.q_proj.weight.data[:, cols] + mha.q_proj.bias.data[cols]    # [B, T, d_k]
    k_h = x @ mha.k_proj.weight.data[:, cols] + mha.k_proj.bias.data[cols]
    v_h = x @ mha.v_proj.weight.data[:, cols] + mha.v_proj.bias.data[cols]
    single = ScaledDotProductAttention()
    heads.append(single(q_h, k_h, v_h))                                 # [B, T, d_k]
    weights.append(single.weights)                                      # [B, T, T]
concat = np.concatenate(heads, axis=-1)                                 # [B, T, d_model]
y_by_hand = concat @ mha.out_proj.weight.data + mha.out_proj.bias.data
per_head = sum(heads[h] @ mha.out_proj.weight.data[h * d_k:(h + 1) * d_k] for h in range(n_head))
print(f"  library y[0, 0]  = {y[0, 0]}\n  by hand y[0, 0]  = {y_by_hand[0, 0]}")
lesson.check("MultiHeadAttention == concat of n_head separate attentions, then W_o",
             np.allclose(y, y_by_hand, atol=1e-13), f"max difference {np.abs(y - y_by_hand).max():.1e}")
lesson.check("each head's weights match the library's mha.weights[:, h]",
             all(np.allclose(weights[h], mha.weights[:, h], atol=1e-14) for h in range(n_head)))
lesson.check("concat(heads) W_o == Σ_h head_h W_o[rows of head h] (+ bias)",
             np.allclose(per_head + mha.out_proj.bias.data, y, atol=1e-13))
different = min(np.abs(weights[a] - weights[b]).max() for a in range(n_head) for b in range(a))
lesson.check("even with random weights, the heads attend differently", different > 0.05,
             f"the two most alike heads still differ by up to {different:.2f} in a weight")

# %% [markdown]
# ## The backward goes the same way in reverse
#
# The backward runs the forward's steps backwards:
#
# 1. $W_o$'s backward;
# 2. `split_heads` (the backward of a merge is a split);
# 3. the attention backward, for all heads at once;
# 4. `merge_heads`;
# 5. the three projections' backward. x receives the **sum** of the gradients through Q, K and V.
#
# `check_layer` compares all of it with finite differences.

# %%
lesson.step("The backward goes the same way in reverse")
backend.seed(1)
small = MultiHeadAttention(d_model=4, n_head=2)
errors = check_layer(small, {"x": backend.randn((2, 3, 4), rng=np.random.default_rng(2))})
print("  relative errors: " + ", ".join(f"{name} {e:.0e}" for name, e in errors.items()))
lesson.check("every gradient of MultiHeadAttention matches finite differences to 1e-7",
             max(errors.values()) < 1e-7, f"largest {max(errors.values()):.1e}")

# %% [markdown]
# ## n_head heads cost what one head costs
#
# More heads do not make the layer bigger or slower. The projections are the same four $d \times d$
# matrices whatever `n_head` is (each head gets $d_k = d / n_{head}$ of their columns). The scores cost
# $n_{head} \cdot T^2 \cdot d_k = T^2 d$ multiply-adds, and the weighted sum of values as many: the same
# as one head of width $d$. Only the softmax grows: $n_{head} \cdot T^2$ weights, a few operations each.
#
# We count parameters from the layer and multiply-adds from the shapes of the arrays it actually kept
# (`q`, `k`, `v`, the weights), for 1, 2, 4 and 8 heads, and time forward + backward.

# %%
lesson.step("n_head heads cost what one head costs")
d_cost, T_cost = 64, 64
x_cost = rng.standard_normal((2, T_cost, d_cost))                       # [B, T, d]
cost = {}
for heads_n in (1, 2, 4, 8):
    layer = MultiHeadAttention(d_cost, n_head=heads_n)
    out = layer(x_cost)
    att = layer.attention                                               # kept q, k, v [B, h, T, d_k]
    projections = 4 * x_cost.shape[0] * T_cost * d_cost * layer.q_proj.weight.data.shape[1]   # Q, K, V, W_o
    scores = att.q.size * att.k.shape[-2]                              # B·h·T·d_k · T: q·k for every pair
    mixing = att.weights.size * att.v.shape[-1]                        # B·h·T·T · d_k: weights times values
    params = sum(p.data.size for p in layer.parameters())
    with one_blas_thread():                                             # one core: comparable times
        seconds = lesson.median_time(lambda: layer.backward(layer(x_cost) * 0 + 1), repeat=5, warmup=2)
    cost[heads_n] = (params, projections + scores + mixing, att.weights.size, seconds)
    print(f"  n_head = {heads_n}: d_k = {d_cost // heads_n:2d}, {params:,} parameters, "
          f"{(projections + scores + mixing) / 1e6:.1f} M multiply-adds, {att.weights.size:,} weights, "
          f"forward + backward {seconds * 1e3:.1f} ms")
lesson.check("the parameters are the same for 1, 2, 4 and 8 heads: 4d² + 4d",
             all(c[0] == 4 * d_cost ** 2 + 4 * d_cost for c in cost.values()))
lesson.check("so are the multiply-adds of the projections, the scores and the weighted sum",
             len({c[1] for c in cost.values()}) == 1, f"{cost[1][1]:,}")
lesson.check("what grows is the softmax's share: n_head·T² weights per sequence",
             all(c[2] == 2 * h * T_cost ** 2 for h, c in cost.items()))

# %% [markdown]
# The times differ by less than the head count: the same multiply-adds, in smaller matrix products, plus
# the softmax over more weights. Heads are a way to spend the same budget on several patterns at once.

# %% [markdown]
# ## Two heads, two jobs
#
# Why several heads? Because each can compute its own pattern. Let us set two heads by hand.
#
# The input is the sentence "the cat sat on the mat with a hat". Each token is
# [one-hot of the word | one-hot of its position].
#
# - **Head 0, "previous token".** The query of position $t$ is $c \cdot e_t$; the key of position $s$ is
#   $c \cdot e_{s+1}$. So the score is large only for $s = t - 1$. Its value is the word's one-hot: head 0
#   outputs the previous word.
# - **Head 1, "find the cat".** Every query is the same vector $c \cdot u$ (a bias), and only the key of
#   "cat" is $c \cdot u$. So every position looks at "cat".
#
# With $c = 6$ and $d_k = 16$, the winning score is $36/\sqrt{16} = 9$, against 0 for the others. A
# winning weight is then $e^9/(e^9 + T - 1) \approx 0.999$.

# %%
lesson.step("Two heads, two jobs")
words = ["the", "cat", "sat", "on", "the", "mat", "with", "a", "hat"]
vocab = sorted(set(words))
T = len(words)
V_size = len(vocab)
d_head = 16                                                              # d_k: room for T + 1 positions
d_model = 2 * d_head
word_rows, pos_rows = slice(0, V_size), slice(V_size, V_size + T)
tokens = np.array([vocab.index(w) for w in words])
x = np.zeros((1, T, d_model))                                           # [B=1, T, d_model]
x[0, np.arange(T), tokens] = 1.0                                        # word one-hot
x[0, np.arange(T), V_size + np.arange(T)] = 1.0                         # position one-hot
c = 6.0
print(f"  {' '.join(words)!r}: T = {T};  c = {c:g}, d_k = {d_head}: winning score c²/√d_k = "
      f"{c ** 2 / np.sqrt(d_head):g}, weight e⁹/(e⁹ + T − 1) = {np.exp(9) / (np.exp(9) + T - 1):.4f}")
two = MultiHeadAttention(d_model, n_head=2)
for layer in (two.q_proj, two.k_proj, two.v_proj, two.out_proj):
    layer.weight.data[...] = 0.0
    layer.bias.data[...] = 0.0
for t in range(T):
    two.q_proj.weight.data[V_size + t, t] = c                           # head 0 query of position t: c·e_t
    two.k_proj.weight.data[V_size + t, t + 1] = c                       # head 0 key of position t: c·e_(t+1)
two.q_proj.bias.data[d_head] = c                                        # head 1 query: c·u for everyone
two.k_proj.weight.data[vocab.index("cat"), d_head] = c                  # head 1 key: c·u only for "cat"
for v in range(V_size):
    two.v_proj.weight.data[v, v] = 1.0                                  # head 0 value: the word's one-hot
    two.v_proj.weight.data[v, d_head + v] = 1.0                         # head 1 value: the same
two.out_proj.weight.data[...] = np.eye(d_model)                         # W_o = I: see the heads' outputs
out = two(x)[0]                                                         # [T, d_model]
W0, W1 = two.weights[0, 0], two.weights[0, 1]                           # [T, T] each
previous = [vocab[int(np.argmax(out[t, :V_size]))] for t in range(T)]
print("  head 0 outputs (the word it read):  " + " ".join(f"{p:>4}" for p in ["avg"] + previous[1:]))
print("  the sentence, one position later:   " + " ".join(f"{w:>4}" for w in ["-"] + words[:-1]))
cat = words.index("cat")
lesson.check("head 0 puts > 0.99 of its weight on the previous position (t = 1 .. T−1)",
             all(W0[t, t - 1] > 0.99 for t in range(1, T)), f"smallest {min(W0[t, t - 1] for t in range(1, T)):.4f}")
lesson.check("so head 0 outputs the previous word at every t ≥ 1", previous[1:] == words[:-1])
lesson.check("position 0 has no previous token: head 0 spreads evenly there", np.allclose(W0[0], 1 / T))
lesson.check("head 1 puts > 0.99 of every query's weight on 'cat'", np.all(W1[:, cat] > 0.99),
             f"smallest {W1[:, cat].min():.4f}")
lesson.check("and head 1 outputs 'cat' everywhere",
             all(vocab[int(np.argmax(out[t, d_head:d_head + V_size]))] == "cat" for t in range(T)))

# %% [markdown]
# Position 0 has no previous token. All its head-0 scores are 0, so it spreads evenly: the `avg` above.

# %% [markdown]
# ## Smaller projections, softer heads
#
# How sharp a head is depends on the size of its projections. Take head 0 again, with $c = 1, 2, 3$
# instead of 6.
#
# The winning score $c^2/\sqrt{d_k} = c^2/4$ shrinks: 0.25, 1, 2.25 instead of 9. The weight on the
# previous token should then be
#
# $$e^{c^2/4} \,/\, (e^{c^2/4} + T - 1)$$

# %%
lesson.step("Smaller projections, softer heads")
softer = {}
for c_small in (1.0, 2.0, 3.0):
    head = MultiHeadAttention(d_model, n_head=2)
    for mine, hand_set in zip(head.parameters(), two.parameters()):
        mine.data[...] = hand_set.data
    head.q_proj.weight.data *= c_small / c                              # scores scale with (c_small / c)²
    head.k_proj.weight.data *= c_small / c
    head(x)
    softer[c_small] = head.weights[0, 0]                                # [T, T]: head 0
    on_previous = np.array([softer[c_small][t, t - 1] for t in range(1, T)])
    expected = np.exp(c_small ** 2 / 4) / (np.exp(c_small ** 2 / 4) + T - 1)
    print(f"  c = {c_small:g}: score {c_small ** 2 / 4:g}, weight on the previous token {on_previous.mean():.3f} "
          f"(e^(c²/4) / (e^(c²/4) + {T - 1}) = {expected:.3f})")
    lesson.check(f"c = {c_small:g}: the weight on the previous token is e^(c²/4) / (e^(c²/4) + T − 1)",
                 np.allclose(on_previous, expected, atol=1e-12))
lesson.check("the smaller the projections, the softer the head (c = 1 < 2 < 3 < 6)",
             softer[1.0][1, 0] < softer[2.0][1, 0] < softer[3.0][1, 0] < W0[1, 0])

# %% [markdown]
# The same pattern fades towards an even spread. That is where the random layer of step 2 sits: its small
# scores give nearly uniform heads. Training grows the projections a head needs, and with them its focus.

# %% [markdown]
# ## Picture: what each head looks at
#
# - Top: the two hand-set heads on the sentence. Head 0 is a diagonal one step below the main diagonal;
#   head 1 is a single column, on "cat".
# - Bottom: head 0 with $c = 1, 2, 3$. The same pattern, fading towards an even spread.

# %%
lesson.step("Picture: what each head looks at")
lesson.figure(plots.heads(W0, W1, softer, words), "08_heads")

# %% [markdown]
# ## Why W_q and W_k are separate
#
# Why two matrices, when one would do? Write a score out:
#
# $$q_i \cdot k_j = x_i W_q W_k^\top x_j^\top = x_i A x_j^\top, \qquad A = W_q W_k^\top$$
#
# - A score is a bilinear form of the two tokens.
# - $A$ is $d \times d$, but of rank at most $d_k$.
# - A bias is one more row of $W$, for an input that is always 1: append a 1 to x, and $A$ is
#   $(d+1) \times (d+1)$.
#
# Below, a random layer with three heads: each head's $A$, its singular values, and the scores it gives.

# %%
lesson.step("Why W_q and W_k are separate")
backend.seed(0)
mha = MultiHeadAttention(d_model=12, n_head=3)
d_k = mha.d_k
x = rng.standard_normal((2, 5, 12))                                     # [B, T, d]
x1 = np.concatenate([x, np.ones((2, 5, 1))], axis=-1)                  # [B, T, d+1]: the bias's input
q_heads = mha.split_heads(mha.q_proj(x))                                # [B, h, T, d_k]
k_heads = mha.split_heads(mha.k_proj(x))
rank_gap, form_error = [], []
for h in range(mha.n_head):
    cols = slice(h * d_k, (h + 1) * d_k)
    W_q = np.vstack([mha.q_proj.weight.data[:, cols], mha.q_proj.bias.data[cols]])   # [d+1, d_k]
    W_k = np.vstack([mha.k_proj.weight.data[:, cols], mha.k_proj.bias.data[cols]])
    A = W_q @ W_k.T                                                     # [d+1, d+1]
    singular = np.linalg.svd(A, compute_uv=False)                      # largest first
    singular = singular / singular[0]
    rank_gap.append((singular[d_k - 1], singular[d_k:].max()))
    if h == 0:
        print(f"  head 0: singular values of A ({A.shape[0]} × {A.shape[1]}) / the largest:\n    {singular}")
    scores = q_heads[:, h] @ k_heads[:, h].swapaxes(-1, -2)             # [B, T, T]
    form_error.append(np.abs(x1 @ A @ x1.swapaxes(-1, -2) - scores).max() / np.abs(scores).max())
lesson.check(f"A = W_q W_kᵀ ({A.shape[0]} × {A.shape[1]}) has rank d_k = {d_k} in every head: the first "
             f"{d_k} singular values are > 1e-3 of the largest, the rest < 1e-10",
             all(kept > 1e-3 and rest < 1e-10 for kept, rest in rank_gap),
             "smallest kept {:.1e}, largest beyond {:.1e}".format(min(g[0] for g in rank_gap),
                                                                   max(g[1] for g in rank_gap)))
lesson.check("x A xᵀ == (x W_q)(x W_k)ᵀ, the layer's scores before √d_k, in every head",
             max(form_error) < 1e-12, f"largest relative difference {max(form_error):.1e}")

# %% [markdown]
# ## Tied, the scores are symmetric
#
# What if we tie $W_k = W_q$? Then $A = W_q W_q^\top$ is symmetric, and so is every score matrix:
# $S = S^\top$.
#
# - Token $i$ scores $j$ exactly as $j$ scores $i$.
# - And a score is bounded by the two lengths: $q_i \cdot q_j \le \|q_i\|\, \|q_j\|$.

# %%
lesson.step("Tied, the scores are symmetric")
tied = MultiHeadAttention(d_model=12, n_head=3)
tied.k_proj.weight, tied.k_proj.bias = tied.q_proj.weight, tied.q_proj.bias   # one Parameter, two uses
q, k = tied.split_heads(tied.q_proj(x)), tied.split_heads(tied.k_proj(x))     # [B, h, T, d_k]
S = (q[..., :, None, :] * k[..., None, :, :]).sum(-1)                  # [B, h, T, T]: S_ij = Σ q_i k_j
lesson.check("tied W_k = W_q: Q == K and the scores are symmetric, S == Sᵀ exactly",
             np.array_equal(q, k) and np.array_equal(S, S.swapaxes(-1, -2)))

# %% [markdown]
# ## On a ring, a tied layer cannot look one back
#
# Put three tokens on a ring: position 0's previous token is position 2.
#
# - To score its previous token above itself, position $t$ needs $q_t \cdot q_{t-1} > q_t \cdot q_t$.
#   With the bound above, that means $\|q_{t-1}\| > \|q_t\|$: the query must shrink
#   from one position to the next.
# - Round a ring the queries cannot shrink all the way. So some position scores itself at least as high
#   as its previous token: a tied layer cannot be a previous-token head.
# - (On an open line it can cheat, with queries that shrink from the first position on.)
#
# Train both on "output the token one back, round the ring": one head, learned positions, no mask, the
# same budget and seeds. The tied layer can at best get two positions of three right, and the third by
# luck (1 in 8):
#
# $$\frac{2}{3} + \frac{1}{24} \approx 0.71$$

# %%
lesson.step("On a ring, a tied layer cannot look one back")


class RingModel(Module):
    """logits = attention(E[token] + P[position]) W_head: one head, learned positions, no mask."""

    def __init__(self, vocab_size, block_size, d_model, tie):
        self.tok, self.pos = Embedding(vocab_size, d_model), Embedding(block_size, d_model)
        self.attn = MultiHeadAttention(d_model, n_head=1)
        self.head = Linear(d_model, vocab_size)
        if tie:
            self.attn.k_proj.weight, self.attn.k_proj.bias = self.attn.q_proj.weight, self.attn.q_proj.bias

    def forward(self, idx):                                             # [B, T] -> [B, T, vocab_size]
        x = self.tok(idx) + self.pos(np.arange(idx.shape[1]))           # [B, T, d_model]
        return self.head(self.attn(x))

    def backward(self, dlogits):
        dx = self.attn.backward(self.head.backward(dlogits))            # [B, T, d_model]
        self.tok.backward(dx)
        self.pos.backward(dx.sum(axis=0))                               # every sequence used the same rows


vocab_size, ring, steps, seeds = 8, 3, (150 if lesson.quick else 600), (0, 1, 2)
test = np.random.default_rng(99).integers(0, vocab_size, (512, ring))  # [512, 3]
accuracy, prefers_itself = {}, {}
for tie in (False, True):
    for seed in seeds:
        backend.seed(seed)
        data = np.random.default_rng(100 + seed)
        model = RingModel(vocab_size, ring, d_model=16, tie=tie)
        optimizer = AdamW(model.named_parameters(), lr=1e-2, weight_decay=0.0)
        loss_fn = CrossEntropyLoss()
        for it in range(steps):
            idx = data.integers(0, vocab_size, (32, ring))              # [B, 3]
            loss = loss_fn(model(idx), np.roll(idx, 1, axis=1))         # target: the token one back
            model.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
        logits = model(test)                                            # [512, 3, vocab_size]
        accuracy[tie, seed] = (logits.argmax(-1) == np.roll(test, 1, axis=1)).mean()
        x_test = model.tok(test) + model.pos(np.arange(ring))            # [512, 3, d_model]
        S = model.attn.q_proj(x_test) @ model.attn.k_proj(x_test).swapaxes(-1, -2)   # [512, 3, 3]: one head
        t = np.arange(ring)
        prefers_itself[tie, seed] = (S[:, t, t] >= S[:, t, t - 1] - 1e-9 * np.abs(S).max()).any(axis=1).mean()
    print(f"  {'tied W_k = W_q' if tie else 'separate W_q, W_k'}: accuracy after {steps} steps, seeds {seeds}: "
          + " ".join(f"{accuracy[tie, s]:.3f}" for s in seeds) + "; sequences where some position "
          "scores itself ≥ its previous token: " + " ".join(f"{prefers_itself[tie, s]:.2f}" for s in seeds))
lesson.check("separate W_q, W_k learn the previous-token head: accuracy ≥ 0.9 for every seed",
             all(accuracy[False, s] >= 0.9 for s in seeds),
             f"lowest {min(accuracy[False, s] for s in seeds):.3f}")
lesson.check("tied W_k = W_q: in every test sequence some position scores itself ≥ its previous token",
             all(prefers_itself[True, s] == 1.0 for s in seeds))
lesson.check("so the tied layer stays far below, at most 2/3 + luck: accuracy ≤ 0.75 for every seed",
             all(accuracy[True, s] <= 0.75 for s in seeds),
             f"highest {max(accuracy[True, s] for s in seeds):.3f}")

# %% [markdown]
# Separate $W_q$ and $W_k$ let token $i$ score $j$ differently from how $j$ scores $i$. Looking one token
# back needs exactly that.

# %%
lesson.done()
