# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 07: masks, which decide which keys each query may look at
#
# A mask is a boolean table: `mask[i, j]` is True when query $i$ may attend to key $j$.
#
# - Every disallowed score is set to $-\infty$ before the softmax.
# - $\exp(-\infty) = 0$, so its weight is exactly 0, and its value contributes nothing:
#
# $$s_{ij} \to -\infty \text{ where } \mathrm{mask}_{ij} \text{ is False}, \qquad w_{ij} = \frac{\exp(s_{ij})}{\sum_k \exp(s_{ik})}$$
#
# Two masks matter in practice:
#
# - the **causal** mask of a language model: position $t$ sees positions $0..t$ only, so no position can
#   peek at the token it is trained to predict;
# - the **padding** mask of a batch of sequences of different lengths: it hides the filler tokens that
#   make the rows equally long.
#
# With the library's `MultiHeadAttention` we check that changing what is masked changes nothing, and
# that a query with nothing left to see gets zeros rather than NaN.
#
# Run: `python lessons/07_masks.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson07 as plots

from tinytransformer import MultiHeadAttention, backend, causal_mask, masked_softmax, padding_mask

lesson = Lesson("07 Masks", steps=7)
# With --exercise, your causal_mask and masked_softmax (lessons/exercises/) run in place of the library's.
causal_mask = lesson.exercise("causal_mask", causal_mask)
masked_softmax = lesson.exercise("masked_softmax", masked_softmax)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)


def show(mask, indent="     "):
    return "\n".join(indent + " ".join("1" if a else "." for a in row) for row in mask)


# %% [markdown]
# ## The causal mask
#
# Which keys may position $t$ see?
#
# A language model predicts token $t+1$ at position $t$ (lesson 01). If position $t$ could see position
# $t+1$, it would see the answer. So row $t$ allows keys $0..t$ and nothing later.
#
# `causal_mask(T)` is that table: lower-triangular, $T \times T$, diagonal included.

# %%
lesson.step("The causal mask")
T = 6
mask = causal_mask(T)                                                   # [T, T]
print(f"  causal_mask({T}), 1 = allowed:")
print(show(mask))
lesson.check("mask[i, j] is True exactly when j <= i",
             all(mask[i, j] == (j <= i) for i in range(T) for j in range(T)))
lesson.check("the mask is boolean (True = allowed), so that ~mask means 'not allowed'",
             mask.dtype == bool, f"dtype {mask.dtype}")

# %% [markdown]
# ## −∞ before the softmax gives weight exactly 0
#
# `masked_softmax(scores, mask)` sets every disallowed score to $-\infty$, then takes the softmax of
# each row.
#
# - $\exp(-\infty) = 0$: a masked weight is exactly 0.
# - The allowed weights are an ordinary softmax over the allowed scores only, so each row still sums
#   to 1.
#
# We take random scores, apply the causal mask, and redo row 2 by hand.

# %%
lesson.step("−∞ before the softmax gives weight exactly 0")
scores = rng.standard_normal((T, T))                                    # [T_q, T_k]
weights = masked_softmax(scores, mask)
print(f"  scores =\n{scores}\n  masked_softmax(scores, causal_mask) =\n{weights}")
row = 2
by_hand = np.exp(scores[row, :row + 1]) / np.exp(scores[row, :row + 1]).sum()
print(f"  row {row} by hand: softmax(scores[{row}, :{row + 1}]) = {by_hand}")
lesson.check("every masked weight is exactly 0", np.all(weights[~mask] == 0.0))
lesson.check("every row still sums to 1", np.allclose(weights.sum(axis=1), 1.0, atol=1e-15))
lesson.check(f"row {row} is the softmax of its {row + 1} allowed scores alone",
             np.allclose(weights[row, :row + 1], by_hand, atol=1e-15))
lesson.check("row 0 can see only itself: weight 1 on key 0", weights[0, 0] == 1.0)
large = masked_softmax(1000.0 * scores, mask)                           # exp(1000) overflows float64
lesson.check("scores in the thousands give no inf or NaN, rows still sum to 1 (the row max is subtracted)",
             np.all(np.isfinite(large)) and np.allclose(large.sum(axis=1), 1.0, atol=1e-15))

# %% [markdown]
# Why $-\infty$ and not a large negative number such as $-10^9$? That would also give 0 in practice.
# But $-\infty$ makes it exact, and needs no choice of "large enough".
#
# The last check: $\exp(1000)$ overflows float64. Subtracting each row's maximum first changes nothing
# (a softmax ignores a constant added to a whole row) and keeps every exponent $\le 0$.

# %% [markdown]
# ## The future cannot leak
#
# Does the mask really keep the future out of a whole attention layer?
#
# The test:
#
# 1. run the library's `MultiHeadAttention` on $T$ random token vectors, with the causal mask;
# 2. change the last two tokens (positions 4 and 5) and run it again;
# 3. do the same without a mask.
#
# With the mask, the outputs at positions $0..3$ must not move **at all**.

# %%
lesson.step("The future cannot leak")
d_model, n_head = 16, 4
print(f"  MultiHeadAttention: d_model = {d_model}, {n_head} heads; a sequence of T = {T} token vectors")
backend.seed(0)
attention = MultiHeadAttention(d_model, n_head)
x = rng.standard_normal((1, T, d_model))                                # [B=1, T, d_model]
x_new_future = x.copy()
x_new_future[:, 4:] = rng.standard_normal((1, 2, d_model))              # new tokens at positions 4, 5
out = attention(x, mask=causal_mask(T))
causal_weights = attention.weights[0].copy()                            # [n_head, T, T]
out_changed = attention(x_new_future, mask=causal_mask(T))
moved = np.abs(out_changed - out).max(axis=-1)[0]                        # [T]
unmasked = np.abs(attention(x_new_future) - attention(x)).max(axis=-1)[0]
print("  largest change of each output after changing tokens 4 and 5:")
print("     with the causal mask: " + "  ".join(f"{m:.1e}" for m in moved))
print("     without a mask:       " + "  ".join(f"{m:.1e}" for m in unmasked))
lesson.check("with the causal mask, outputs 0..3 are unchanged (exactly)", np.all(moved[:4] == 0.0))
lesson.check("outputs 4 and 5 do change (they see the new tokens)", np.all(moved[4:] > 1e-3))
lesson.check("without the mask, every output changes", np.all(unmasked > 1e-3))
lesson.check("every head puts weight 0 on the future", np.all(causal_weights[:, ~mask] == 0.0))

# %% [markdown]
# Not "almost unchanged": exactly 0.0. The weights of positions $0..3$ on positions 4 and 5 are exactly
# 0, so those values are multiplied by 0. Without the mask, every output moves.

# %% [markdown]
# ## Padding: a batch of sequences of different lengths
#
# A batch is one array `[B, T, d_model]`. So shorter sequences are filled up to $T$ with padding tokens.
# How do we make sure nobody reads them?
#
# `padding_mask(is_pad)` turns the `[B, T]` table of "is padding" into a `[B, 1, 1, T]` mask: no query,
# in no head, may look at a padded key. We expect:
#
# - padded keys get weight 0;
# - the real tokens' outputs do not depend on what the padding holds;
# - a padded sequence gives its real tokens exactly the outputs it gives alone, unpadded.

# %%
lesson.step("Padding: a batch of sequences of different lengths")
lengths = [6, 4, 2]
B = len(lengths)
is_pad = np.array([[t >= n for t in range(T)] for n in lengths])        # [B, T]
pad_mask = padding_mask(is_pad)                                          # [B, 1, 1, T]
print(f"  lengths {lengths}; is_pad =\n{is_pad.astype(int)}\n  padding_mask shape {pad_mask.shape}")
batch = rng.standard_normal((B, T, d_model))
out = attention(batch, mask=pad_mask)
pad_weights = attention.weights.copy()                                  # [B, n_head, T, T]
refilled = batch.copy()
refilled[is_pad] = 100.0 * rng.standard_normal((int(is_pad.sum()), d_model))   # different padding
out_refilled = attention(refilled, mask=pad_mask)
alone = [attention(batch[b:b + 1, :n])[0] for b, n in enumerate(lengths)]       # no padding at all
real = ~is_pad
on_pads = (pad_weights * is_pad[:, None, None, :]).sum(axis=(1, 2, 3))      # [B]: total weight on pads
print("  total weight on padded keys, per sequence (all heads, all queries): "
      + ", ".join(f"{w:.1f}" for w in on_pads))
lesson.check("padded keys get weight exactly 0 (every sequence, head and query)", np.all(on_pads == 0.0))
lesson.check("real tokens' outputs do not change when the padding changes",
             np.all(out[real] == out_refilled[real]))
lesson.check("each padded sequence gives its real tokens the same outputs as run alone",
             all(np.allclose(out[b, :n], alone[b], atol=1e-12) for b, n in enumerate(lengths)),
             f"max difference {max(np.abs(out[b, :n] - alone[b]).max() for b, n in enumerate(lengths)):.1e}")

# %% [markdown]
# New padding (other random values, 100 times larger) did not move the real tokens' outputs by a single
# bit.
#
# The outputs *at* the padded positions are meaningless. They are ignored downstream, e.g. by the loss.

# %% [markdown]
# ## Both at once
#
# Masks combine with AND: a key is allowed if every mask allows it.
#
# `causal_mask(T) & padding_mask(is_pad)` broadcasts `[T, T]` against `[B, 1, 1, T]` to `[B, 1, T, T]`.
#
# Here the padding is on the *left*: 2 pads, then 4 real tokens. That is how prompts of different
# lengths are aligned at their ends for generation.

# %%
lesson.step("Both at once")
left_pad = np.array([[True, True, False, False, False, False]])         # [B=1, T]: 2 pads on the left
both = causal_mask(T) & padding_mask(left_pad)                           # [1, 1, T, T]
print(f"  causal & padding, left padding of 2:\n{show(both[0, 0])}")
lesson.check("the combined mask has shape [B, 1, T, T]", both.shape == (1, 1, T, T))

# %% [markdown]
# Look at rows 0 and 1. Query 0 may see only key 0 (causal), and key 0 is padding. Its row has no
# allowed key at all; so has row 1's.

# %% [markdown]
# ## A row with nothing to see
#
# What is the softmax of a row where every score is $-\infty$?
#
# A plain softmax computes $0/0$ = NaN. And one NaN spreads through every later layer.
#
# `masked_softmax` gives such a row all zeros instead: that query receives nothing. We compare the two,
# then run attention under the combined mask.

# %%
lesson.step("A row with nothing to see")
out_left = attention(rng.standard_normal((1, T, d_model)), mask=both)
left_weights = attention.weights[0]                                     # [n_head, T, T]
with np.errstate(invalid="ignore"):                                      # the naive version, for contrast
    minus_inf = np.full(T, -np.inf)
    naive = np.exp(minus_inf - minus_inf.max()) / np.exp(minus_inf - minus_inf.max()).sum()
print(f"  naive softmax of a fully masked row: {naive}")
print(f"  masked_softmax, head 0, query 0 (fully masked): {left_weights[0, 0]}")
print(f"  masked_softmax, head 0, query 4:                {left_weights[0, 4]}")
empty_rows = masked_softmax(scores, both[0, 0])                        # rows 0 and 1 fully masked
lesson.check("masked_softmax on its own: fully masked rows are all zeros (no NaN), the others sum to 1",
             np.all(empty_rows[:2] == 0.0) and np.allclose(empty_rows[2:].sum(axis=1), 1.0, atol=1e-15))
lesson.check("the naive softmax of a fully masked row is NaN", np.all(np.isnan(naive)))
lesson.check("masked_softmax gives the fully masked rows 0 and 1 all zeros, no NaN",
             np.all(left_weights[:, :2] == 0.0) and not np.isnan(out_left).any())
lesson.check("the other rows sum to 1 over real, non-future keys only",
             np.allclose(left_weights[:, 2:].sum(-1), 1.0, atol=1e-15)
             and np.all(left_weights[:, 2:, :2] == 0.0))

# %% [markdown]
# ## Pictures
#
# Top: the three masks (white = allowed). Bottom: the weights of head 0 under each mask.

# %%
lesson.step("Pictures")
panels = [(f"causal_mask({T})", mask, causal_weights[0]),
          (f"padding_mask, length {lengths[1]} of {T}", np.broadcast_to(pad_mask[1, 0], (T, T)), pad_weights[1, 0]),
          ("causal & left padding", both[0, 0], left_weights[0])]
lesson.figure(plots.masks_and_weights(panels), "07_masks")

# %% [markdown]
# - Causal weights live on and below the diagonal.
# - Padded columns are 0.
# - With left padding, the first two rows are empty.

# %%
lesson.done()
