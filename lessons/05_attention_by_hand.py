# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 05: scaled dot-product attention, computed by hand on four tokens
#
# $$\mathrm{out} = \mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$$
#
# One piece at a time:
#
# 1. the scores: every query dotted with every key, divided by $\sqrt{d_k}$;
# 2. the softmax: each row of scores becomes weights that are positive and sum to 1;
# 3. the weighted sum of the value vectors.
#
# Every number is computed with plain loops from small integers, then checked against the library's
# `ScaledDotProductAttention`. Two ways to read the result follow:
#
# - attention as a **soft lookup** in a key-value store: a query that matches one key strongly retrieves
#   that key's value;
# - attention as **message passing** on a graph whose edge weights are the attention weights.
#
# Run: `python lessons/05_attention_by_hand.py` (add `--no-pause` to run straight through).

# %%
import math

import numpy as np
from _lesson import Lesson
from _plots import lesson05 as plots

from tinytransformer import ScaledDotProductAttention, backend

lesson = Lesson("05 Attention by hand", steps=10)
# With --exercise, your attention_forward (lessons/exercises/) runs in place of the library's.
ScaledDotProductAttention.forward = lesson.exercise("attention_forward", ScaledDotProductAttention.forward)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Queries, keys and values
#
# Each token plays three roles:
#
# - a **query** $q_i$: what it is looking for;
# - a **key** $k_j$: what it offers to be found by;
# - a **value** $v_j$: what it hands over when found.
#
# In a Transformer these come from the token vectors through three learned matrices. Here we simply pick
# small numbers for the four tokens of "I saw a cat": $d_k$ columns for queries and keys, $d_v$ for values.

# %%
lesson.step("Queries, keys and values")
tokens = ["I", "saw", "a", "cat"]
T, d_k, d_v = 4, 4, 2
Q = np.array([[1, 0, 1, 0],
              [0, 2, 0, 1],
              [2, 2, 0, 0],
              [0, 0, 0, 0]], dtype=float)                               # [T, d_k]
K = np.array([[1, 0, 1, 0],
              [0, 1, 0, 1],
              [1, 1, 0, 0],
              [0, 0, 1, 1]], dtype=float)                               # [T, d_k]
V = np.array([[1, 0],
              [0, 1],
              [1, 1],
              [0, 0]], dtype=float)                                     # [T, d_v]
print(f"  T = {T} tokens, d_k = {d_k}, d_v = {d_v}")
for name, M in (("Q", Q), ("K", K), ("V", V)):
    print(f"  {name} =")
    for t, row in zip(tokens, M):
        print(f"     {t:>4}: {row}")

# %% [markdown]
# Note the last query, for "cat": all zeros. It prefers no key; we will see what it gets.

# %% [markdown]
# ## Scores: S = QKᵀ / √d_k
#
# How well does query $i$ match key $j$? Their dot product, scaled:
#
# $$S_{ij} = \frac{q_i \cdot k_j}{\sqrt{d_k}}$$
#
# (Lesson 06 shows why we divide by $\sqrt{d_k}$.) The result is a $T \times T$ table: row $i$ is query $i$
# against every key.

# %%
lesson.step("Scores: S = QKᵀ / √d_k")
scores = [[0.0] * T for _ in range(T)]
for i in range(T):
    for j in range(T):
        scores[i][j] = sum(Q[i, c] * K[j, c] for c in range(d_k)) / math.sqrt(d_k)
terms = " + ".join(f"{Q[0, c]:g}·{K[2, c]:g}" for c in range(d_k))
print(f"  S[0, 2] = q_0·k_2 / √{d_k} = ({terms}) / {math.sqrt(d_k):g} = {scores[0][2]:g}")
print("  S =")
for t, row in zip(tokens, scores):
    print(f"     {t:>4}: " + "  ".join(f"{s:5.2f}" for s in row))

# %% [markdown]
# ## Softmax: each row of scores becomes weights
#
# Scores can be any numbers. To mix values we want shares. Softmax, row by row:
#
# $$W_{ij} = \frac{\exp(S_{ij})}{\sum_{j'} \exp(S_{ij'})}$$
#
# What should we expect?
#
# - every weight is positive;
# - each row sums to 1;
# - a larger score gets a larger share;
# - a row of equal scores (the all-zero query) gives equal weights $1/T$.

# %%
lesson.step("Softmax: each row of scores becomes weights")
weights = []
for i in range(T):
    exps = [math.exp(s) for s in scores[i]]
    total = sum(exps)
    weights.append([e / total for e in exps])
    if i == 0:
        print("  row 0: exp(S[0]) = [" + ", ".join(f"{e:.3f}" for e in exps) + f"],  sum = {total:.3f}")
print("  W =")
for t, row in zip(tokens, weights):
    print(f"     {t:>4}: " + "  ".join(f"{w:.3f}" for w in row) + f"   (sum {sum(row):.3f})")
weights = np.array(weights)
lesson.check("every row of W sums to 1", np.allclose(weights.sum(axis=1), 1.0, atol=1e-15))
lesson.check("every weight is positive", np.all(weights > 0))
lesson.check("the all-zero query spreads its attention evenly (1/4 each)", np.allclose(weights[3], 1 / T))

# %% [markdown]
# The library computes the same softmax, with one change: it subtracts the row maximum before `exp`, so that
# `exp` never overflows. That is safe, because softmax does not change when the same number is added to a
# whole row.

# %% [markdown]
# ## Weighted sum of values: out = W V
#
# Output $i$ is a blend of all the values, mixed in the proportions of row $i$ of $W$:
#
# $$\mathrm{out}_i = \sum_j W_{ij}\, v_j$$

# %%
lesson.step("Weighted sum of values: out = W V")
out = np.zeros((T, d_v))
for i in range(T):
    for j in range(T):
        out[i] += weights[i, j] * V[j]
for t, row in zip(tokens, out):
    print(f"     out[{t:>4}] = {row}")

# %% [markdown]
# ## The library computes the same
#
# The library's `ScaledDotProductAttention` does all of this in three lines of matrix code. Our loops and
# the library must agree, to within $10^{-15}$.

# %%
lesson.step("The library computes the same")
attention = ScaledDotProductAttention()
library_out = attention(Q, K, V)
print(f"  library: softmax(QKᵀ/√d_k)V =\n{library_out}")
lesson.check("our weights equal the library's attention.weights", np.allclose(weights, attention.weights,
                                                                            atol=1e-15))
lesson.check("our outputs equal the library's output", np.allclose(out, library_out, atol=1e-15),
             f"max difference {np.abs(out - library_out).max():.1e}")
lesson.check("the all-zero query gets the plain average of the values",
             np.allclose(out[3], V.mean(axis=0), atol=1e-15))

# %% [markdown]
# The all-zero query weighted every value by $1/T$, so its output is their plain average.

# %% [markdown]
# ## Attention as a soft lookup in a key-value store
#
# A Python `dict` returns the value whose key equals the query, exactly. Attention returns a **blend** of
# all values, weighted by how well each key matches. How close can the blend get to a real lookup?
#
# Store four values under four orthonormal keys. Query with key 2 itself, times a sharpness $s$:
#
# $$q = s \sqrt{d_k}\, k_2,$$
#
# so the matching score is $s$ and the others are 0.

# %%
lesson.step("Attention as a soft lookup in a key-value store")
rng = np.random.default_rng(0)
d_store = 16
keys = np.linalg.qr(rng.standard_normal((d_store, 4)))[0].T            # [4, d_store], orthonormal rows
values = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, -3.0]])  # [4, 2]
sharpness = [0, 1, 2, 4, 8, 16]
lookup_weight, lookup_error, answers = [], [], []
for s in sharpness:
    q = (s * math.sqrt(d_store) * keys[2])[None, :]                     # [1, d_store]
    answer = attention(q, keys, values)[0]
    answers.append(answer)
    lookup_weight.append(float(attention.weights[0, 2]))
    lookup_error.append(float(np.linalg.norm(answer - values[2])))
    print(f"  s = {s:>2}: weight on key 2 = {lookup_weight[-1]:.6f}   answer = {answer}"
          f"   |answer - value 2| = {lookup_error[-1]:.2e}")
lesson.check("s = 0: the answer is the average of all values",
             np.allclose(answers[0], values.mean(axis=0), atol=1e-12))
lesson.check("the weight on the matching key grows with s", np.all(np.diff(lookup_weight) > 0))
lesson.check("s = 16: weight > 0.999 and the answer is value 2 to within 1e-5 relative",
             lookup_weight[-1] > 0.999 and lookup_error[-1] < 1e-5 * np.linalg.norm(values[2]))

# %% [markdown]
# - At $s = 0$ the answer is the average of all values.
# - As $s$ grows, the weight on key 2 approaches 1, and the answer approaches value 2.
#
# A hard lookup is the limit of a soft one.

# %% [markdown]
# ## A query between two keys
#
# A `dict` has no answer for a query that is half one key and half another. Attention has one: query with
# key 1 + key 2 (at $s = 16$). What comes back?

# %%
lesson.step("A query between two keys")
both = (16 * math.sqrt(d_store) * (keys[1] + keys[2]))[None, :]
blend = attention(both, keys, values)[0]
print(f"  query = key 1 + key 2 (s = 16): weights {attention.weights[0]}  answer {blend}")
lesson.check("a query matching keys 1 and 2 equally retrieves (value 1 + value 2) / 2",
             np.allclose(blend, (values[1] + values[2]) / 2, atol=1e-5))

# %% [markdown]
# The average of their two values: the two keys split the weight evenly.

# %% [markdown]
# ## Attention as message passing on a graph
#
# Read $W$ as a graph:
#
# - token $j$ sends its value $v_j$ along an edge to token $i$, with edge weight $W_{ij}$;
# - token $i$ adds up what it receives.
#
# Plain self-attention is a complete graph with edges weighted by content. A boolean mask removes edges
# (lesson 07). Give the library a mask that allows only the chain I - saw - a - cat: each token and its
# neighbours. Then change what "cat" sends, $v_{cat}$, and see whose output moves.

# %%
lesson.step("Attention as message passing on a graph")
chain = np.array([[abs(i - j) <= 1 for j in range(T)] for i in range(T)])   # [T, T] neighbours + self
print("  allowed edges (mask):\n" + "\n".join("     " + " ".join("1" if a else "." for a in row)
                                             for row in chain))
one_hop = attention(Q, K, V, mask=chain)
chain_weights = attention.weights.copy()
V_changed = V.copy()
V_changed[3] = [5.0, -5.0]                                                  # change what "cat" sends
one_hop_changed = attention(Q, K, V_changed, mask=chain)
changed_1 = np.abs(one_hop_changed - one_hop).max(axis=1)
print("  change in each output after changing v_cat, one round:")
print("     " + "  ".join(f"{t} {c:.3f}" for t, c in zip(tokens, changed_1)))
lesson.check("removed edges get weight exactly 0", np.all(chain_weights[~chain] == 0))
lesson.check("after one round only cat's neighbours (a, cat) feel the change",
             np.all(changed_1[:2] == 0) and np.all(changed_1[2:] > 0))

# %% [markdown]
# A token's output depends only on its neighbours: "I" and "saw" have no edge from "cat".

# %% [markdown]
# ## Two rounds: two hops
#
# Can "cat" reach further? Apply attention a second time, on the first round's outputs. Now information
# travels two hops along the chain.

# %%
lesson.step("Two rounds: two hops")
two_hops = attention(Q, K, attention(Q, K, V, mask=chain), mask=chain)
two_hops_changed = attention(Q, K, attention(Q, K, V_changed, mask=chain), mask=chain)
changed_2 = np.abs(two_hops_changed - two_hops).max(axis=1)
print("  change in each output after changing v_cat, two rounds:")
print("     " + "  ".join(f"{t} {c:.3f}" for t, c in zip(tokens, changed_2)))
lesson.check("after two rounds 'saw' (two hops away) feels it too, 'I' (three hops) does not",
             changed_2[1] > 0 and changed_2[0] == 0)

# %% [markdown]
# Depth is what lets far tokens reach each other when the edges are restricted: one hop per round.

# %% [markdown]
# ## Pictures
#
# - Left: the weights $W$ of the four-token example.
# - Middle: the message-passing experiment on the chain I - saw - a - cat. Each arrow $j \to i$ is an
#   allowed edge, as thick as its weight $W_{ij}$. Each token is coloured by how much its output moved
#   when $v_{cat}$ changed: after one round (top) and two rounds (bottom).
# - Right: the soft lookup sharpening into a hard one as $s$ grows.

# %%
lesson.step("Pictures")
lesson.figure(plots.attention_by_hand(weights, tokens, chain, chain_weights, changed_1, changed_2,
                                      sharpness, lookup_weight, lookup_error, values[2]),
              "05_attention_by_hand")

# %%
lesson.done()
