# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 12: assemble the GPT, forward and backward, and count its parameters
#
# Until now `GPT` was a black box built from the layers of the earlier lessons. Here we open it: the
# cpu-preset GPT (4 blocks, 4 heads, 128 wide, context 64, 65 characters, no biases), rebuilt from the
# library's layers with the very parameter arrays of a `GPT`:
#
# - $h_0 = E[\mathrm{idx}] + P[:T]$: token embedding + position embedding;
# - $h \leftarrow h + \mathrm{Attn}(\mathrm{LN}_1(h))$, then $h \leftarrow h + \mathrm{MLP}(\mathrm{LN}_2(h))$:
#   each of the $L$ blocks (pre-norm);
# - $\mathrm{logits} = \mathrm{LN}_f(h_L)\, E^\top$: the tied output layer, the table $E$ again;
# - $\mathrm{loss}$: the mean over positions of $-\log \mathrm{softmax}(\mathrm{logits})[\text{next character}]$.
#
# What we check:
#
# - our logits and loss equal `GPT`'s to $10^{-12}$ in float64;
# - our backward, by hand through the same pieces in reverse, equals `GPT.backward` for every parameter
#   (a residual add passes its gradient to both of its inputs);
# - weight tying gives the table $E$ a gradient from each of its two uses;
# - counted by kind, two thirds of a block is its MLP, $12 \cdot L \cdot d^2$ in all; the same count,
#   on the published configurations, gives GPT-2 small's 124 M and GPT-3's 175 B: the same block,
#   more of it.
#
# Run: `python lessons/12_assemble_gpt.py` (add `--no-pause` to run straight through; `--exercise` to
# run the lesson on your own `lessons/exercises/gpt_forward.py`).

# %%
import copy
import math

import numpy as np
from _lesson import Lesson
from _plots import lesson12 as plots

from tinytransformer import backend, causal_mask
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.tokenizers import CharTokenizer
from tinytransformer.training import TrainConfig, model_config

lesson = Lesson("12 Assemble the GPT", steps=14)
backend.set_default_dtype("float64")   # every array float64: the comparisons below are to 1e-12

# Settings: --quick takes two windows of text instead of four; the model is the cpu preset either way.
B = 2 if lesson.quick else 4
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n")
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # its 65 characters


def max_diff(a, b) -> float:
    return float(np.abs(backend.to_numpy(a) - backend.to_numpy(b)).max())


def shape(a) -> str:
    return str(list(a.shape))


# %% [markdown]
# ## The model and a batch
#
# Which GPT do we open? The trainer's cpu preset (nanoGPT's "baby GPT"). `model_config(TrainConfig(), ...)`
# builds its `GPTConfig`:
#
# - `n_layer` = 4 blocks, `n_head` = 4 heads;
# - `n_embd` = $d$ = 128, `block_size` = $T$ = 64;
# - `vocab_size` = $V$ = 65 characters, `bias = False`.
#
# We build that GPT in float64, and a batch of $B$ windows of $T$ characters of Shakespeare. The targets
# are the same windows shifted by one: at each position, the next character.

# %%
lesson.step("The model and a batch")
config = model_config(TrainConfig(), vocab_size=len(SHAKESPEARE_CHARS))    # the cpu preset
model = GPT(config)
tokenizer = CharTokenizer(SHAKESPEARE_CHARS)
V, T, d, L, H = config.vocab_size, config.block_size, config.n_embd, config.n_layer, config.n_head
ids = tokenizer.encode(TEXT)
starts = [32 * b for b in range(B)]                                        # overlapping windows
idx = backend.asarray(np.stack([ids[s:s + T] for s in starts]))            # [B, T] inputs
targets = backend.asarray(np.stack([ids[s + 1:s + T + 1] for s in starts]))  # [B, T] the next characters
print(f"  config: n_layer={L} n_head={H} n_embd={d} block_size={T} vocab_size={V} bias={config.bias} "
      f"tie_weights={config.tie_weights} norm={config.norm!r}; {model.num_parameters():,} parameters, "
      f"{model.wte.weight.data.dtype}")
print(f"  idx {shape(idx)}, targets {shape(targets)}; window 0 begins {tokenizer.decode(idx[0, :24])!r}")

# %% [markdown]
# ## GPT as a black box
#
# Before opening the model, we run it once as a black box and keep what it says:
#
# - its logits and its loss;
# - the gradient of every parameter, from `model.backward()`.
#
# Everything we assemble by hand below is compared with these.

# %%
lesson.step("GPT as a black box")
gpt_logits, gpt_loss = model(idx, targets)                                 # GPT as a black box
model.zero_grad()
model.backward()
gpt_grads = {name: p.grad.copy() for name, p in model.named_parameters()}
model.zero_grad()                                                          # our backward starts from 0
print(f"  GPT says: logits {shape(gpt_logits)}, loss {float(gpt_loss):.6f} (ln V = {math.log(V):.6f}); "
      f"{len(gpt_grads)} parameter gradients kept")

# %% [markdown]
# The gradients are cleared again (`model.zero_grad()`), so that our own backward starts from 0.

# %% [markdown]
# ## Token embedding + position embedding
#
# How does a character enter the model? Through two tables:
#
# - the token embedding $E$ `[V, d]`: character $v$ becomes row $E[v]$, the same as the one-hot row
#   vector of $v$ times $E$ (lesson 02);
# - the learned position embedding $P$ `[block_size, d]`: position $t$ adds row $P[t]$.
#
# $$h_0 = E[\mathrm{idx}] + P[:T], \qquad [B, T, d]$$

# %%
lesson.step("Token embedding + position embedding")
E = model.wte.weight.data                                                  # [V, d]
P = model.wpe.weight.data                                                  # [block_size, d]
tok = model.wte(idx)                                                       # [B, T] -> [B, T, d]
x = model.wpe(tok)                                                         # [B, T, d] + [T, d]
onehot = np.eye(V)[backend.to_numpy(idx)]                                  # [B, T, V]
print(f"  E {shape(E)}, P {shape(P)}")
print(f"  idx {shape(idx)} -> E[idx] {shape(tok)} -> + P[:T] -> h₀ {shape(x)}")
lesson.check("the lookup E[idx] is the one-hot rows times E, plus P[t] at position t",
             max_diff(x, onehot @ backend.to_numpy(E) + backend.to_numpy(P)[:T]) < 1e-15)
stream = [("embed", float(np.sqrt((x ** 2).mean())))]                      # the residual stream's size

# %% [markdown]
# $h_0$ is the start of the **residual stream**: one vector per position, which every block reads from
# and adds to. We keep its size (the RMS of $h$) after each piece, to watch it later.

# %% [markdown]
# ## One block, opened: LN → attention → +, LN → MLP → +
#
# A block is two sublayers. Each reads the stream through a LayerNorm and adds its output back to it
# (pre-norm, as in GPT-2):
#
# $$a = \mathrm{Attn}(\mathrm{LN}_1(h)), \quad h \leftarrow h + a$$
#
# $$m = \mathrm{MLP}(\mathrm{LN}_2(h)), \quad h \leftarrow h + m$$
#
# - Attention splits $d$ into `n_head` heads of $d_k = d / n_{head}$, each with its own causal weights
#   `[T, T]`.
# - The MLP widens each position to $4 \cdot d$ and back.
#
# Here is block 0, one layer at a time. The other blocks are the same, with their own parameters.

# %%
lesson.step("One block, opened: LN → attention → +, LN → MLP → +")
mask = causal_mask(T)                                                      # [T, T]: position t sees 0 .. t
block = model.blocks[0]
attn, mlp = block.self_attn.sublayer, block.ffn.sublayer                   # MultiHeadAttention, FeedForward
h_in = x
ln1 = block.self_attn.ln(h_in)                                             # [B, T, d], rows of mean 0, var 1
a = attn(ln1, mask=mask)                                                   # [B, T, d]
print(f"  h {shape(h_in)} -> LN₁(h) {shape(ln1)}; causal mask {shape(mask)}")
print(f"  q, k, v          {shape(attn.attention.q)} each  ([B, n_head, T, d_k], d_k = {attn.d_k})")
print(f"  weights          {shape(attn.weights)}  (softmax(q kᵀ/√d_k), causal)")
print(f"  heads merged, W_o: a {shape(a)}")
h_mid = h_in + a                                                           # the residual add
m = mlp(block.ffn.ln(h_mid))                                               # [B, T, d]
print(f"  h + a            {shape(h_mid)}")
print(f"  MLP hidden       {shape(mlp.fc2.x)}  (4·d = {4 * d}, GELU)")
print(f"  MLP out m        {shape(m)}")
x = h_mid + m                                                              # block 0's output
print(f"  h + m            {shape(x)}")
later = np.triu(np.ones((T, T), dtype=bool), k=1)                         # key j > query i: the future
future = backend.to_numpy(attn.weights)[..., later]                        # (built here, not from mask)
lesson.check("no position attends to a later one: every weight above the diagonal is exactly 0",
             bool((future == 0).all()))
stream += [("b0 attn", float(np.sqrt((h_mid ** 2).mean()))), ("b0 mlp", float(np.sqrt((x ** 2).mean())))]
# Communication, then computation: nudge position 0's input to each sublayer (copies, so that the
# layers keep the caches of the forward above) and see which positions' outputs move.
nudge = np.zeros_like(ln1)
nudge[:, 0] = 1.0                                                          # position 0 only
attn_moved = np.abs(copy.deepcopy(attn)(ln1 + nudge, mask=mask) - a).max(axis=(0, 2))   # [T]: per position
ln2 = block.ffn.ln(h_mid)
mlp_moved = np.abs(copy.deepcopy(mlp)(ln2 + nudge) - m).max(axis=(0, 2))
print(f"  position 0's input nudged: attention moves {int((attn_moved > 0).sum())} of {T} positions' outputs, "
      f"the MLP {int((mlp_moved > 0).sum())}")
lesson.check("communication: attention carries position 0's change to every later position",
             bool((attn_moved[1:] > 0).all()))
lesson.check("computation: the MLP changes position 0's output only (every other position exactly the same)",
             mlp_moved[0] > 0 and bool((mlp_moved[1:] == 0).all()))

# %% [markdown]
# The check builds "the future" (key $j$ after query $i$) itself, with `np.triu`, instead of reading
# it from `mask`: it tests the mask rather than trusting it.
#
# The two sublayers do different jobs. Attention is **communication**: the only place where a position
# reads the others. The MLP is **computation**: the same function applied to each position alone. A
# change to one position's input shows it: attention spreads it to every later position, the MLP keeps
# it where it was.
#
# Every layer also kept what its backward will need: $q$, $k$, $v$ and the weights; the MLP's hidden
# activations; each LayerNorm's $\hat{x}$ and $1/\sigma$. The backward by hand uses them.

# %% [markdown]
# ## The other blocks
#
# Blocks 1 … $L-1$ follow the same way, each with its own parameters. How large does the stream get as
# each sublayer adds to it?

# %%
lesson.step("The other blocks")
for l in range(1, L):
    block = model.blocks[l]
    x = x + block.self_attn.sublayer(block.self_attn.ln(x), mask=mask)     # [B, T, d]
    stream.append((f"b{l} attn", float(np.sqrt((x ** 2).mean()))))
    x = x + block.ffn.sublayer(block.ffn.ln(x))                            # [B, T, d]
    stream.append((f"b{l} mlp", float(np.sqrt((x ** 2).mean()))))
print(f"  blocks 1..{L - 1}: h {shape(x)} each")
print("  RMS of the stream after each piece: " + ", ".join(f"{name} {rms:.3f}" for name, rms in stream))

# %% [markdown]
# The stream grows as each sublayer adds to it (the next step's figure plots these numbers). The final
# LayerNorm of the next step normalises it, before the output layer.

# %% [markdown]
# ## The final LayerNorm, the tied output layer, softmax and the loss
#
# From the stream to a loss, in four pieces:
#
# 1. a last LayerNorm normalises the stream: $h = \mathrm{LN}_f(h_L)$;
# 2. the output layer turns each position's $h$ `[d]` into $V$ scores, with the token table again
#    (weight tying, see the step "Weight tying: one table, two uses"): $\mathrm{logits} = h E^\top$;
# 3. softmax turns the scores into probabilities of the next character;
# 4. the loss is the mean of $-\log p(\text{the true next character})$.
#
# Our logits and loss must equal GPT's to $10^{-12}$: the same layers, the same parameters, the same
# order.

# %%
lesson.step("The final LayerNorm, the tied output layer, softmax and the loss")
h = model.ln_f(x)                                                          # [B, T, d]
logits = h @ E.T                                                           # [B, T, d] @ [d, V] -> [B, T, V]
probs = np.exp(logits - logits.max(-1, keepdims=True))
probs /= probs.sum(-1, keepdims=True)                                      # softmax over the V characters
p_next = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]   # [B, T]
loss = -np.log(p_next).mean()
print(f"  final LN h {shape(h)} -> logits = h Eᵀ {shape(logits)} -> softmax {shape(probs)} "
      f"-> p(next) {shape(p_next)} -> loss {loss:.6f}")
logit_diff, loss_diff = max_diff(logits, gpt_logits), abs(float(loss) - float(gpt_loss))
print(f"  ours vs GPT: max |Δ logits| = {logit_diff:.1e}, |Δ loss| = {loss_diff:.1e};  ln V = {math.log(V):.6f}")
lesson.check("our logits equal GPT's to 1e-12 (float64)", logit_diff < 1e-12, f"{logit_diff:.1e}")
lesson.check("our loss equals GPT's to 1e-12", loss_diff < 1e-12, f"{loss_diff:.1e}")
lesson.check("at initialisation the loss is near ln V (every character about equally likely)",
             abs(float(loss) - math.log(V)) < 0.05, f"{float(loss):.4f} vs {math.log(V):.4f}")
lesson.figure(plots.forward_pass(stream, backend.to_numpy(probs), loss), "12_forward_pass")

# %% [markdown]
# Why is the loss near $\ln V$? At initialisation the weights are small, so every character is about
# equally likely: $p \approx 1/V$, and $-\log(1/V) = \ln V$. The figure's right panel shows every
# $p \cdot V$ near 1; its left panel, the stream growing block by block.

# %% [markdown]
# ## Your turn: the whole forward as one function
#
# Written as one function, the forward is about eight lines: the embeddings, the causal mask, the
# blocks, the final LayerNorm and the output layer (tied or not).
#
# - `lessons/exercises/gpt_forward.py` asks for exactly that. With `--exercise` your function runs here,
#   in place of the library's.
# - Without `--exercise`, this step checks `GPT.forward` itself against the formulas.
#
# What is it compared with? `numpy_forward` below: the same model written out in plain NumPy from its
# weight arrays alone (its own LayerNorm, attention, GELU and position table; no layer of the library).
# On two small models:
#
# 1. one like ours: pre-norm, tied, learned positions;
# 2. one unlike it: biases, an untied output layer, post-norm, sinusoidal positions.
#
# Why small models? So that the layers of our cpu-preset GPT keep what our own forward gave them, for
# the backward by hand of the next step.

# %%
lesson.step("Your turn: the whole forward as one function")


def gpt_forward(self, idx):
    """GPT's logits for idx (the library's forward); with --exercise, your assembly replaces it."""
    logits, _ = GPT.forward(self, idx)
    return logits


def numpy_forward(model, idx):
    """The same logits in plain NumPy from the model's weights alone: no layer of the library is called."""
    c = model.config
    W = {name: backend.to_numpy(p.data) for name, p in model.named_parameters()}

    def linear(x, name):                                                   # x W (+ b); W is [in, out]
        return x @ W[name + ".weight"] + W.get(name + ".bias", 0.0)

    def layernorm(x, name):                                                # per row: (x − μ)/√(σ² + 1e-5) γ + β
        xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
        return xhat * W[name + ".weight"] + W.get(name + ".bias", 0.0)

    def attention(x, name):                                                # causal, n_head heads of d_k
        Bx, Tx, dx = x.shape
        q, k, v = (linear(x, f"{name}.{p}_proj").reshape(Bx, Tx, c.n_head, -1).transpose(0, 2, 1, 3)
                   for p in "qkv")                                         # [B, n_head, T, d_k] each
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dx // c.n_head)  # [B, n_head, T, T]
        scores[..., np.triu(np.ones((Tx, Tx), dtype=bool), k=1)] = -np.inf  # the future
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        heads = (weights @ v).transpose(0, 2, 1, 3).reshape(Bx, Tx, dx)    # heads side by side
        return linear(heads, f"{name}.out_proj")

    def mlp(x, name):                                                      # GELU, tanh form
        u = linear(x, f"{name}.fc1")
        return linear(0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3))), f"{name}.fc2")

    idx = backend.to_numpy(idx)
    Tx = idx.shape[1]
    if c.positional == "learned":
        positions = W["wpe.weight"][:Tx]                                   # [T, d]
    else:                                                                  # sin / cos pairs, 2017 paper
        angle = np.arange(Tx)[:, None] / 10000.0 ** (np.arange(0, c.n_embd, 2) / c.n_embd)
        positions = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(Tx, c.n_embd)
    x = W["wte.weight"][idx] + positions                                   # [B, T, d]
    for l in range(c.n_layer):
        for name, f in ((f"blocks.{l}.self_attn", attention), (f"blocks.{l}.ffn", mlp)):
            if c.norm == "pre":
                x = x + f(layernorm(x, f"{name}.ln"), f"{name}.sublayer")  # x + f(LN(x))
            else:
                x = layernorm(x + f(x, f"{name}.sublayer"), f"{name}.ln")  # LN(x + f(x))
    h = layernorm(x, "ln_f")
    return h @ (W["wte.weight"].T if c.tie_weights else W["lm_head.weight"])   # [B, T, V]


# %%
forward = lesson.exercise("gpt_forward", gpt_forward)
exercise_configs = {
    "pre-norm, tied": GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, seed=3),
    "post-norm, untied, sinusoidal": GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_embd=16,
                                               bias=True, tie_weights=False, norm="post",
                                               positional="sinusoidal", seed=4)}
exercise_diffs = {}
for name, c in exercise_configs.items():
    small = GPT(c)
    small_idx = backend.asarray(np.random.default_rng(0).integers(0, c.vocab_size, size=(3, 7)))
    expected = numpy_forward(small, small_idx)
    exercise_diffs[name] = max_diff(forward(small, small_idx), expected) / float(np.abs(expected).max())
    print(f"  {name:<30} max |Δ| vs numpy_forward, relative to its largest logit: {exercise_diffs[name]:.1e}")
lesson.check("gpt_forward gives GPT's logits to 1e-12 on a tied, pre-norm model "
             "(numpy_forward, from its weights)",
             exercise_diffs["pre-norm, tied"] < 1e-12, f"{exercise_diffs['pre-norm, tied']:.1e}")
lesson.check("... and on an untied, post-norm model with sinusoidal positions",
             exercise_diffs["post-norm, untied, sinusoidal"] < 1e-12,
             f"{exercise_diffs['post-norm, untied, sinusoidal']:.1e}")

# %% [markdown]
# ## The backward by hand
#
# Backward walks the same pieces in reverse. Each layer's `backward` takes the gradient of its output,
# returns that of its input, and adds into its parameters' `.grad`.
#
# 1. The loss: $d\mathrm{logits} = (\mathrm{softmax} - \mathrm{onehot})/N$.
# 2. The output layer $\mathrm{logits} = h E^\top$: $dh = d\mathrm{logits}\, E$, and a gradient for $E$.
# 3. The final LayerNorm.
# 4. The blocks, last to first, the MLP before attention. A residual add $y = h + f(\mathrm{LN}(h))$
#    passes $dy$ to both of its inputs: $dh = dy + \mathrm{LN}^\top(f^\top(dy))$.
# 5. The position table: it gets $\sum$ over the batch of $dh_0$.
# 6. The token table: the scatter-add of lesson 02.
#
# Every parameter's gradient must equal `GPT.backward`'s.

# %%
lesson.step("The backward by hand")
model.loss_fn(logits, targets)                                             # keeps softmax for its backward
dlogits = model.loss_fn.backward()                                         # [B, T, V]
N = B * T
onehot_next = np.eye(V)[backend.to_numpy(targets)]
print(f"  dlogits {shape(dlogits)}: (softmax − onehot)/N, max |Δ| "
      f"{max_diff(dlogits, (backend.to_numpy(probs) - onehot_next) / N):.1e}")
dE_output = dlogits.reshape(-1, V).T @ h.reshape(-1, d)                    # [V, N] @ [N, d] -> [V, d]
dh = dlogits @ E                                                           # [B, T, V] @ [V, d] -> [B, T, d]
dx = model.ln_f.backward(dh)                                               # [B, T, d]
for block in reversed(model.blocks):
    dx = dx + block.ffn.ln.backward(block.ffn.sublayer.backward(dx))       # the residual: dy + LNᵀ(MLPᵀ(dy))
    dx = dx + block.self_attn.ln.backward(block.self_attn.sublayer.backward(dx))
dtok = model.wpe.backward(dx)                                              # P gets Σ_b dx; dx passes on
model.wte.backward(dtok)                                                   # E gets the scatter-add of dtok
dE_lookup = model.wte.weight.grad.copy()                                   # the lookup's share alone
model.wte.weight.grad += dE_output                                         # ... plus the output layer's
print(f"  dh {shape(dh)} -> final LN -> {L} blocks reversed -> dh₀ {shape(dtok)} -> P, E")
relative = {}
for name, p in model.named_parameters():
    scale = float(np.abs(backend.to_numpy(gpt_grads[name])).max())
    relative[name] = max_diff(p.grad, gpt_grads[name]) / scale
worst_name = max(relative, key=relative.get)
print(f"  {len(relative)} parameters; largest max|ours − GPT| / max|GPT|: {relative[worst_name]:.1e} "
      f"({worst_name})")
lesson.check("every parameter's gradient equals GPT.backward's (to 1e-12 of its largest entry)",
             relative[worst_name] < 1e-12, f"worst {relative[worst_name]:.1e}")
lesson.figure(plots.backward_by_hand({n: backend.to_numpy(p.grad) for n, p in model.named_parameters()},
                                     {n: backend.to_numpy(g) for n, g in gpt_grads.items()},
                                     relative[worst_name]), "12_backward_by_hand")

# %% [markdown]
# The figure shows every parameter's gradient norm: our bars end at GPT's ticks.
#
# $E$ got its gradient in two pieces: `dE_output` from the output layer, and `dE_lookup` from the
# lookup. We kept both; the step "Two uses, two gradients" looks at them.

# %% [markdown]
# ## Weight tying: one table, two uses
#
# The output layer scores character $v$ by the dot product $h \cdot E[v]$: how much the final vector
# looks like $v$'s embedding.
#
# Tying makes that layer the embedding table itself (GPT-2, nanoGPT). What does it save? The $V \cdot d$
# parameters of a separate output matrix. An untied twin, built from the same config with its own output
# matrix `[d, V]`, shows it.

# %%
lesson.step("Weight tying: one table, two uses")
untied = GPT(GPTConfig(**{**config.to_dict(), "tie_weights": False}))     # the same model, its own [d, V]
saved = untied.num_parameters() - model.num_parameters()
print(f"  parameters: tied {model.num_parameters():,}, untied {untied.num_parameters():,}; "
      f"tying saves {saved:,} (V·d = {V}·{d} = {V * d:,})")
lesson.check("tying saves exactly V·d parameters: the untied twin has one more [d, V] matrix and nothing else",
             saved == V * d, f"{saved:,} vs {V * d:,}")

# %% [markdown]
# ## Tying at initialisation: a lean towards repeating the input
#
# Tying also makes the scores similarities to the *input* embeddings. At initialisation the blocks add
# little, so each position's $h$ is still mostly the embedding of the character it was given.
#
# So what is the tied model's top guess for the next character? That same character.
#
# - That is a lean towards repeating the input, which training must overcome: in text a character
#   rarely follows itself.
# - The untied twin has no such lean.

# %%
lesson.step("Tying at initialisation: a lean towards repeating the input")
repeats = {}                                                               # at initialisation, on our batch
for name, m in (("tied", model), ("untied", untied)):
    init_logits = backend.to_numpy(GPT.forward(m, idx)[0])                 # [B, T, V]
    p_init = np.exp(init_logits - init_logits.max(-1, keepdims=True))
    p_init /= p_init.sum(-1, keepdims=True)
    repeats[name] = (float((init_logits.argmax(-1) == backend.to_numpy(idx)).mean()),     # top guess = input
                     float(np.take_along_axis(p_init, backend.to_numpy(idx)[..., None], -1).mean()))
in_text = float((backend.to_numpy(targets) == backend.to_numpy(idx)).mean())
for name, (top, p_same) in repeats.items():
    print(f"  {name:<6} at initialisation: top guess = the input character at {top:.0%} of positions; "
          f"p(input character) = {p_same * V:.2f}/V")
print(f"  in the text, the next character is the current one at {in_text:.0%} of positions")
lesson.check("at initialisation the tied model's top guess is the input character itself at over 80% of "
             "positions, the untied twin's at under 10%",
             repeats["tied"][0] > 0.8 and repeats["untied"][0] < 0.1,
             f"{repeats['tied'][0]:.0%} vs {repeats['untied'][0]:.0%}")

# %% [markdown]
# ## Two uses, two gradients
#
# A table used twice gets the sum of two gradients:
#
# - the lookup's: the scatter-add of $dh_0$, into the rows of the characters in the input only;
# - the output layer's: $d\mathrm{logits}^\top h$, into every row (every character's score was
#   softmaxed).
#
# The backward by hand kept them apart (`dE_lookup`, `dE_output`). Is their sum GPT's gradient for $E$?
# And is either one alone enough?

# %%
lesson.step("Two uses, two gradients")
gpt_dE = gpt_grads["wte.weight"]
in_input = np.zeros(V, dtype=bool)
in_input[np.unique(backend.to_numpy(idx))] = True
scatter = np.zeros((V, d))
np.add.at(scatter, backend.to_numpy(idx).ravel(), backend.to_numpy(dtok).reshape(-1, d))  # by hand
both = max_diff(dE_lookup + dE_output, gpt_dE) / float(np.abs(gpt_dE).max())
only_lookup = max_diff(dE_lookup, gpt_dE) / float(np.abs(gpt_dE).max())
only_output = max_diff(dE_output, gpt_dE) / float(np.abs(gpt_dE).max())
print(f"  ‖lookup share‖ {np.linalg.norm(dE_lookup):.2e}, ‖output share‖ {np.linalg.norm(dE_output):.2e}; "
      f"{int(in_input.sum())} of {V} characters occur in the input")
print(f"  vs GPT's dE (relative max |Δ|): sum {both:.1e}, lookup alone {only_lookup:.2f}, "
      f"output alone {only_output:.2f}")
lesson.check("the lookup's share is the scatter-add of dh₀ into the rows of the input's characters",
             max_diff(dE_lookup, scatter) < 1e-15)
lesson.check("lookup share + output share = GPT's gradient for E (to 1e-12)", both < 1e-12, f"{both:.1e}")
lesson.check("neither share alone is GPT's gradient (each is off by over 10%)",
             min(only_lookup, only_output) > 0.1, f"{only_lookup:.2f}, {only_output:.2f}")
lesson.check("characters absent from the input get no lookup gradient but do get the output layer's",
             bool((dE_lookup[~in_input] == 0).all() and (np.abs(dE_output[~in_input]).max(axis=1) > 0).all()))
lesson.figure(plots.weight_tying(backend.to_numpy(dE_lookup), backend.to_numpy(dE_output), in_input,
                                 SHAKESPEARE_CHARS), "12_weight_tying")

# %% [markdown]
# In the figure, grey marks the characters that are not in the input: they have no lookup bar, only the
# output layer's.

# %% [markdown]
# ## Where the parameters live
#
# We count the model's own arrays, by kind. Per block, with $d$ = `n_embd`:
#
# - attention: $W_q, W_k, W_v, W_o$, each $d \times d$, so $4d^2$;
# - MLP: $d \times 4d$ up and $4d \times d$ down, so $8d^2$.
#
# The MLP's 4× hidden width puts two thirds of a block in the MLP, and $L$ blocks make
# $12 \cdot L \cdot d^2$. What the count adds to that: the embeddings, the biases (none in the cpu
# preset) and the LayerNorms.

# %%
lesson.step("Where the parameters live")
KINDS = ("embeddings", "attention", "MLP", "LayerNorm", "output layer")


def kind_of(name: str) -> str:
    """A parameter's kind, from its name in GPT (wte.weight, blocks.0.ffn.sublayer.fc1.weight, ...)."""
    if name.startswith(("wte.", "wpe.")):
        return "embeddings"
    if ".self_attn.sublayer." in name:
        return "attention"
    if ".ffn.sublayer." in name:
        return "MLP"
    if ".ln." in name or name.startswith("ln_f."):
        return "LayerNorm"
    if name.startswith("lm_head."):
        return "output layer"
    raise ValueError(f"kind_of: no kind for parameter {name!r}; add a rule for it.")


def counted(model) -> dict:
    """Parameters by kind, counted from a model's own arrays (a tied table counts once)."""
    counts = dict.fromkeys(KINDS, 0)
    for name, p in model.named_parameters():
        counts[kind_of(name)] += int(p.data.size)
    return counts


by_kind = counted(model)
total = sum(by_kind.values())
in_blocks = by_kind["attention"] + by_kind["MLP"] + sum(int(p.data.size) for n, p in model.named_parameters()
                                                       if n.startswith("blocks.") and kind_of(n) == "LayerNorm")
mlp_share = by_kind["MLP"] / in_blocks
for kind in KINDS:
    print(f"  {kind:<13} {by_kind[kind]:>9,}  {by_kind[kind] / total:6.1%}")
print(f"  {'total':<13} {total:>9,}  (model.num_parameters() = {model.num_parameters():,})")
matrices = sum(int(p.data.size) for n, p in model.named_parameters() if n.startswith("blocks.") and p.data.ndim == 2)
biases = sum(int(p.data.size) for n, p in model.named_parameters()
             if kind_of(n) in ("attention", "MLP") and p.data.ndim == 1)
print(f"  MLP share of the blocks: {mlp_share:.4f} (8d²/12d² = {8 / 12:.4f})")
print(f"  12·L·d² = 12·{L}·{d}² = {12 * L * d * d:,}; the weight matrices of the blocks: {matrices:,}")
print(f"  total − 12·L·d² = {total - 12 * L * d * d:,} = embeddings {by_kind['embeddings']:,} + LayerNorm "
      f"{by_kind['LayerNorm']:,} + biases {biases:,} + output layer {by_kind['output layer']:,}")
lesson.check("about two thirds of the block parameters are in the MLPs (within 1%)",
             abs(mlp_share - 2 / 3) < 0.01, f"{mlp_share:.4f}")
lesson.check("the blocks' weight matrices are exactly 12·L·d²", matrices == 12 * L * d * d,
             f"{matrices:,} vs {12 * L * d * d:,}")
lesson.figure(plots.parameters_by_kind([(n, int(p.data.size), kind_of(n)) for n, p in model.named_parameters()],
                                       by_kind, total), "12_parameters_by_kind")

# %% [markdown]
# ## A formula from the config alone
#
# Can we count a model without building it? `count_parameters(config)` writes the count as a formula:
#
# - per block, $12d^2$ plus the small terms: the biases when there are any, two LayerNorms;
# - outside the blocks: $E$, $P$ (none with sinusoidal positions), the final LayerNorm, and an output
#   matrix `[d, V]` only when it is not tied to $E$.
#
# We check it against models actually built, from four configs (biases, untied, sinusoidal,
# post-norm). Then it can count models far too big to build: the next step.

# %%
lesson.step("A formula from the config alone")


def count_parameters(c: GPTConfig) -> dict:
    """Parameters by kind from a config alone: the formula, with no array allocated.

    Per block, with d = n_embd: attention W_q, W_k, W_v, W_o, 4·d² (+ 4·d biases); MLP d × 4d and 4d × d,
    8·d² (+ 4d + d biases); two LayerNorms, d each (+ d each with β). So 12·d² per block, plus the small
    terms. Outside the blocks: E [V, d], P [block_size, d] (none if sinusoidal), the final LayerNorm,
    and an output matrix [d, V] only when it is not tied to E.
    """
    d, L, b = c.n_embd, c.n_layer, int(c.bias)
    return {"embeddings": c.vocab_size * d + (c.block_size * d if c.positional == "learned" else 0),
            "attention": L * (4 * d * d + b * 4 * d),
            "MLP": L * (2 * 4 * d * d + b * (4 * d + d)),
            "LayerNorm": (2 * L + 1) * (1 + b) * d,
            "output layer": 0 if c.tie_weights else d * c.vocab_size}


small_configs = [config,
                 GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=16, bias=True),
                 GPTConfig(vocab_size=13, block_size=5, n_layer=2, n_head=3, n_embd=12, tie_weights=False),
                 GPTConfig(vocab_size=7, block_size=9, n_layer=1, n_head=1, n_embd=8, bias=True,
                           positional="sinusoidal", norm="post", tie_weights=False)]
mismatches = [c for c in small_configs if count_parameters(c) != counted(GPT(c))]
print(f"  the formula vs models built from {len(small_configs)} configs (biases, untied, sinusoidal, "
      f"post-norm): {len(small_configs) - len(mismatches)} agree by kind")
lesson.check("count_parameters(config) equals the built model's count, kind by kind, on every config",
             not mismatches, f"{len(mismatches)} differ")

# %% [markdown]
# ## GPT-2 small and GPT-3: the same block, more of it
#
# | | GPT-2 small (2019) | GPT-3 175B (2020) |
# |---|---|---|
# | blocks $L$ | 12 | 96 |
# | width $d$ | 768 | 12288 |
# | heads | 12 | 96 |
# | vocabulary $V$ | 50257 BPE tokens | the same |
# | context | 1024 | 2048 |
#
# GPT-2 small has biases and a tied output layer. The architecture is the block of this lesson (GPT-3
# alternates dense and sparse attention patterns, which changes no weight).
#
# We build no weights (GPT-3's would take 1.4 TB in float64): the formula counts them. Does it give the
# published sizes?
#
# - GPT-2 small: 124,439,808, the count of its released, tied checkpoint;
# - GPT-3: 175.0 B, in the GPT-3 paper's table.

# %%
lesson.step("GPT-2 small and GPT-3: the same block, more of it")
published = {"GPT-2 small": (GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768,
                                       bias=True), 124_439_808),
             "GPT-3 175B": (GPTConfig(vocab_size=50257, block_size=2048, n_layer=96, n_head=96, n_embd=12288,
                                      bias=True), 175.0e9)}
sizes = {"cpu preset": count_parameters(config)}
for name, (c, reported) in published.items():
    sizes[name] = count_parameters(c)
    n = sum(sizes[name].values())
    rule = 12 * c.n_layer * c.n_embd ** 2
    print(f"  {name:<12} counted {n:>17,}  published {reported:>17,.0f}  ({n / reported - 1:+.2%}); "
          f"12·L·d² = {rule:,} ({rule / n:.1%} of it); MLP "
          f"{sizes[name]['MLP'] / (n - sizes[name]['embeddings'] - sizes[name]['output layer']):.1%} of the blocks")
gpt2 = sum(sizes["GPT-2 small"].values())
gpt3 = sum(sizes["GPT-3 175B"].values())
lesson.check("GPT-2 small counts exactly 124,439,808 parameters (its released checkpoint, tied)",
             gpt2 == 124_439_808, f"{gpt2:,}")
lesson.check("GPT-3 counts 175 B: within 0.5% of the paper's 175.0 B", abs(gpt3 / 175.0e9 - 1) < 0.005,
             f"{gpt3 / 1e9:.2f} B")
lesson.check("at GPT-3's scale 12·L·d² is within 1% of the whole count",
             abs(12 * 96 * 12288 ** 2 / gpt3 - 1) < 0.01)
lesson.figure(plots.scale(sizes), "12_scale_gpt2_gpt3")

# %% [markdown]
# What changes with scale is the share of the embeddings: a third of GPT-2 small, a rounding error of
# GPT-3. At scale nearly everything is blocks, two thirds of that MLP, and $12 \cdot L \cdot d^2$ is
# almost the whole count.

# %%
lesson.done()
