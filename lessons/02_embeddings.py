# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 02: token embeddings, and why their backward is a scatter-add
#
# An embedding layer is a table $W$ of shape `[vocab_size, d_model]`: one learned vector per token id.
# Its forward looks up row `idx[t]` for every position $t$.
#
# - The lookup is a one-hot row vector times $W$.
# - So its backward is known: the gradient of row $v$ is the **sum** of the output gradients of every
#   position whose token is $v$.
# - A token that occurs three times receives three contributions, added together.
#
# We check both facts against the library's `Embedding`, see how a plain fancy-index update silently
# loses the repeats, and confirm the backward with finite differences.
#
# Run: `python lessons/02_embeddings.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson02 as plots

from tinytransformer import Embedding, backend, check_layer
from tinytransformer.tokenizers import CharTokenizer

lesson = Lesson("02 Embeddings", steps=8)
# With --exercise, your embedding_backward (lessons/exercises/) runs in place of the library's.
Embedding.backward = lesson.exercise("embedding_backward", Embedding.backward)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## The table
#
# What does an embedding layer hold? Take a toy vocabulary: the characters of "banana bandana".
#
# `Embedding(vocab_size, d_model)` holds $W$ of shape `[vocab_size, d_model]`: one row of `d_model`
# numbers per token id, random at first and learned in training.

# %%
lesson.step("The table")
tokenizer = CharTokenizer.from_text("banana bandana")
V, d_model = tokenizer.vocab_size, 3
backend.seed(0)
embedding = Embedding(V, d_model)
W = embedding.weight.data
idx = tokenizer.encode("banana")[None, :]                          # [B=1, T=6]
print(f"  vocabulary {tokenizer.chars!r} -> ids 0..{V - 1};  d_model = {d_model}")
for v in range(V):
    print(f"  W[{v}] ({tokenizer.chars[v]!r}) = {W[v]}")
print(f"  'banana' -> idx = {idx.tolist()}")
lesson.check("the table has one row per token", W.shape == (V, d_model))

# %% [markdown]
# The word "banana" repeats tokens: 'a' three times, 'n' twice. The repeats are what the backward must
# get right.

# %% [markdown]
# ## Lookup = one-hot times the table
#
# Write token $v$ as the one-hot row vector $e_v$: a 1 in column $v$, 0 elsewhere. Then $e_v W$ picks
# out row $v$ of $W$. So the lookup is a matrix product:
#
# $$\mathrm{embedding}(\mathrm{idx}) = \mathrm{onehot}(\mathrm{idx})\, W, \qquad
# [B, T, V] \times [V, d] \to [B, T, d]$$
#
# The library does the lookup instead: the same numbers, without the $V \times d$ multiplications by 0
# per position.

# %%
lesson.step("Lookup = one-hot times the table")
y = embedding(idx)                                                   # [1, 6, d_model]
onehot = np.eye(V)[idx]                                              # [1, 6, V]
print(f"  onehot(idx)[0] =\n{onehot[0]}")
print(f"  embedding(idx)[0] =\n{y[0]}")
lesson.check("embedding(idx) == onehot(idx) @ W, exactly", np.array_equal(y, onehot @ W))
lesson.check("equal tokens get equal vectors (positions 1, 3, 5 are all 'a')",
             np.array_equal(y[0, 1], y[0, 3]) and np.array_equal(y[0, 1], y[0, 5]))

# %% [markdown]
# ## Backward: a scatter-add
#
# For a product $Y = XW$ the weight gradient is $dW = X^\top dY$. With $X = \mathrm{onehot}(\mathrm{idx})$,
# row $v$ of $X^\top dY$ sums $dY_t$ over the positions where the token is $v$:
#
# $$dW_v = \sum_{t:\ \mathrm{idx}_t = v} dY_t$$
#
# Each output gradient is **added** into the row it came from. Below, a random upstream gradient $dY$
# arrives, and the library's backward fills `embedding.weight.grad`.

# %%
lesson.step("Backward: a scatter-add")
rng = np.random.default_rng(1)
dy = rng.standard_normal(y.shape)                                    # [1, 6, d_model]
embedding.zero_grad()
dx = embedding.backward(dy)
dW = embedding.weight.grad.copy()
for t in range(idx.shape[1]):
    print(f"  dY[{t}] ({tokenizer.chars[idx[0, t]]!r}) = {dy[0, t]}")
print()
by_hand = np.zeros((V, d_model))
for t in range(idx.shape[1]):                                        # the sum, one position at a time
    by_hand[idx[0, t]] += dy[0, t]
for v in range(V):
    sources = [t for t in range(idx.shape[1]) if idx[0, t] == v]
    print(f"  dW[{v}] ({tokenizer.chars[v]!r}) = {dW[v]}   from positions {sources}")
lesson.check("dW equals the sum over positions computed by hand", np.allclose(dW, by_hand, atol=1e-14))
lesson.check("dW == onehot(idx)ᵀ @ dY (the weight gradient of the matrix product)",
             np.allclose(dW, onehot[0].T @ dy[0], atol=1e-14))
a = tokenizer.stoi["a"]
lesson.check("'a' (3 occurrences) gets dY[1] + dY[3] + dY[5]",
             np.allclose(dW[a], dy[0, 1] + dy[0, 3] + dy[0, 5], atol=1e-14))
unused = [v for v in range(V) if v not in idx]
lesson.check(f"tokens that do not occur ({', '.join(repr(tokenizer.chars[v]) for v in unused)}) get 0",
             np.all(dW[unused] == 0))
lesson.check("there is no gradient for the integer ids (backward returns None)", dx is None)

# %% [markdown]
# ## The trap: a fancy-index update loses the repeats
#
# The tempting one-liner is `dW[idx] += dY`. Does it accumulate?
#
# No. NumPy evaluates it as `dW[idx] = dW[idx] + dY`: it reads every row once, adds, and writes back.
# For a repeated id one of the writes wins (in practice the last; NumPy does not promise which), and the
# other contributions vanish.

# %%
lesson.step("The trap: a fancy-index update loses the repeats")
naive = np.zeros((V, d_model))
naive[idx[0]] += dy[0]                                               # WRONG for repeated ids
n = tokenizer.stoi["n"]
b_ = tokenizer.stoi["b"]
print(f"  naive dW['a'] = {naive[a]}   correct = {dW[a]}")
print(f"  naive dW['n'] = {naive[n]}   correct = {dW[n]}")
print(f"  naive dW['b'] = {naive[b_]}   correct = {dW[b_]}")
lesson.check("the naive update keeps just one of the three 'a' gradients",
             any(np.array_equal(naive[a], dy[0, t]) for t in (1, 3, 5)))
lesson.check("so it is wrong for the repeated tokens 'a' and 'n'",
             not np.allclose(naive[a], dW[a]) and not np.allclose(naive[n], dW[n]))
lesson.check("and right only for 'b', which occurs once", np.allclose(naive[b_], dW[b_]))

# %% [markdown]
# `np.add.at` (NumPy) and `cupyx.scatter_add` (CuPy) do accumulate. The next step shows how the library
# does it on NumPy without `np.add.at`, which works one element at a time.

# %% [markdown]
# ## Sort, then sum each run
#
# The library's `backend.scatter_add_sorted`:
#
# 1. order the rows of $dY$ by token id, so that each token's rows form one run;
# 2. sum every run at once with `np.add.reduceat`;
# 3. add one sum per distinct token into $dW$.
#
# The same sums, several times faster than `np.add.at`.

# %%
lesson.step("Sort, then sum each run")
order = np.argsort(idx[0], kind="stable")                            # positions grouped by token id
sorted_ids = idx[0][order]
run_starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])   # where each id's run begins
run_sums = np.add.reduceat(dy[0][order], run_starts, axis=0)        # [distinct ids, d_model]: one sum per run
print(f"  sorted by id: positions {order.tolist()}, ids {sorted_ids.tolist()}, runs start at {run_starts.tolist()}")
for start, total in zip(run_starts, run_sums):
    print(f"    id {sorted_ids[start]} ({tokenizer.chars[sorted_ids[start]]!r}): run sum {total}")
reference = np.zeros((V, d_model))
np.add.at(reference, idx[0], dy[0])                                  # the one-element-at-a-time reference
lesson.check("one sum per run, added at the run's id, is the library's dW (and np.add.at's)",
             np.allclose(dW[sorted_ids[run_starts]], run_sums, atol=1e-14)
             and np.allclose(dW, reference, atol=1e-14))

# %% [markdown]
# ## Across a batch
#
# Do repeats in different rows of a batch accumulate too? They must: `Embedding` flattens `[B, T]` into
# one list of positions, so a token's gradient sums over every $(b, t)$ where it occurs.
#
# And across calls: `backward` adds into `.grad`, never overwrites it. Two backwards without `zero_grad`
# in between must give the sum of the two (gradient accumulation, and weight tying in lesson 12, rely on it).

# %%
lesson.step("Across a batch")
batch = np.stack([tokenizer.encode(w) for w in ("banana", "bandan", "nab ab")])   # [B=3, T=6]
embedding.zero_grad()
embedding(batch)
dy_batch = rng.standard_normal((*batch.shape, d_model))
embedding.backward(dy_batch)
expected = np.zeros((V, d_model))
for b in range(batch.shape[0]):
    for t in range(batch.shape[1]):
        expected[batch[b, t]] += dy_batch[b, t]
counts = np.bincount(batch.reshape(-1), minlength=V)
print("  occurrences in the batch: " + ", ".join(f"{tokenizer.chars[v]!r} x{counts[v]}" for v in range(V)))
lesson.check("batch gradient = sum over all (b, t) with that token", np.allclose(embedding.weight.grad,
                                                                               expected, atol=1e-14))
embedding(batch)                                                     # the same batch again,
embedding.backward(dy_batch)                                         # no zero_grad in between
lesson.check("two backwards in a row add up: twice the batch gradient (+=, not =)",
             np.allclose(embedding.weight.grad, 2 * expected, atol=1e-14))

# %% [markdown]
# ## Checked by finite differences
#
# The proof that the backward is right. `check_layer` nudges every entry of $W$ by $\pm h$, measures the
# change of $f = \sum y \odot g$, and compares it with `backward(g)`:
#
# $$\frac{\partial f}{\partial W_{ij}} \approx \frac{f(W_{ij} + h) - f(W_{ij} - h)}{2h}$$
#
# In float64 a correct backward agrees to about $10^{-10}$.

# %%
lesson.step("Checked by finite differences")
errors = check_layer(embedding, {"idx": batch})
print(f"  relative error of dW against finite differences: {errors['weight']:.1e}")
lesson.check("Embedding's backward matches finite differences to 1e-8", errors["weight"] < 1e-8,
             f"{errors['weight']:.1e}")

# %% [markdown]
# ## Picture: where the gradient rows come from
#
# Left: the upstream gradient $dY$, one row per position of "banana". Right: $dW$, one row per token.

# %%
lesson.step("Picture: where the gradient rows come from")
embedding.zero_grad()
embedding(idx)
embedding.backward(dy)
lesson.figure(plots.gradient_rows(dy[0], embedding.weight.grad, idx[0], tokenizer.chars), "02_embedding_gradient")

# %% [markdown]
# Row 'a' on the right is the sum of rows 1, 3 and 5 on the left; row 'n' of rows 2 and 4. Rows of
# tokens that are not in the input stay 0.

# %%
lesson.done()
