# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 13: encoder, decoder, encoder-decoder: three Transformer families, three attention patterns
#
# The blocks are the same. What differs is **which positions each query may attend to**:
#
# - **encoder-only** (BERT-like, `EncoderClassifier`): every position sees every real token, both ways;
#   padding is masked out.
# - **decoder-only** (GPT): position $t$ sees positions $0 \ldots t$ (the causal mask).
# - **encoder-decoder** (`Seq2Seq`, the 2017 paper): the encoder reads the source bidirectionally; the
#   decoder reads the target causally and, in each block, cross-attends to the encoder's output (the
#   "memory").
#
# We build one small model of each family, read their attention weights, and check what each pattern
# promises: who can influence whom.
#
# Run: `python lessons/13_encoder_decoder_families.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson13 as plots

from tinytransformer import backend
from tinytransformer.models import (GPT, EncoderClassifier, EncoderConfig, GPTConfig, Seq2Seq,
                                    Seq2SeqConfig)

lesson = Lesson("13 Encoder, decoder, encoder-decoder", steps=6)

PAD = 0
VOCAB, D, N_HEAD, N_LAYER = 12, 32, 4, 2


def ids(rows):
    return backend.asarray(np.array(rows, dtype=np.int64))


def max_diff(a, b) -> float:
    return float(np.abs(backend.to_numpy(a) - backend.to_numpy(b)).max())


# float64 makes "does not depend" an exact statement: an unchanged output is unchanged to the last bit, and
# a changed one differs by far more than rounding.
backend.use("numpy", dtype="float64")

# %% [markdown]
# ## Encoder: bidirectional attention, padding masked
#
# Which keys may an encoder's query use? A batch of two sequences of length $T = 6$: the second has 3 real
# tokens and 3 PAD tokens (id 0).
#
# The encoder's self-attention mask is built from the padding **alone**: query $i$ may attend to key $j$
# whenever $j$ is a real token, whether $j$ comes before or after $i$. So we expect weights of shape
# `[B, h, T, T]` with:
#
# - zero columns at the padded keys;
# - no triangle: weight above the diagonal too.

# %%
lesson.step("Encoder: bidirectional attention, padding masked")
encoder = EncoderClassifier(EncoderConfig(vocab_size=VOCAB, n_classes=3, block_size=8, n_layer=N_LAYER,
                                          n_head=N_HEAD, n_embd=D, pad_id=PAD, seed=0))
src = ids([[5, 3, 7, 2, 9, 4],
           [6, 8, 2, PAD, PAD, PAD]])
logits, _ = encoder(src)
enc_weights = backend.to_numpy(encoder.blocks[0].attn.sublayer.weights)     # [B, h, T, T]
print(f"  encoder attention weights: {enc_weights.shape} = [B, h, T_q, T_k]; logits {tuple(logits.shape)}")
print("  sequence 2, head 0 (rows: queries, columns: keys):\n"
      + "\n".join("    " + " ".join(f"{w:.2f}" for w in row) for row in enc_weights[1, 0]))
lesson.check("no weight on padded keys (columns 3..5 of sequence 2 are exactly 0)",
             bool((enc_weights[1, :, :, 3:] == 0).all()))
lesson.check("every row sums to 1", np.allclose(enc_weights.sum(-1), 1.0))
lesson.check("queries attend to later keys too (above the diagonal is not 0)",
             bool((enc_weights[0, :, 0, 1:] > 0).all()))

# %% [markdown]
# ## Encoder: information flows both ways, padding is invisible
#
# What does that mask promise about the outputs? Two things to check on the encoder's hidden states and
# logits:
#
# - the **first** position depends on the **last** token: change the last token of sequence 1, and
#   position 0's hidden state must move;
# - padding is invisible: append more PAD tokens, and the class logits must not move at all.

# %%
lesson.step("Encoder: information flows both ways, padding is invisible")
h = backend.to_numpy(encoder.encode(src))
changed = src.copy()
changed[0, 5] = 11                                                  # change the LAST token of sequence 1
h_changed = backend.to_numpy(encoder.encode(changed))
first_moved = float(np.abs(h - h_changed)[0, 0].max())                  # position 0 of sequence 1
print(f"  changing the last token of sequence 1 moves position 0's hidden state by {first_moved:.2e}")
lesson.check("the first position depends on the last token (information flows both ways)",
             first_moved > 1e-6)
longer = ids([[5, 3, 7, 2, 9, 4, PAD, PAD],
              [6, 8, 2, PAD, PAD, PAD, PAD, PAD]])
logits_longer, _ = encoder(longer)
print(f"  two more PAD tokens per sequence: the class logits change by "
      f"{max_diff(logits, logits_longer):.1e}")
lesson.check("padding is invisible: appending PAD tokens leaves the logits unchanged (to 1e-12)",
             max_diff(logits, logits_longer) < 1e-12)

# %% [markdown]
# ## Decoder (GPT): causal attention
#
# A GPT predicts token $t + 1$ from tokens $0 \ldots t$, and it trains on every position at once. That is
# only honest if position $t$ cannot see the tokens after it.
#
# The causal mask allows key $j$ for query $t$ only when $j \le t$: the weights are lower-triangular. The
# consequence to check, at $t = 2$:
#
# - the logits at position $t$ do **not** change when any later token changes;
# - they **do** change when an earlier one does.

# %%
lesson.step("Decoder (GPT): causal attention")
gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=8, n_layer=N_LAYER, n_head=N_HEAD, n_embd=D, seed=0))
tokens = ids([[5, 3, 7, 2, 9, 4]])
gpt_logits, _ = gpt(tokens)                                                  # [1, T, vocab]
gpt_weights = backend.to_numpy(gpt.blocks[0].self_attn.sublayer.weights)     # [1, h, T, T]
print(f"  GPT attention weights {gpt_weights.shape}; head 0:\n"
      + "\n".join("    " + " ".join(f"{w:.2f}" for w in row) for row in gpt_weights[0, 0]))
lesson.check("above the diagonal every weight is exactly 0",
             bool((np.triu(gpt_weights[0], k=1) == 0).all()))
t = 2
later = tokens.copy()
later[0, t + 1:] = 1
earlier = tokens.copy()
earlier[0, 0] = 11
later_logits, _ = gpt(later)
earlier_logits, _ = gpt(earlier)
moved_by_later = max_diff(gpt_logits[:, :t + 1], later_logits[:, :t + 1])
moved_by_earlier = max_diff(gpt_logits[:, t], earlier_logits[:, t])
print(f"  change tokens {t + 1}..5: logits at positions 0..{t} move by {moved_by_later:.1e}")
print(f"  change token 0:     logits at position {t} move by {moved_by_earlier:.1e}")
lesson.check(f"positions 0..{t} do not depend on later tokens", moved_by_later < 1e-12)
lesson.check(f"position {t} depends on token 0", moved_by_earlier > 1e-6)

# %% [markdown]
# ## Encoder-decoder: cross-attention
#
# How does the decoder read the source? In each decoder block, after its causal self-attention,
# **cross-attention** takes its queries and its keys from two different places:
#
# - $Q = y W_q$ from the decoder's states $y$ `[B, T_tgt, d]`;
# - $K = m W_k$ and $V = m W_v$ from the encoder's output $m$ `[B, T_src, d]`: the **memory**, computed
#   once per source.
#
# So the scores $QK^\top/\sqrt{d_k}$ are `[B, h, T_tgt, T_src]`: one row per target position, one column
# per source token.
#
# The mask is the source's padding mask only. No causality is needed: the whole source is given.

# %%
lesson.step("Encoder-decoder: cross-attention")
s2s = Seq2Seq(Seq2SeqConfig(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, block_size=8,
                            n_encoder_layer=N_LAYER, n_decoder_layer=N_LAYER, n_head=N_HEAD, n_embd=D,
                            pad_id=PAD, seed=0))
source = ids([[5, 3, 7, 2, 9],
              [6, 8, 2, 4, PAD]])                              # [B, T_src = 5]
target_in = ids([[1, 4, 9, 2],
                 [1, 7, 7, 3]])                                 # [B, T_tgt = 4], starting with BOS = 1
memory = s2s.encode(source)                                     # [B, T_src, d]
s2s_logits = s2s.decode(memory, source, target_in)              # [B, T_tgt, vocab]
cross = s2s.decoder_blocks[0].cross_attn.sublayer               # the MultiHeadAttention inside
q, k = cross.attention.q, cross.attention.k                     # kept by the forward for backward
cross_weights = backend.to_numpy(cross.weights)                 # [B, h, T_tgt, T_src]
self_weights = backend.to_numpy(s2s.decoder_blocks[0].self_attn.sublayer.weights)
print(f"  memory {tuple(memory.shape)};  Q {tuple(q.shape)} from the decoder;  "
      f"K {tuple(k.shape)} from the memory")
print(f"  cross-attention weights {cross_weights.shape} = [B, h, T_tgt, T_src]")
B_, T_tgt, T_src = 2, 4, 5
lesson.check("cross-attention weights have shape [B, h, T_tgt, T_src]",
             cross_weights.shape == (B_, N_HEAD, T_tgt, T_src))
lesson.check("queries come from the decoder (T_tgt rows), keys from the memory (T_src rows)",
             tuple(q.shape) == (B_, N_HEAD, T_tgt, D // N_HEAD)
             and tuple(k.shape) == (B_, N_HEAD, T_src, D // N_HEAD))
lesson.check("no cross-attention to the padded source token", bool((cross_weights[1, :, :, 4] == 0).all()))
lesson.check("the decoder's own self-attention is causal", bool((np.triu(self_weights, k=1) == 0).all()))

# %% [markdown]
# ## Who influences whom in an encoder-decoder
#
# Two promises to check on the logits:
#
# - **causal in the target**: the output at position $t$ does not depend on target tokens after $t$;
# - **full view of the source**: the output at every position $t$ depends on every (real) source token,
#   through the memory that cross-attention reads.

# %%
lesson.step("Who influences whom in an encoder-decoder")
later_ok = True
for t in range(T_tgt - 1):
    changed = target_in.copy()
    changed[:, t + 1:] = 11
    moved = max_diff(s2s_logits[:, :t + 1], s2s(source, changed)[0][:, :t + 1])
    later_ok &= moved < 1e-12
    print(f"  change target tokens {t + 1}..{T_tgt - 1}: outputs 0..{t} move by {moved:.1e}")
lesson.check("decoder output at t does not depend on later targets (every t)", later_ok)
influence = np.zeros((T_tgt, T_src))                    # how much each source token moves each output
for s in range(T_src):
    changed = source.copy()
    changed[0, s] = 11 if int(source[0, s]) != 11 else 10
    influence[:, s] = np.abs(backend.to_numpy(s2s(changed, target_in)[0] - s2s_logits))[0].max(axis=-1)
print("  max change of output t (rows) when source token s (columns) changes, sequence 1:")
print("\n".join("    " + " ".join(f"{v:.1e}" for v in row) for row in influence))
lesson.check("every output position depends on every source token", bool((influence > 1e-6).all()),
             f"smallest effect {influence.min():.1e}")

# %% [markdown]
# The effects of the source are small, because untrained weights are small (std 0.02). But they are about
# $10^{11}$ times float64 rounding, where the causal checks above found exactly 0.

# %% [markdown]
# ## Picture: three attention patterns
#
# The three families side by side: the weights of layer 1, head 0, for the sequences above (the padded
# one, for the encoder and the cross-attention).

# %%
lesson.step("Picture: three attention patterns")
lesson.figure(plots.three_attention_patterns(
    enc_weights[1, 0], backend.to_numpy(src)[1], gpt_weights[0, 0], backend.to_numpy(tokens)[0],
    cross_weights[1, 0], backend.to_numpy(source)[1], backend.to_numpy(target_in)[1], pad=PAD, bos=1),
    "13_three_attention_patterns")

# %% [markdown]
# These models are untrained, so their weights are nearly uniform over the allowed positions: the pictures
# show the patterns the masks impose. Lesson 20 trains the encoder-decoder and shows the cross-attention it
# learns.

# %%
lesson.done()
