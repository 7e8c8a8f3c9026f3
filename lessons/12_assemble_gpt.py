# %% [markdown]
"""Lesson 12: Assemble the GPT: the whole model by hand, forward and backward, and where its parameters live.

Until now `GPT` was a black box built from the layers of the earlier lessons. Here it is opened: the
forward pass of the cpu-preset GPT (4 blocks, 4 heads, 128 wide, context 64, 65 characters, no biases)
is built step by step from the library's layers, with the very parameter arrays of a `GPT`:

    h₀ = E[idx] + P[:T]                                   token embedding + position embedding
    h_l = h_{l−1} + Attn(LN(h_{l−1}));  h_l += MLP(LN(h_l))   for each of the L blocks (pre-norm)
    logits = LN_f(h_L) Eᵀ                                 the tied output layer: the table E again
    loss = mean over positions of −log softmax(logits)[next character]

and checked against `GPT`'s logits and loss to 1e-12 in float64. Then the backward, by hand, through the
same pieces in reverse (each layer's backward; a residual add passes its gradient to both of its
inputs), checked against `GPT.backward` for every parameter. Weight tying gives the table E a gradient
from each of its two uses. Last, the parameters are counted by kind (two thirds of a block is its MLP;
12·L·d² in all), and the same counting, on the published configurations, gives GPT-2 small's 124 M
and GPT-3's 175 B: the same block, more of it.

Run:  python lessons/12_assemble_gpt.py        (add --no-pause to run straight through; --exercise to
      run the lesson on your own lessons/exercises/gpt_forward.py)
"""

# %%
import math

import numpy as np

from _lesson import Lesson

from tinytransformer import backend, causal_mask
from tinytransformer.tokenizers import CharTokenizer
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.training import TrainConfig, model_config

lesson = Lesson("12 Assemble the GPT", __doc__, steps=9)
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


def readable(n: int) -> str:
    """804096 -> '804.1 k', 174604259328 -> '174.6 B'."""
    return next(f"{n / unit:.1f} {name}" for unit, name in ((1e9, "B"), (1e6, "M"), (1e3, "k"), (1, ""))
                if n >= unit)


# %%
lesson.step("The model and a batch", """
    The cpu preset of the trainer (nanoGPT's "baby GPT") builds a GPTConfig: n_layer = 4 blocks,
    n_head = 4 heads, n_embd = d = 128, block_size = T = 64, vocab_size = V = 65 characters, bias =
    False. We build that GPT in float64 and a batch of B windows of T characters of Shakespeare, the
    targets shifted by one. Before opening the model we run it once as a black box and keep what it
    says, logits, loss and the gradient of every parameter, to compare our own assembly with.""")
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

gpt_logits, gpt_loss = model(idx, targets)                                 # GPT as a black box
model.zero_grad()
model.backward()
gpt_grads = {name: p.grad.copy() for name, p in model.named_parameters()}
model.zero_grad()                                                          # our backward starts from 0
print(f"  GPT says: logits {shape(gpt_logits)}, loss {float(gpt_loss):.6f} (ln V = {math.log(V):.6f}); "
      f"{len(gpt_grads)} parameter gradients kept")

# %%
lesson.step("Token embedding + position embedding", """
    The token embedding is a table E [V, d]: character v becomes row E[v], the same as the one-hot
    row vector of v times E. The learned position embedding is a second table P [block_size, d]: position
    t adds row P[t]. Their sum h₀ [B, T, d] is the start of the residual stream, the vector per
    position that every block reads from and adds to.""")
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

# %%
lesson.step("One block, opened: LN → attention → +, LN → MLP → +", """
    A block is two sublayers, each read from the stream through a LayerNorm and added back to it
    (pre-norm, GPT-2): a = Attn(LN₁(h)), h = h + a; m = MLP(LN₂(h)), h = h + m. Attention splits d
    into n_head heads of d_k = d / n_head, each with its own causal weights [T, T]; the MLP widens
    each position to 4·d and back. Every layer keeps what its backward will need (q, k, v and the
    weights; the MLP's hidden activations; each LayerNorm's x̂ and 1/σ). Here is block 0 step by
    step; the other blocks are the same with their own parameters.""")
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

# %%
lesson.step("The other blocks, the final LayerNorm, the tied output layer, softmax and the loss", """
    Blocks 1 .. L−1 follow the same way. A last LayerNorm normalises the stream, and the output layer
    turns each position's h [d] into V scores: logits = h Eᵀ, the token table again (weight tying,
    step 7). softmax turns the scores into probabilities of the next character, and the loss is the
    mean of −log p(the true next character). At initialisation the weights are small, so every
    character is about equally likely and the loss is near ln V. Our logits and loss must equal GPT's
    to 1e-12: the same layers, the same parameters, the same order.""")
for l in range(1, L):
    block = model.blocks[l]
    x = x + block.self_attn.sublayer(block.self_attn.ln(x), mask=mask)     # [B, T, d]
    stream.append((f"b{l} attn", float(np.sqrt((x ** 2).mean()))))
    x = x + block.ffn.sublayer(block.ffn.ln(x))                            # [B, T, d]
    stream.append((f"b{l} mlp", float(np.sqrt((x ** 2).mean()))))
print(f"  blocks 1..{L - 1}: h {shape(x)} each")
h = model.ln_f(x)                                                          # [B, T, d]
logits = h @ E.T                                                           # [B, T, d] @ [d, V] -> [B, T, V]
probs = np.exp(logits - logits.max(-1, keepdims=True))
probs /= probs.sum(-1, keepdims=True)                                      # softmax over the V characters
p_next = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]   # [B, T]
loss = -np.log(p_next).mean()
print(f"  final LN h {shape(h)} -> logits = h Eᵀ {shape(logits)} -> softmax {shape(probs)} "
      f"-> p(next) {shape(p_next)} -> loss {loss:.6f}")
logit_diff, loss_diff = max_diff(logits, gpt_logits), abs(float(loss) - float(gpt_loss))
print(f"  ours vs GPT: max |Δ logits| = {logit_diff:.1e}, |Δ loss| = {loss_diff:.1e}")
lesson.check("our logits equal GPT's to 1e-12 (float64)", logit_diff < 1e-12, f"{logit_diff:.1e}")
lesson.check("our loss equals GPT's to 1e-12", loss_diff < 1e-12, f"{loss_diff:.1e}")
lesson.check("at initialisation the loss is near ln V (every character about equally likely)",
             abs(float(loss) - math.log(V)) < 0.05, f"{float(loss):.4f} vs {math.log(V):.4f}")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402


def plain_log_labels(axis) -> None:
    """Label a log axis 1e+05, not with mathtext's 10⁵ (typesetting those is most of a figure's time)."""
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
    axis.set_minor_formatter(NullFormatter())


fig, (ax_stream, ax_probs) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [3, 2]})
ax_stream.plot(range(len(stream)), [rms for _, rms in stream], "o-")
ax_stream.set_xticks(range(len(stream)), [name for name, _ in stream], rotation=60, fontsize=8)
ax_stream.set(ylabel="RMS of h", title="the residual stream grows as each sublayer adds to it")
ax_stream.grid(alpha=0.3)
ax_probs.hist(backend.to_numpy(probs).ravel() * V, bins=40)
ax_probs.set(xlabel="p(character) × V", ylabel="count",
             title=f"softmax at initialisation: all near 1/V (loss {float(loss):.3f} ≈ ln V)")
fig.subplots_adjust(wspace=0.2)   # (no tight_layout: the saved figure is cropped to fit anyway)
lesson.figure(fig, "12_forward_pass")


# %%
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


lesson.step("Your turn: the whole forward as one function", """
    Written as one function, the forward is about eight lines: embeddings, the causal mask, the
    blocks, the final LayerNorm and the output layer (tied or not). lessons/exercises/gpt_forward.py
    asks for exactly that; with --exercise your function runs here in place of the library's. Its
    logits are compared with numpy_forward above: the same model written out in plain NumPy from its
    weight arrays alone (its own LayerNorm, attention, GELU and position table; no layer of the
    library), on two small models: one like ours (pre-norm, tied, learned positions) and one unlike
    it (biases, an untied output layer, post-norm, sinusoidal positions). Without --exercise this
    checks GPT.forward itself against the formulas. (Small models, so that the layers of our
    cpu-preset GPT keep what our own forward gave them for the backward by hand of the next step.)""")
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

# %%
lesson.step("The backward by hand", """
    Backward walks the same pieces in reverse, each layer's backward taking the gradient of its output
    and returning that of its input (and adding into its parameters' .grad). The loss gives dlogits =
    (softmax − onehot)/N. The output layer logits = h Eᵀ gives dh = dlogits E and a gradient for E.
    Then the final LayerNorm, and the blocks from last to first: a residual add y = h + f(LN(h))
    passes dy to both of its inputs, so dh = dy + LNᵀ(fᵀ(dy)), the MLP first, then attention.
    Last the position table (it gets Σ over the batch of dh₀) and the token table (the scatter-add of
    lesson 02). Every parameter's gradient must equal GPT.backward's.""")
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

grad_norms = [float(np.linalg.norm(backend.to_numpy(p.grad))) for _, p in model.named_parameters()]
gpt_norms = [float(np.linalg.norm(backend.to_numpy(gpt_grads[n]))) for n, _ in model.named_parameters()]
names = [n.replace("blocks.", "b").replace(".sublayer", "").replace(".weight", "") for n in relative]
fig, ax = plt.subplots(figsize=(7, 7))
ax.barh(range(len(names)), grad_norms, color="tab:blue", label="ours, by hand")
ax.plot(gpt_norms, range(len(names)), "k|", markersize=12, label="GPT.backward")
ax.set_yticks(range(len(names)), names, fontsize=7)
ax.invert_yaxis()
ax.set(xscale="log", xlabel="‖gradient‖",
       title=f"every parameter's gradient: by hand vs GPT.backward\n(largest relative difference "
             f"{relative[worst_name]:.0e})")
plain_log_labels(ax.xaxis)
ax.legend(fontsize=8, loc="lower right")
lesson.figure(fig, "12_backward_by_hand")

# %%
lesson.step("Weight tying: one table, two uses, two gradients", """
    The output layer scores character v by the dot product h · E[v]: how much the final vector looks
    like v's embedding. Tying makes that layer the embedding table itself (GPT-2, nanoGPT), which
    saves the V·d parameters of a separate output matrix. It also means the scores are similarities
    to the input embeddings. At initialisation the blocks add little, so each position's h is still
    mostly the embedding of the character it was given, and the tied model's top guess for the next
    character is that same character: a lean towards repeating the input, which training must
    overcome (in text a character rarely follows itself). An untied twin, built from the same
    config with its own output matrix, has no such lean. Last, a table used twice gets the sum of
    two gradients: the lookup's scatter-add (rows of characters in the input only) and the output
    layer's dlogitsᵀ h (every row: every character's score was softmaxed).""")
untied = GPT(GPTConfig(**{**config.to_dict(), "tie_weights": False}))     # the same model, its own [d, V]
saved = untied.num_parameters() - model.num_parameters()
print(f"  parameters: tied {model.num_parameters():,}, untied {untied.num_parameters():,}; "
      f"tying saves {saved:,} (V·d = {V}·{d} = {V * d:,})")
lesson.check("tying saves exactly V·d parameters: the untied twin has one more [d, V] matrix and nothing else",
             saved == V * d, f"{saved:,} vs {V * d:,}")

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

labels = [repr(c)[1:-1] for c in SHAKESPEARE_CHARS]
fig, ax = plt.subplots(figsize=(14, 4))
positions = np.arange(V)
ax.bar(positions - 0.2, np.linalg.norm(dE_lookup, axis=1), 0.4, label="lookup: scatter-add of dh₀")
ax.bar(positions + 0.2, np.linalg.norm(dE_output, axis=1), 0.4, label="output layer: dlogitsᵀ h")
for v in positions[~in_input]:
    ax.axvspan(v - 0.5, v + 0.5, color="0.9", zorder=0)
ax.set_xticks(positions, labels, fontsize=7)
ax.set(ylabel="‖gradient of row E[v]‖",
       title="E's gradient from its two uses (grey: characters not in the input, no lookup share)")
ax.legend()
lesson.figure(fig, "12_weight_tying")

# %%
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


lesson.step("Where the parameters live", """
    Counted from the model itself, by kind. A block holds 4·d² in attention (W_q, W_k, W_v, W_o, each
    d × d) and 8·d² in its MLP (d × 4d up, 4d × d down): the MLP's 4× hidden width puts two thirds
    of a block in the MLP. L blocks make 12·L·d²; what the count adds to that is the embeddings, the
    biases (none in the cpu preset) and the LayerNorms. A formula from the config alone, checked here
    against models actually built, will count models far too big to build in the next step.""")
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

cpu_groups = []                                                            # (label, count, kind) in order
for name, p in model.named_parameters():
    label = name.split(".sublayer")[0].replace("blocks.", "block ").rsplit(".weight", 1)[0]
    label = label.replace(".self_attn", " attn").replace(".ffn", " MLP")
    if cpu_groups and cpu_groups[-1][0] == label:
        cpu_groups[-1] = (label, cpu_groups[-1][1] + int(p.data.size), kind_of(name))
    else:
        cpu_groups.append((label, int(p.data.size), kind_of(name)))
COLORS = {"embeddings": "tab:purple", "attention": "tab:blue", "MLP": "tab:orange", "LayerNorm": "tab:green",
          "output layer": "tab:gray"}
fig, ax = plt.subplots(figsize=(10, 6))
ax.barh(range(len(cpu_groups)), [n for _, n, _ in cpu_groups], color=[COLORS[k] for _, _, k in cpu_groups])
ax.set_yticks(range(len(cpu_groups)), [g[0].replace(".ln", " LN") for g in cpu_groups], fontsize=7)
ax.invert_yaxis()
for kind in ("embeddings", "attention", "MLP", "LayerNorm"):
    ax.barh([0], [0], color=COLORS[kind], label=f"{kind}: {by_kind[kind] / total:.1%}")
ax.set(xlabel="parameters", title=f"cpu preset, {total:,} parameters: each block is 4d² attention + 8d² MLP")
ax.legend(loc="upper right")
lesson.figure(fig, "12_parameters_by_kind")

# %%
lesson.step("GPT-2 small and GPT-3: the same block, more of it", """
    GPT-2 small (2019): L = 12, d = 768, 12 heads, V = 50257 BPE tokens, context 1024, biases, tied
    output. GPT-3 175B (2020): L = 96, d = 12288, 96 heads, the same vocabulary, context 2048. The
    architecture is the block of this lesson (GPT-3 alternates dense and sparse attention patterns,
    which changes no weight). The same formula, on their configurations (no weights built: GPT-3's
    would take 1.4 TB in float64), gives their published sizes: 124,439,808 for GPT-2 small (the count
    of its released, tied checkpoint) and 175.0 B in the GPT-3 paper's table. The embeddings are a
    third of GPT-2 small and a rounding error of GPT-3: at scale, nearly everything is blocks, and
    two thirds of that MLP; 12·L·d² is then almost the whole count.""")
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



fig, (ax_abs, ax_share) = plt.subplots(1, 2, figsize=(13, 4.5))
models = list(sizes)
width = 0.2
for k, kind in enumerate(("embeddings", "attention", "MLP", "LayerNorm")):
    ax_abs.bar(np.arange(len(models)) + (k - 1.5) * width, [sizes[m][kind] for m in models], width,
               color=COLORS[kind], label=kind)
    bottoms = [sum(sizes[m][q] for q in ("embeddings", "attention", "MLP", "LayerNorm")[:k]) / sum(sizes[m].values())
               for m in models]
    ax_share.bar(models, [sizes[m][kind] / sum(sizes[m].values()) for m in models], bottom=bottoms,
                 color=COLORS[kind], label=kind)
ax_abs.set_xticks(range(len(models)), [f"{m}\n{readable(sum(sizes[m].values()))}" for m in models])
ax_abs.set(yscale="log", ylabel="parameters", title="parameters by kind (log scale)")
plain_log_labels(ax_abs.yaxis)
ax_abs.legend(fontsize=8)
ax_share.set(ylabel="share of all parameters", title="the same block, more of it: shares by kind")
fig.subplots_adjust(wspace=0.25)
lesson.figure(fig, "12_scale_gpt2_gpt3")

lesson.done()
