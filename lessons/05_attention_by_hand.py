# %% [markdown]
"""Lesson 05: scaled dot-product attention, computed by hand on four tokens.

out = softmax(QKᵀ/√d_k) V, one piece at a time: the scores (every query dotted with every key, divided
by √d_k), the softmax that turns each row of scores into weights that are positive and sum to 1, and the
weighted sum of the value vectors. Every number is computed with plain loops from small integers and
then checked against the library's ScaledDotProductAttention. Two ways to read the result follow:
attention as a soft lookup in a key-value store (a query that matches one key strongly retrieves that
key's value), and attention as message passing on a graph whose edge weights are the attention weights.

Run:  python lessons/05_attention_by_hand.py        (add --no-pause to run straight through)
"""

# %%
import math

import numpy as np
from _lesson import Lesson

from tinytransformer import ScaledDotProductAttention, backend

lesson = Lesson("05 Attention by hand", __doc__, steps=7)
# With --exercise, your attention_forward (lessons/exercises/) runs in place of the library's.
ScaledDotProductAttention.forward = lesson.exercise("attention_forward", ScaledDotProductAttention.forward)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

tokens = ["I", "saw", "a", "cat"]
T, d_k, d_v = 4, 4, 2

# %%
lesson.step("Queries, keys and values", f"""
    Each of the T = {T} tokens has a query q_i (what it is looking for), a key k_j (what it offers to be
    found by) and a value v_j (what it hands over when found). In a Transformer these come from the
    token vectors through three learned matrices; here we simply pick small numbers, d_k = {d_k} for
    queries and keys, d_v = {d_v} for values. The last query is all zeros: it prefers no key.""")
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
for name, M in (("Q", Q), ("K", K), ("V", V)):
    print(f"  {name} =")
    for t, row in zip(tokens, M):
        print(f"     {t:>4}: {row}")

# %%
lesson.step("Scores: S = QKᵀ / √d_k", f"""
    Score S[i, j] says how well query i matches key j: their dot product, divided by √d_k = {math.sqrt(d_k):g}
    (lesson 06 shows why). The result is a T x T table: row i is query i against every key.""")
scores = [[0.0] * T for _ in range(T)]
for i in range(T):
    for j in range(T):
        scores[i][j] = sum(Q[i, c] * K[j, c] for c in range(d_k)) / math.sqrt(d_k)
terms = " + ".join(f"{Q[0, c]:g}·{K[2, c]:g}" for c in range(d_k))
print(f"  S[0, 2] = q_0·k_2 / √{d_k} = ({terms}) / {math.sqrt(d_k):g} = {scores[0][2]:g}")
print("  S =")
for t, row in zip(tokens, scores):
    print(f"     {t:>4}: " + "  ".join(f"{s:5.2f}" for s in row))

# %%
lesson.step("Softmax: each row of scores becomes weights", """
    W[i, j] = exp(S[i, j]) / Σ_j' exp(S[i, j']). Every weight is positive, each row sums to 1, and a
    larger score gets a larger share. A row of equal scores (the all-zero query) gives equal weights
    1/T. (The library subtracts the row maximum before exp so that exp never overflows; softmax does
    not change when the same number is added to a whole row.)""")
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

# %%
lesson.step("Weighted sum of values: out = W V", """
    Output i is a blend of all the values, mixed in the proportions of row i of W:
    out_i = Σ_j W[i, j] v_j. Then the library's ScaledDotProductAttention computes all of this in three
    lines; the two must agree.""")
out = np.zeros((T, d_v))
for i in range(T):
    for j in range(T):
        out[i] += weights[i, j] * V[j]
for t, row in zip(tokens, out):
    print(f"     out[{t:>4}] = {row}")
attention = ScaledDotProductAttention()
library_out = attention(Q, K, V)
print(f"  library: softmax(QKᵀ/√d_k)V =\n{library_out}")
lesson.check("our weights equal the library's attention.weights", np.allclose(weights, attention.weights,
                                                                            atol=1e-15))
lesson.check("our outputs equal the library's output", np.allclose(out, library_out, atol=1e-15),
             f"max difference {np.abs(out - library_out).max():.1e}")
lesson.check("the all-zero query gets the plain average of the values",
             np.allclose(out[3], V.mean(axis=0), atol=1e-15))

# %%
lesson.step("Attention as a soft lookup in a key-value store", """
    A Python dict returns the value whose key equals the query, exactly. Attention returns a blend of
    all values, weighted by how well each key matches. Store four values under four orthonormal keys and
    query with key 2 itself, multiplied by a sharpness s (q = s·√d_k·k_2, so the matching score is s and
    the others 0). At s = 0 the answer is the average of all values; as s grows, the weight on key 2
    approaches 1 and the answer approaches value 2: a hard lookup is the limit of a soft one. A query
    halfway between two keys retrieves the average of their two values.""")
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
both = (16 * math.sqrt(d_store) * (keys[1] + keys[2]))[None, :]
blend = attention(both, keys, values)[0]
print(f"  query = key 1 + key 2 (s = 16): weights {attention.weights[0]}  answer {blend}")
lesson.check("a query matching keys 1 and 2 equally retrieves (value 1 + value 2) / 2",
             np.allclose(blend, (values[1] + values[2]) / 2, atol=1e-5))

# %%
lesson.step("Attention as message passing on a graph", """
    Read W as a graph: token j sends its value v_j along an edge to token i, with edge weight W[i, j];
    token i adds up what it receives. Plain self-attention is a complete graph with edges weighted by
    content. A boolean mask removes edges (lesson 07): give the library a mask that allows only a chain
    I - saw - a - cat (each token and its neighbours) and a token's output depends only on its
    neighbours. Apply attention a second time, on the first round's outputs, and information travels
    two hops: depth is what lets far tokens reach each other when the edges are restricted.""")
chain = np.array([[abs(i - j) <= 1 for j in range(T)] for i in range(T)])   # [T, T] neighbours + self
print("  allowed edges (mask):\n" + "\n".join("     " + " ".join("1" if a else "." for a in row)
                                             for row in chain))
one_hop = attention(Q, K, V, mask=chain)
chain_weights = attention.weights.copy()
V_changed = V.copy()
V_changed[3] = [5.0, -5.0]                                                  # change what "cat" sends
one_hop_changed = attention(Q, K, V_changed, mask=chain)
two_hops = attention(Q, K, attention(Q, K, V, mask=chain), mask=chain)
two_hops_changed = attention(Q, K, attention(Q, K, V_changed, mask=chain), mask=chain)
changed_1 = np.abs(one_hop_changed - one_hop).max(axis=1)
changed_2 = np.abs(two_hops_changed - two_hops).max(axis=1)
print("  change in each output after changing v_cat:")
print("     one round:  " + "  ".join(f"{t} {c:.3f}" for t, c in zip(tokens, changed_1)))
print("     two rounds: " + "  ".join(f"{t} {c:.3f}" for t, c in zip(tokens, changed_2)))
lesson.check("removed edges get weight exactly 0", np.all(chain_weights[~chain] == 0))
lesson.check("after one round only cat's neighbours (a, cat) feel the change",
             np.all(changed_1[:2] == 0) and np.all(changed_1[2:] > 0))
lesson.check("after two rounds 'saw' (two hops away) feels it too, 'I' (three hops) does not",
             changed_2[1] > 0 and changed_2[0] == 0)

# %%
lesson.step("Pictures", """
    Left: the weights W of the four-token example. Middle: the message-passing experiment, the chain
    I - saw - a - cat: each arrow j -> i is an allowed edge, as thick as its weight W[i, j]; each token
    is coloured by how much its output moved when v_cat changed, after one round (top) and two rounds
    (bottom). Right: the soft lookup sharpening into a hard one as s grows.""")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5), layout="constrained")
image = ax1.imshow(weights, cmap="viridis", vmin=0, vmax=1)
for (i, j), w in np.ndenumerate(weights):
    ax1.text(j, i, f"{w:.2f}", ha="center", va="center", color="white" if w < 0.5 else "black")
ax1.set_xticks(range(T))
ax1.set_xticklabels([f"k: {t}" for t in tokens])
ax1.set_yticks(range(T))
ax1.set_yticklabels([f"q: {t}" for t in tokens])
ax1.set_title("W = softmax(QKᵀ/√d_k): rows sum to 1")
fig.colorbar(image, ax=ax1, fraction=0.045)

moved = np.stack([changed_1, changed_2])                               # [round, token]
for row, (label, changes) in enumerate((("one round", changed_1), ("two rounds", changed_2))):
    y = 1.0 - 1.2 * row
    for i in range(T):
        for j in range(T):
            if chain[i, j] and i != j:                                  # an allowed edge j -> i
                ax2.add_patch(FancyArrowPatch((j, y), (i, y), connectionstyle="arc3,rad=0.6",  # two arcs
                                              arrowstyle="-|>", mutation_scale=10, color="tab:blue",
                                              linewidth=1 + 6 * chain_weights[i, j], alpha=0.6,
                                              shrinkA=16, shrinkB=16))
    ax2.scatter(range(T), [y] * T, s=900, c=changes, cmap="Reds", vmin=0, vmax=moved.max(),
                edgecolor="black", zorder=3)
    for i in range(T):
        dark = changes[i] > 0.6 * moved.max()
        ax2.text(i, y, tokens[i], ha="center", va="center", zorder=4, color="white" if dark else "black")
        ax2.text(i, y - 0.42, f"moved {changes[i]:.2f}", ha="center", va="center", fontsize=8)
    ax2.text(-0.75, y, label, ha="right", va="center")
ax2.text(T - 1, 1.6, "v_cat changed", ha="center", va="center")
ax2.set_xlim(-2.2, T - 0.4)
ax2.set_ylim(-0.9, 1.8)
ax2.axis("off")
ax2.set_title("chain mask: one hop per round (arrow width ∝ W[i, j])")

ax3.plot(sharpness, lookup_weight, "o-", label="weight on the matching key")
ax3.plot(sharpness, np.array(lookup_error) / np.linalg.norm(values[2]), "s-",
         label="|answer − value| / |value|")
ax3.set_xlabel("sharpness s (matching score)")
ax3.set_title("soft lookup → hard lookup")
ax3.legend()
ax3.grid(alpha=0.3)
lesson.figure(fig, "05_attention_by_hand")

lesson.done()
