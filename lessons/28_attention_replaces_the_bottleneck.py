# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 28: attention replaces the bottleneck of the RNN encoder–decoder
#
# In 2014 a translation model was two RNNs (Sutskever et al., Cho et al.):
#
# - an **encoder** reads the source sentence, one token at a time;
# - its **last hidden state**, one vector of $d$ numbers, is all that the **decoder** gets of the source,
#   from which it writes the translation.
#
# Karpathy's CS25 talk calls that vector the *encoder bottleneck*: the whole sentence squeezed into a
# fixed size. In 2014–15 Bahdanau, Cho and Bengio let the decoder **search** the source instead: at each
# step, a softmax-weighted sum of *all* the encoder's states, a "soft search". That weighted sum is
# attention, in its first form, and it is how attention got its name.
#
# We measure both on lesson 20's task, reversing strings of letters, at several lengths:
#
# 1. with only the last state, exact match falls as the strings grow;
# 2. with the soft search, on the same budget and the same parameters, it stays high;
# 3. the weights show where the decoder looks: an anti-diagonal, the mirrored position;
# 4. the Transformer, with no recurrence at all, does it too ("attention is all you need").
#
# Run: `python lessons/28_attention_replaces_the_bottleneck.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson28 as plots

from tinytransformer import (RNN, AdamW, CrossEntropyLoss, Embedding, Linear, Module, ScaledDotProductAttention,
                             backend, clip_grad_norm, cosine_lr, numerical_gradient, relative_error)
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import Seq2Seq, Seq2SeqConfig
from tinytransformer.tasks import reversal as task  # PAD, BOS, EOS, ITOS, encode, exact_match_accuracy, ...

lesson = Lesson("28 Attention replaces the bottleneck", steps=8)
backend.use("numpy", dtype="float64")  # lessons run on the CPU, in float64 so that checks can be tight
np.set_printoptions(precision=3, suppress=True)

# Settings: --quick trains three lengths at one seed; the full run six lengths at three seeds, longer.
V = len(task.ITOS)                        # 29 tokens: PAD, BOS, EOS and the 26 letters
N_EMBD, N_HIDDEN = 16, 48                 # token vectors; the hidden state d (all the plain decoder gets)
LENGTHS = [3, 5, 8] if lesson.quick else [3, 4, 6, 8, 10, 12]
SEEDS = [0] if lesson.quick else [0, 1, 2]
ITERS, BATCH, LR = (150 if lesson.quick else 400), 64, 1e-2   # the budget of every model, at every length
N_TRAIN, N_TEST = 4000, 500               # strings per length
# The Transformer of the last step: lesson 20's quick model (2 heads instead of 4), at the longest length.
TRANSFORMER = {"n_layer": 1, "n_embd": 32, "n_head": 2, "iters": 200,
               "batch_size": 32, "lr": 5e-3, "min_lr": 5e-4, "warmup_iters": 20}


class RNNEncoderDecoder(Module):
    """Two tanh RNNs; the decoder reads the source through the last encoder state, or with
    ``attention=True`` through a soft search over every encoder state.

        encoder:  h_j = tanh(E[x_j] W_xh + h_{j−1} W_hh + b),             j = 0 .. S − 1 (x, then EOS)
        decoder:  d_t = tanh(E'[y_{t−1}] W'_xh + d_{t−1} W'_hh + b'),     d_{−1} = h_{S−1}, y_{−1} = BOS
        context:  c_t = h_{S−1}                                          (plain: the bottleneck)
                  c_t = Σ_j α_tj h_j,   α_t = softmax_j(d_t · h_j / √d)   (attention: the soft search)
        logits:   z_t = [d_t; c_t] W_out + b_out

    The soft search has no parameters, so both kinds have the same ones, and with the same seed the same
    initial weights: they differ only in where c_t comes from. Backward: the layers' own backwards in
    reverse order, wired by hand (step 4 derives it).
    """

    def __init__(self, n_embd, n_hidden, attention, seed):
        rng = backend.new_host_rng(seed)
        self.attention = attention
        self.src_embedding = Embedding(V, n_embd, rng=rng)
        self.encoder = RNN(n_embd, n_hidden, rng=rng)
        self.tgt_embedding = Embedding(V, n_embd, rng=rng)
        self.decoder = RNN(n_embd, n_hidden, rng=rng)
        self.soft_search = ScaledDotProductAttention()     # queries D, keys = values = H; no parameters
        self.head = Linear(2 * n_hidden, V, rng=rng)
        self.loss_fn = CrossEntropyLoss()
        self.H = self.D = self.C = None    # encoder states, decoder states, contexts of the last decode

    def encode(self, src):
        """src [B, S] token ids -> every encoder state H [B, S, d]."""
        return self.encoder(self.src_embedding(src))                           # [B, S, d]

    def decode(self, H, tgt_in, h0=None):
        """H [B, S, d], tgt_in [B, T] -> logits [B, T, V], starting from h0 (default: H's last state)."""
        h0 = H[:, -1] if h0 is None else h0                                     # [B, d]
        D = self.decoder(self.tgt_embedding(tgt_in), h0)                        # [B, T, d]
        if self.attention:
            C = self.soft_search(D, H, H)                                       # [B, T, S] @ [B, S, d]
        else:
            C = np.broadcast_to(H[:, -1:], D.shape)                             # [B, T, d]: one vector
        self.H, self.D, self.C = H, D, C
        return self.head(np.concatenate([D, C], axis=-1))                       # [B, T, 2d] -> [B, T, V]

    def forward(self, src, tgt_in, targets=None):
        logits = self.decode(self.encode(src), tgt_in)                          # [B, T, V]
        return logits, (self.loss_fn(logits, targets) if targets is not None else None)

    def backward(self):
        """Gradients of every parameter (accumulated), from the loss of the last forward."""
        dDC = self.head.backward(self.loss_fn.backward())                       # [B, T, 2d]
        d = self.D.shape[-1]
        dD, dC = dDC[..., :d], dDC[..., d:]                                     # the concatenation, split
        dH = np.zeros_like(self.H)                                              # [B, S, d]
        if self.attention:
            dq, dk, dv = self.soft_search.backward(dC)                          # [B, T, d], [B, S, d] × 2
            dD = dD + dq                                                        # d_t was the query,
            dH += dk + dv                                                       # every h_j a key and a value
        else:
            dH[:, -1] += dC.sum(axis=1)                                         # h_{S−1} was c_t at every t
        dx, dh0 = self.decoder.backward(dD)                                     # [B, T, n_embd], [B, d]
        self.tgt_embedding.backward(dx)
        dH[:, -1] += dh0                                                        # h_{S−1} also started it
        self.src_embedding.backward(self.encoder.backward(dH))

    def greedy(self, src, n_tokens):
        """src [B, S] -> [B, n_tokens]: start from BOS, feed back the most likely token each step."""
        H = self.encode(src)                                                    # [B, S, d], once
        h, token, out = H[:, -1], np.full((len(src), 1), task.BOS), []
        for _ in range(n_tokens):  # one decoder step at a time: it needs the token it just wrote
            logits = self.decode(H, token, h)                                   # [B, 1, V]
            h, token = self.D[:, -1], logits.argmax(axis=-1)                    # [B, d], [B, 1]
            out.append(token)
        return np.concatenate(out, axis=1)                                      # [B, n_tokens]


# %% [markdown]
# ## Strings of one length at a time
#
# Lesson 20 mixed lengths 3 to 10 in one model. Here each length $L$ gets its own strings, all of
# exactly $L$ letters, so that we can see what length does:
#
# - the encoder reads `src` = $x$ + `EOS` ($S = L + 1$ tokens);
# - the decoder is teacher-forced: it reads `tgt_in` = `BOS` + $y$ and predicts `targets` = $y$ + `EOS`,
#   where $y$ is $x$ reversed.
#
# No row needs padding. For every $L$: 4000 strings to train on and 500 held out.

# %%
lesson.step("Strings of one length at a time")
DATA = {}
for L in LENGTHS:
    strings = task.unique_random_strings(N_TRAIN + N_TEST, np.random.default_rng(L), L, L)
    DATA[L] = {"train": task.encode(strings[:N_TRAIN], L + 1), "test": task.encode(strings[N_TRAIN:], L + 1),
               "test_strings": strings[N_TRAIN:]}
    lesson.check(f"L = {L}: {N_TRAIN} strings to train on, {N_TEST} held out, none in both, none padded",
                 not set(strings[:N_TRAIN]) & set(strings[N_TRAIN:])
                 and all((a != task.PAD).all() for a in DATA[L]["train"]))
L_MAX = LENGTHS[-1]
src, tgt_in, targets = (a[:1] for a in DATA[L_MAX]["test"])                # one held-out example
for name, row in (("src", src), ("tgt_in", tgt_in), ("targets", targets)):
    print(f"  {name:<8} {' '.join(task.ITOS[i] for i in row[0])}")

# %% [markdown]
# ## One vector for the whole source
#
# The plain encoder–decoder. The encoder's states are $h_0 \ldots h_{S-1}$, `[B, S, d]` with
# $d = 48$. The decoder starts from the last one, $h_{S-1}$, and never sees the others. As in Cho et al.
# (2014), its output layer also reads that vector at every step: the context is $c_t = h_{S-1}$ for all $t$.
#
# Is $h_{S-1}$ really all the decoder gets? Replace every other encoder state by zeros: the logits
# must not change, not by one bit.

# %%
lesson.step("One vector for the whole source")
plain = RNNEncoderDecoder(N_EMBD, N_HIDDEN, attention=False, seed=0)
src, tgt_in, targets = (a[:4] for a in DATA[L_MAX]["test"])                # four held-out examples
H = plain.encode(src)                                                       # [4, S, d]
logits = plain.decode(H, tgt_in)                                            # [4, S, V]
print(f"  {plain.num_parameters():,} parameters; src {list(src.shape)} -> encoder states H {list(H.shape)} -> "
      f"decoder gets H[:, -1] {list(H[:, -1].shape)} -> logits {list(logits.shape)}")
print(f"  L = {L_MAX}: {L_MAX} letters, {L_MAX * np.log2(26):.0f} bits, must all pass through these {N_HIDDEN} "
      "numbers in (−1, 1)")
H_zeroed = H.copy()
H_zeroed[:, :-1] = 0                                                        # all but the last state
lesson.check("zeroing every encoder state but the last leaves the plain decoder's logits exactly unchanged",
             np.array_equal(plain.decode(H_zeroed, tgt_in), logits))

# %% [markdown]
# The fixed-size vector is the **bottleneck**. The longer the string, the more it must hold; and the
# first letter read (the last one to write) has the longest way through it: $L$ encoder steps, then up
# to $L$ decoder steps.

# %% [markdown]
# ## Soft search: a weighted sum of every encoder state
#
# Bahdanau et al. (2015) give the decoder, at each step $t$, its own context: a weighted sum of all the
# encoder states, with weights from a softmax of how well each one matches the decoder's state:
#
# $$e_{tj} = \frac{d_t \cdot h_j}{\sqrt{d}} \qquad \alpha_{tj} = \frac{\exp(e_{tj})}{\sum_k \exp(e_{tk})}
# \qquad c_t = \sum_j \alpha_{tj} h_j$$
#
# That is attention: the query is the decoder state $d_t$, the keys and the values are the encoder
# states. Three differences from the paper:
#
# - Bahdanau scored with a small MLP, $e_{tj} = v^\top \tanh(W s_{t-1} + U h_j)$. We use the dot product
#   of Luong et al. (2015), scaled by $1/\sqrt{d}$: the form the Transformer kept. It has no parameters,
#   it is the library's `ScaledDotProductAttention`, and its backward is lesson 11's.
# - Bahdanau searched with the previous state $s_{t-1}$ and fed $c_t$ into the RNN. We search with the
#   new state $d_t$ and give $[d_t; c_t]$ to the output layer (Luong's way), so the decoder stays the
#   library's `RNN`.
# - His encoder read in both directions; ours reads left to right.
#
# Below, the attention model built with the same seed as the plain one, and $c_t$ computed by hand,
# step by step, against the layer.

# %%
lesson.step("Soft search: a weighted sum of every encoder state")
attention_model = RNNEncoderDecoder(N_EMBD, N_HIDDEN, attention=True, seed=0)
same_start = all(np.array_equal(p.data, q.data)
                 for p, q in zip(plain.parameters(), attention_model.parameters()))
lesson.check(f"the same parameters as the plain model ({attention_model.num_parameters():,}), the same initial "
             "weights: the soft search adds none", same_start)
logits = attention_model.decode(H, tgt_in)                                  # the same H as the plain model
D = attention_model.D                                                       # [4, T, d]
by_hand = np.zeros_like(D)
for t in range(D.shape[1]):  # each decoder step searches the whole source
    e = H @ D[:, t, :, None] / np.sqrt(N_HIDDEN)                            # [4, S, 1]: d_t · h_j / √d
    alpha = np.exp(e - e.max(axis=1, keepdims=True))
    alpha /= alpha.sum(axis=1, keepdims=True)                               # [4, S, 1]: softmax over j
    by_hand[:, t] = (alpha * H).sum(axis=1)                                 # [4, d]: Σ_j α_tj h_j
print(f"  step t = 0 of example 0, α_0j over the S = {L_MAX + 1} source positions (untrained): "
      f"{attention_model.soft_search.weights[0, 0]}")
lesson.check("c_t by hand equals ScaledDotProductAttention(D, H, H) at every step, to 1e-12",
             np.abs(by_hand - attention_model.C).max() < 1e-12)
lesson.check("every row of weights sums to 1",
             np.allclose(attention_model.soft_search.weights.sum(axis=-1), 1))
moved = np.abs(attention_model.decode(H_zeroed, tgt_in) - logits).max()
lesson.check("now zeroing the other encoder states does change the logits: the decoder reads them all",
             moved > 1e-3, f"largest change {moved:.3f}")

# %% [markdown]
# Untrained, the weights are nearly uniform. Training will have to make them pick a position.

# %% [markdown]
# ## The backward, by hand
#
# Every layer has its backward; what is left is the wiring. From the loss back:
#
# 1. the output layer's backward gives the gradient of $[d_t; c_t]$: split it into $dd_t$ and $dc_t$;
# 2. plain: $h_{S-1}$ was $c_t$ at every step, so it receives $\sum_t dc_t$;
# 3. soft search: its backward turns $dc_t$ into $dq$, $dk$, $dv$. The decoder state was the query, so
#    $dq_t$ is added to $dd_t$; every encoder state was a key and a value, so $h_j$ receives $dk_j + dv_j$;
# 4. the decoder RNN's backward (through time) gives its inputs' gradient and $dh_{-1}$, the gradient of
#    its initial state: that state was $h_{S-1}$, which receives $dh_{-1}$ too;
# 5. the encoder RNN's backward, from $dh$ at every position; the embeddings' scatter-adds.
#
# Gradients that arrive at one array from two uses add up (lesson 12's weight tying): $h_{S-1}$ gets two
# shares, three with the soft search.
#
# We check it against centred finite differences in float64, for every parameter of a tiny model of
# each kind (2 strings of 3 letters, $d = 5$).

# %%
lesson.step("The backward, by hand")
tiny_batch = tuple(a[:2] for a in DATA[LENGTHS[0]]["train"])                # src, tgt_in, targets
worst = {}
for kind in (False, True):
    tiny = RNNEncoderDecoder(3, 5, attention=kind, seed=1)
    tiny.zero_grad()
    tiny(*tiny_batch)
    tiny.backward()
    errors = {name: relative_error(p.grad, numerical_gradient(lambda: float(tiny(*tiny_batch)[1]), p.data))
              for name, p in tiny.named_parameters()}
    name = "soft search" if kind else "plain"
    worst[name] = max(errors.values())
    print(f"  {name:>11}: {len(errors)} parameter tensors, {tiny.num_parameters()} numbers; worst relative "
          f"error {worst[name]:.1e} ({max(errors, key=errors.get)})")
lesson.check("the attention decoder's gradient (and the whole model's) matches finite differences: "
             "relative error ≤ 1e-7", worst["soft search"] <= 1e-7, f"{worst['soft search']:.1e}")
lesson.check("so does the plain model's", worst["plain"] <= 1e-7, f"{worst['plain']:.1e}")

# %% [markdown]
# ## Without attention, exact match falls with length
#
# Train the plain model at every length, on one budget: a fixed number of AdamW steps (lr 0.01, the
# gradient's norm clipped to 1) on batches of 64, with $d = 48$ throughout. Then decode the held-out
# strings greedily: start from `BOS`, feed back each token the model writes. A string counts only if
# all $L$ letters and the `EOS` after them are right (**exact match**, as in lesson 20).

# %%
lesson.step("Without attention, exact match falls with length")


def train_and_test(attention, L, seed):
    """Train one model on strings of L letters for ITERS steps; its greedy outputs on the held-out ones
    [N_TEST, L + 1] against the targets: (the model, exact match, correct tokens by position)."""
    src, tgt_in, targets = DATA[L]["train"]
    model = RNNEncoderDecoder(N_EMBD, N_HIDDEN, attention, seed)
    optimizer = AdamW(model.named_parameters(), lr=LR, weight_decay=0.0)
    batches = np.random.default_rng(seed)
    for _ in range(ITERS):
        ix = batches.integers(N_TRAIN, size=BATCH)
        model.zero_grad()
        model(src[ix], tgt_in[ix], targets[ix])
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)  # an RNN's gradient can explode through time
        optimizer.step()
    test_src, _, test_targets = DATA[L]["test"]
    correct = model.greedy(test_src, L + 1) == test_targets                  # [N_TEST, L + 1]
    return model, float(correct.all(axis=1).mean()), correct.mean(axis=0)


print(f"  {ITERS} steps of {BATCH} strings per model, d = {N_HIDDEN}, at L = {LENGTHS}, seed(s) {SEEDS}")
exact = {name: np.zeros((len(SEEDS), len(LENGTHS))) for name in ("plain", "attention")}
by_position = {name: np.zeros((len(SEEDS), L_MAX + 1)) for name in ("plain", "attention")}
trained = {}                                                                # the attention models, for step 7
with backend.using("float32"), one_blas_thread():  # small products: fastest in float32 on one BLAS thread
    for i, seed in enumerate(SEEDS):
        for j, L in enumerate(LENGTHS):
            _, exact["plain"][i, j], position = train_and_test(False, L, seed)
        by_position["plain"][i] = position
        print(f"  seed {seed}, plain: exact match at L = {LENGTHS}: {exact['plain'][i]}")
shortest, longest = exact["plain"][:, 0], exact["plain"][:, -1]
lesson.check(f"at L = {LENGTHS[0]} the plain model gets most strings right: exact match ≥ 0.6 (every seed)",
             (shortest >= 0.6).all(), f"lowest {shortest.min():.2f}")
lesson.check(f"at L = {L_MAX} almost none: ≤ 0.05 (every seed)", (longest <= 0.05).all(),
             f"highest {longest.max():.3f}")
first, last = by_position["plain"][:, 0].mean(), by_position["plain"][:, L_MAX - 1].mean()
print(f"  L = {L_MAX}, letter by letter: the first letter written (x_{L_MAX - 1}, read last) is right "
      f"{first:.2f} of the time, the last (x_0, read first) {last:.2f} (chance 1/26 = {1 / 26:.2f})")
lesson.check("what the bottleneck loses first is the letter read longest ago: the last letter written is right "
             "far less often than the first (by ≥ 0.3)", first - last >= 0.3, f"{first:.2f} vs {last:.2f}")

# %% [markdown]
# The same model, the same budget: only the length changed. The last state keeps the letters read last,
# and loses the early ones.

# %% [markdown]
# ## With soft search, exact match stays high
#
# The attention model, trained exactly like the plain one: the same lengths, seeds, steps, batches,
# learning rate, and the same initial weights.

# %%
lesson.step("With soft search, exact match stays high")
with backend.using("float32"), one_blas_thread():
    for i, seed in enumerate(SEEDS):
        for j, L in enumerate(LENGTHS):
            trained[seed, L], exact["attention"][i, j], position = train_and_test(True, L, seed)
        by_position["attention"][i] = position
        print(f"  seed {seed}, soft search: exact match at L = {LENGTHS}: {exact['attention'][i]}")
gap = exact["attention"][:, -1] - exact["plain"][:, -1]
lesson.check(f"at L = {L_MAX} the soft search still gets ≥ 0.9 of the strings right (every seed)",
             (exact["attention"][:, -1] >= 0.9).all(), f"lowest {exact['attention'][:, -1].min():.3f}")
lesson.check(f"at L = {L_MAX} it beats the last-state-only model by more than 0.8 (every seed)",
             (gap > 0.8).all(), f"smallest gap {gap.min():.2f}")
lesson.figure(plots.exact_match_by_length(LENGTHS, exact, by_position, ITERS), "28_exact_match_by_length")

# %% [markdown]
# The soft search did not make the decoder bigger. It changed what reaches it: each letter of the
# source is now one step away from every output, as lesson 03 measured for attention against an RNN.

# %% [markdown]
# ## Where the decoder looks
#
# Reversal has a right answer for the search: to write output $t$ (the letter $x_{L-1-t}$), look at
# source position $L-1-t$, the **mirrored** position. The weights should form an anti-diagonal.
#
# We run the trained attention model (the first seed, $L$ = the longest) teacher-forced on its own
# greedy outputs, as in lesson 20, and read $\alpha_{tj}$: one held-out string as a heat map, then all 500.
# For each row $t$ of a letter we find the position $j$ of its largest weight, and how far it is from the
# mirror: $j - (L-1-t)$.

# %%
lesson.step("Where the decoder looks")
model = trained[SEEDS[0], L_MAX]
test_src, _, test_targets = DATA[L_MAX]["test"]
output = model.greedy(test_src, L_MAX + 1)                                  # [N_TEST, L + 1]
own_tgt_in = np.concatenate([np.full((N_TEST, 1), task.BOS), output[:, :-1]], axis=1)
model(test_src, own_tgt_in)
weights = model.soft_search.weights                                         # [N_TEST, L + 1, L + 1]
rows = np.arange(L_MAX)                                                     # the letters' rows (not EOS's)
mirror = L_MAX - 1 - rows                                                   # [L]
offset = weights[:, rows].argmax(axis=-1) - mirror                          # [N_TEST, L]: 0 on the mirror
shift = 0 if (offset == 0).mean() >= (offset == 1).mean() else 1            # which anti-diagonal it uses
hits = offset == shift                                                      # [N_TEST, L]
on_diagonal = weights[:, rows, mirror + shift]                              # [N_TEST, L]
example = DATA[L_MAX]["test_strings"][0]
print(f"  largest weight at j − (L − 1 − t) = −1, 0, +1, +2: "
      f"{', '.join(f'{(offset == k).mean():.1%}' for k in (-1, 0, 1, 2))} of the rows of all {N_TEST} strings")
where = "the mirrored position" if shift == 0 else "one after the mirrored position, L − t"
print(f"  so this model looks at {where}; mean weight there {on_diagonal.mean():.2f} "
      f"(spread evenly: 1/(L + 1) = {1 / (L_MAX + 1):.2f})")
print(f"  {example!r} -> {task.to_text(task.until_eos(output[0].tolist()))!r}; weight there, row by row: "
      f"{on_diagonal[0]}")
lesson.check("the largest weight is on one anti-diagonal (the mirrored position, or one after it) in at "
             "least 80% of the rows, over all held-out strings", hits.mean() >= 0.8, f"{hits.mean():.1%}")
lesson.check(f"and in at least 80% of the rows for {example!r}", hits[0].mean() >= 0.8, f"{hits[0].sum()}/{L_MAX}")
lesson.check("the mean weight on that anti-diagonal is more than 3 times an even spread",
             on_diagonal.mean() > 3 / (L_MAX + 1), f"{on_diagonal.mean():.2f} > {3 / (L_MAX + 1):.2f}")
lesson.figure(plots.soft_search_weights(weights[0], [task.ITOS[i] for i in test_src[0]],
                                        [task.ITOS[i] for i in output[0]], shift), "28_soft_search_weights")

# %% [markdown]
# Nobody told the model where to look: the alignment is learned, from the loss alone. Bahdanau's paper
# showed the same pictures for English and French, where the alignment is mostly diagonal, and bends
# where word order differs.
#
# Most seeds look exactly at the mirrored position. Some (two of the eight we tried at $L = 12$) look one
# position later, at $h_{L-t}$, and are as accurate. A left-to-right RNN's state after letter $j + 1$
# still holds letter $j$; and $h_{L-t}$ is easy to find by content, since its newest letter, $x_{L-t}$,
# is the one the decoder has just written and now reads. The weight on the neighbours has the same
# cause: each $h_j$ also carries the letters before $j$.

# %% [markdown]
# ## Attention is all you need
#
# If the soft search does the work, is the recurrence needed at all? Vaswani et al. (2017) dropped it,
# and convolutions too: the Transformer. Its encoder is self-attention over the source, its decoder
# causal self-attention plus the soft search over the encoder (cross-attention), and the order of the
# tokens comes from position vectors (lesson 04), since nothing reads them one at a time anymore.
#
# The library's `Seq2Seq`, as in lesson 20 (one block each side, $d_{model} = 32$, 2 heads, learned
# positions), on the longest strings, with lesson 20's loop and its exact match.

# %%
lesson.step("Attention is all you need")
settings = TRANSFORMER
(src, tgt_in, targets), test = DATA[L_MAX]["train"], DATA[L_MAX]["test"]
config = Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=V, block_size=L_MAX + 1,
                       n_encoder_layer=settings["n_layer"], n_decoder_layer=settings["n_layer"],
                       n_head=settings["n_head"], n_embd=settings["n_embd"], positional="learned", pad_id=task.PAD,
                       seed=SEEDS[0])
layer_kinds = sorted({type(m).__name__ for _, m in Seq2Seq(config).named_modules()} - {"Seq2Seq"})
print(f"  the Transformer's layers: {', '.join(layer_kinds)}")
lesson.check("no recurrent layer among them, no convolution; ScaledDotProductAttention, step 3's soft search, is",
             not any(kind == "RNN" or "Conv" in kind for kind in layer_kinds)
             and "ScaledDotProductAttention" in layer_kinds)
with backend.using("float32"), one_blas_thread():
    transformer = Seq2Seq(config)
    optimizer = AdamW(transformer.named_parameters(), lr=settings["lr"], weight_decay=0.01)
    batches = np.random.default_rng(SEEDS[0])
    for it in range(settings["iters"]):
        ix = batches.integers(N_TRAIN, size=settings["batch_size"])
        lr = cosine_lr(it, lr=settings["lr"], min_lr=settings["min_lr"], warmup_iters=settings["warmup_iters"],
                       lr_decay_iters=settings["iters"])
        transformer(src[ix], tgt_in[ix], targets[ix])
        transformer.zero_grad()
        transformer.backward()
        clip_grad_norm(transformer.parameters(), 1.0)
        optimizer.step(lr=lr)
    transformer_exact, _ = task.exact_match_accuracy(transformer, DATA[L_MAX]["test_strings"], test)
rnn_steps = model.encoder.steps + model.decoder.steps                       # the last forward of step 7
print(f"  {transformer.num_parameters():,} parameters, {settings['iters']} steps of {settings['batch_size']}: "
      f"held-out exact match at L = {L_MAX}: {transformer_exact:.3f}  (soft search: {exact['attention'][0, -1]:.3f}, "
      f"last state only: {exact['plain'][0, -1]:.3f}, seed {SEEDS[0]})")
print(f"  a training forward at L = {L_MAX}: the RNNs take {rnn_steps} steps one after another; the Transformer "
      f"{2 * settings['n_layer']} blocks, each over every position at once")
lesson.check(f"the Transformer, with no recurrence, gets ≥ 0.9 of the strings of {L_MAX} letters right",
             transformer_exact >= 0.9, f"{transformer_exact:.3f}")

# %% [markdown]
# The history, as the talk tells it:
#
# - **2014**, sequence to sequence: two RNNs and one vector between them, the bottleneck of step 2.
# - **2014–15**, Bahdanau et al.: the decoder searches every encoder state. Bahdanau (in an email
#   Karpathy quotes) took the idea from translation exercises at school, his eyes going back and forth
#   between the source and what he was writing; it worked on the first try. He called it *RNNSearch*;
#   Yoshua Bengio suggested the name **attention** in the final pass over the paper.
# - **2017**, "Attention Is All You Need": keep the attention, drop the recurrence. Every position is
#   computed at once (lesson 03), and a token far back is one step away (lessons 03 and 27).

# %%
lesson.done()
