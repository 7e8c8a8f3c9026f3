# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 10: residual connections and LayerNorm: pre-norm versus post-norm, measured through depth
#
# A Transformer block wraps each sublayer $f$ (attention, feed-forward) in a residual connection and a
# LayerNorm. Where the LayerNorm goes decides how the gradient travels down a deep stack:
#
# - **pre-norm** (GPT-2, nanoGPT): $x_{l+1} = x_l + f(\mathrm{LN}(x_l))$
# - **post-norm** (the 2017 paper): $x_{l+1} = \mathrm{LN}(x_l + f(x_l))$
#
# We measure it:
#
# 1. build deep stacks of the library's `DecoderBlock`s and `EncoderBlock`s;
# 2. send a gradient backward through them;
# 3. record the gradient that reaches each layer's input.
#
# Last, we take the residual connections away: what reaches the first block then, and how does a short
# training run go without them? (Lesson 15 trains each stage of the model to the end of a longer budget.)
#
# Run: `python lessons/10_residuals_and_layernorm.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson10 as plots

from tinytransformer import AdamW, DecoderBlock, EncoderBlock, LayerNorm, backend, causal_mask
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.models import GPT, GPTConfig, StageConfig, StageModel

lesson = Lesson("10 Residual connections and LayerNorm", steps=7)
# With --exercise, your layernorm_forward (lessons/exercises/) runs in place of the library's.
LayerNorm.forward = lesson.exercise("layernorm_forward", LayerNorm.forward)

# Settings: --quick keeps every stack small enough to run in a couple of seconds.
DEPTH = 12 if lesson.quick else 24          # blocks in each deep stack
GPT_DEPTH = 6 if lesson.quick else 12       # blocks in the GPT of step 5
B, T, D, N_HEAD = (2, 8, 32, 4) if lesson.quick else (4, 16, 64, 4)
TRAIN_DEPTH, TRAIN_ITERS = 6, (40 if lesson.quick else 100)   # the training run of step 7


def norm(a) -> float:
    return float(np.linalg.norm(backend.to_numpy(a)))


def cosine(a, b) -> float:
    a, b = backend.to_numpy(a).ravel(), backend.to_numpy(b).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# %% [markdown]
# ## LayerNorm normalises each row
#
# What does LayerNorm do to one position? It works on that position's feature vector $x$, a row of $D$
# numbers, on its own:
#
# $$\mu = \mathrm{mean}(x), \qquad \sigma^2 = \mathrm{mean}((x - \mu)^2)$$
#
# $$\hat{x} = (x - \mu)/\sqrt{\sigma^2 + \epsilon}, \qquad y = \gamma \odot \hat{x} + \beta$$
#
# At the start $\gamma = 1$ and $\beta = 0$. So every row should come out with mean 0 and variance 1,
# whatever its scale and offset were. We feed it rows far from that: $7x + 3$.

# %%
lesson.step("LayerNorm normalises each row")
rng = backend.new_host_rng(0)
x = backend.randn((B, T, D), rng=rng) * 7.0 + 3.0                        # rows far from mean 0, variance 1
ln = LayerNorm(D)
y = ln(x)                                                                # [B, T, D]
row_mean, row_var = y.mean(axis=-1), y.var(axis=-1)
print(f"  input rows:  mean {float(x.mean()):+.2f}, std {float(x.std()):.2f}")
print(f"  output rows: largest |mean| {float(abs(row_mean).max()):.1e}, "
      f"variance between {float(row_var.min()):.6f} and {float(row_var.max()):.6f}")
lesson.check("every output row has mean 0 (to 1e-5)", float(abs(row_mean).max()) < 1e-5)
lesson.check("every output row has variance 1 (to 1e-3; eps = 1e-5 makes it σ²/(σ² + eps))",
             float(abs(row_var - 1).max()) < 1e-3)
ln_affine = LayerNorm(D)                                                 # γ, β away from 1, 0
ln_affine.weight.data[...] = backend.randn((D,), rng=backend.new_host_rng(1))
ln_affine.bias.data[...] = backend.randn((D,), rng=backend.new_host_rng(2))
lesson.check("with γ and β set, the output is γ ⊙ x̂ + β (x̂: the normalised rows above)",
             np.allclose(ln_affine(x), ln_affine.weight.data * y + ln_affine.bias.data, atol=1e-5))

# %% [markdown]
# The scale and the offset of the input are gone. What is left, $\hat{x}$, is then scaled by $\gamma$
# and shifted by $\beta$, feature by feature: the two parameters that training moves.

# %% [markdown]
# ## LayerNorm's backward divides by σ
#
# How does a gradient cross a LayerNorm? Lesson 11 (step 4) derives its backward:
#
# $$dx = \frac{1}{\sigma} \cdot \left(g - \mathrm{mean}(g) - \hat{x} \odot \mathrm{mean}(g \odot \hat{x})\right),
# \qquad g = dy \odot \gamma$$
#
# Two consequences matter for deep stacks:
#
# - the gradient is **divided by the $\sigma$ of the input**: an input ten times larger gets a gradient
#   ten times smaller;
# - in each row, $dx$ has no component along the constant direction or along $\hat{x}$ (shifting or
#   scaling a row does not change LN's output). So every LayerNorm the gradient passes through also
#   **turns** it.

# %%
lesson.step("LayerNorm's backward divides by σ")
dy = backend.randn((B, T, D), rng=rng)
ln(x)
dx = ln.backward(dy)
ln(10.0 * x)
dx_scaled = ln.backward(dy)
ratio = norm(dx_scaled) / norm(dx)
print(f"  ‖dx‖ for input x: {norm(dx):.4f};   for input 10·x: {norm(dx_scaled):.4f}  (ratio {ratio:.4f})")
lesson.check("scaling the input by 10 scales the gradient by 1/10", abs(ratio - 0.1) < 1e-4,
             f"ratio {ratio:.5f}")
xhat = ln.xhat
lesson.check("each row of dx sums to 0 and is orthogonal to x̂",
             float(abs(dx_scaled.sum(-1)).max()) < 1e-5 and float(abs((dx_scaled * xhat).sum(-1)).max()) < 1e-4)
print(f"  cosine(dx, dy) = {cosine(dx, dy):.3f}: the gradient has been turned, not only scaled")

# %% [markdown]
# ## The residual path carries dy straight through
#
# Pre-norm, $y = x + f(\mathrm{LN}(x))$, gives
#
# $$dx = dy + \mathrm{LN}^\top(f^\top(dy))$$
#
# The first term is the **residual path**: the output's gradient arrives at the input unchanged, whatever
# $f$ does.
#
# To see that term alone, we switch every branch off and stack many blocks:
#
# - zero the output projection of each attention (`out_proj`) and the second linear layer of each
#   feed-forward network (`fc2`), so $f = 0$;
# - **pre-norm**: the stack is now the identity, so $dx$ should be exactly $dy$;
# - **post-norm**, $y = \mathrm{LN}(x + f(x))$, puts a LayerNorm on the main path itself: with $f = 0$
#   the gradient still passes through 2 LayerNorm backward steps per block.

# %%
lesson.step("The residual path carries dy straight through")


def zero_branches(blocks):
    """Make every sublayer output 0: its last Linear (attention out_proj, FFN fc2) gets weight = bias = 0."""
    for block in blocks:
        for name, module in block.named_modules():
            if name.endswith(("out_proj", "fc2")):
                module.weight.data.fill(0)
                module.bias.data.fill(0)


def backward_through(blocks, dy):
    """Backward through a stack, last block first; returns the gradient at every layer's input, top first."""
    grads = [dy]                                   # grads[0]: at the stack's output
    for block in reversed(blocks):
        grads.append(block.backward(grads[-1]))    # grads[k]: at the input of block depth − k
    return grads


mask = causal_mask(T)
x0 = backend.randn((B, T, D), rng=rng)
for norm_kind in ("pre", "post"):
    rng_blocks = backend.new_host_rng(1)
    blocks = [DecoderBlock(D, N_HEAD, norm=norm_kind, rng=rng_blocks) for _ in range(DEPTH)]
    zero_branches(blocks)
    h = x0
    for block in blocks:
        h = block(h, mask=mask)
    g = backend.randn(h.shape, rng=backend.new_host_rng(2))
    dx_in = backward_through(blocks, g)[-1]
    print(f"  {norm_kind:>4}-norm, {DEPTH} blocks, f = 0:  "
          f"max |dx − dy| = {float(abs(dx_in - g).max()):.3g}, ‖dx‖/‖dy‖ = {norm(dx_in) / norm(g):.3f}, "
          f"cosine(dx, dy) = {cosine(dx_in, g):.3f}")
    if norm_kind == "pre":
        lesson.check("pre-norm with f = 0: the gradient at the input is exactly dy (bit for bit)",
                     bool((dx_in == g).all()))
    else:
        lesson.check("post-norm with f = 0: the gradient at the input is not dy (LayerNorms are on its path)",
                     float(abs(dx_in - g).max()) > 1e-2)

# %% [markdown]
# Pre-norm hands $dy$ down bit for bit. Post-norm changes it even with no branch at all: its norm stays
# close, but its direction has turned.

# %% [markdown]
# ## Gradient norm through a stack of random blocks
#
# Now with working branches. Does the gradient vanish or explode on its way down?
#
# - 24 blocks (12 with `--quick`) with the library's default initial weights: uniform
#   $\pm 1/\sqrt{\mathrm{fan\_in}}$, as PyTorch;
# - input $x \sim N(0, 1)$; a random gradient $dy$ with $\|dy\| = 1$ at the top;
# - decoder blocks run with the causal mask, encoder blocks without one.
#
# At the input of every block $l$ we record two numbers: $\|dx_l\|$, and
# $\cos(dx_l, dy)$, how much of the top's gradient arrives unchanged in direction.

# %%
lesson.step("Gradient norm through a stack of random blocks")
print(f"  {DEPTH} blocks; x ~ N(0, 1) of shape [{B}, {T}, {D}]; ‖dy‖ = 1 at the top")
curves = {}
for family, make in (("decoder", lambda n, r: DecoderBlock(D, N_HEAD, norm=n, rng=r)),
                     ("encoder", lambda n, r: EncoderBlock(D, N_HEAD, norm=n, rng=r))):
    for norm_kind in ("pre", "post"):
        rng_blocks = backend.new_host_rng(3)
        blocks = [make(norm_kind, rng_blocks) for _ in range(DEPTH)]
        h = x0
        for block in blocks:
            h = block(h, mask=mask if family == "decoder" else None)
        g = backend.randn(h.shape, rng=backend.new_host_rng(4))
        g = g / norm(g)                                                  # ‖dy‖ = 1
        grads = backward_through(blocks, g)[::-1]                        # grads[l]: input of block l
        curves[family, norm_kind] = (np.array([norm(d) for d in grads]),      # ‖dx_l‖
                                     np.array([cosine(d, g) for d in grads]))  # cosine(dx_l, dy)

print(f"  {'stack':<16}{'‖dx‖ at input':>15}{'min ‖dx_l‖':>12}{'max ‖dx_l‖':>12}"
      f"{'cos(dx, dy) at input':>22}")
for (family, norm_kind), (norms, cosines) in curves.items():
    print(f"  {family + ' ' + norm_kind:<16}{norms[0]:>15.3f}{norms.min():>12.3f}{norms.max():>12.3f}"
          f"{cosines[0]:>22.3f}")
for family in ("decoder", "encoder"):
    pre_norms, pre_cos = curves[family, "pre"]
    post_norms, post_cos = curves[family, "post"]
    for kind, norms in (("pre", pre_norms), ("post", post_norms)):
        lesson.check(f"{family}, {kind}-norm: ‖dx_l‖ stays within a factor of 2 of ‖dy‖ at every layer",
                     0.5 < norms.min() and norms.max() < 2.0, f"{norms.min():.2f} .. {norms.max():.2f}")
    lesson.check(f"{family}: the input gradient is more aligned with dy in pre-norm than in post-norm",
                 pre_cos[0] > post_cos[0], f"cosine {pre_cos[0]:.2f} vs {post_cos[0]:.2f}")
lesson.figure(plots.gradient_through_depth(curves, DEPTH), "10_gradient_through_depth")

# %% [markdown]
# At this initialisation **neither** stack makes the gradient vanish or explode: both norms stay within a
# factor of 2 of $\|dy\|$.
#
# - Pre-norm's grows a little: every branch adds its own term to $dy$.
# - Post-norm's shrinks a little: each LayerNorm divides by the $\sigma$ of $x + f(x)$, a little above 1,
#   and removes two directions per row.
#
# What differs is **what arrives**. In pre-norm, the top's gradient itself plus the branches' terms, so
# $dx$ stays aligned with $dy$. In post-norm, a version turned by two LayerNorm Jacobians per block.

# %% [markdown]
# ## In a real GPT, at GPT-2 initialisation
#
# A GPT feeds its blocks **small** vectors: token plus position embeddings, each drawn with std 0.02.
#
# Before any training, we take the gradient of the real loss (on random tokens) and record what reaches
# each block's input: each block's backward is wrapped to note the norms that pass through it.
#
# What should we expect?
#
# - Pre-norm never puts a LayerNorm on the main path: the gradient should cross every block almost
#   unchanged.
# - Post-norm does, and the first block's LayerNorm sees the small embeddings. It divides the gradient by
#   their $\sigma$ (step 2): about $1/0.028 \approx 35$ times larger on the way to the embeddings.

# %%
lesson.step("In a real GPT, at GPT-2 initialisation")
print(f"  GPT with {GPT_DEPTH} blocks, n_embd = {D}, {N_HEAD} heads, 65 tokens")
gpt_curves = {}
for norm_kind in ("pre", "post"):
    model = GPT(GPTConfig(vocab_size=65, block_size=T, n_layer=GPT_DEPTH, n_head=N_HEAD, n_embd=D,
                          norm=norm_kind, seed=0))
    arriving = {}                                    # block index -> (‖dy‖ at its output, ‖dx‖ at input)
    for i, block in enumerate(model.blocks):
        def recording_backward(dy, i=i, original=block.backward, arriving=arriving):
            dx = original(dy)
            arriving[i] = (norm(dy), norm(dx))
            return dx
        block.backward = recording_backward          # an instance attribute: only this block is wrapped
    tokens = backend.new_host_rng(5).integers(0, 65, size=(B, T + 1))
    idx, targets = backend.asarray(tokens[:, :-1]), backend.asarray(tokens[:, 1:])
    embedded = model.wpe(model.wte(idx))             # what the first block receives
    _, loss = model(idx, targets)
    model.backward()
    top = arriving[GPT_DEPTH - 1][0]
    inputs = np.array([arriving[i][1] for i in range(GPT_DEPTH)])
    gpt_curves[norm_kind] = np.concatenate([inputs, [top]]) / top       # relative to the top's gradient
    print(f"  {norm_kind:>4}-norm: loss {float(loss):.3f} (ln 65 = {np.log(65):.3f}); gradient at each block's "
          f"input / at the top block's output, block 0 first:")
    print("        " + " ".join(f"{r:.3f}" for r in gpt_curves[norm_kind][:-1]))
    if norm_kind == "post":
        embed_std = float(embedded.std())
        print(f"  std of the embeddings entering block 0: {embed_std:.4f}; 1/std = {1 / embed_std:.1f}")

pre, post = gpt_curves["pre"], gpt_curves["post"]
lesson.check("pre-norm GPT: every block's input gradient is within 1.5× of the top's",
             pre.max() / pre.min() < 1.5, f"{pre.min():.2f} .. {pre.max():.2f}")
lesson.check("post-norm GPT: blocks 1 .. top pass the gradient on within 1.5×",
             post[1:].max() / post[1:].min() < 1.5, f"{post[1:].min():.2f} .. {post[1:].max():.2f}")
lesson.check("post-norm GPT: the first block's LayerNorm multiplies it by more than 10 (≈ 1/σ of the "
             "embeddings, within 25%)",
             post[0] > 10 and abs(post[0] * embed_std - 1) < 0.25, f"×{post[0]:.1f}")
lesson.figure(plots.gpt_gradient_by_block(pre, post, GPT_DEPTH), "10_gpt_gradient_by_block")

# %% [markdown]
# So post-norm's gradient depends on the scale of whatever enters each LayerNorm. Pre-norm's identity
# path hands every block nearly the same gradient.
#
# That predictability is the usual argument for pre-norm in deep stacks; GPT-2 and nanoGPT use it.

# %% [markdown]
# ## Take the residual connections away
#
# What do the residual connections themselves buy? We build the same stack of blocks (attention, then
# MLP, in each) twice, and nothing else differs:
#
# - with $x = x + f(x)$ around every sublayer;
# - with $x = f(x)$.
#
# (tinytransformer's `StageModel`, lesson 15, switches exactly that.) Both are measured with pre-norm
# LayerNorms and without any LayerNorm, at the library's default initialisation, in float64, on random
# characters. Two ratios:
#
# - the gradient of the loss reaching block 0's input, relative to the one arriving at the top block;
# - the gradient of block 0's weights, relative to the last block's.

# %%
lesson.step("Take the residual connections away")


def gradients_by_block(model, idx, targets):
    """(‖dx‖ at each block's input / ‖dy‖ at the top block's output, block 0 first;
    ‖grad of block 0's weights‖ / ‖grad of the last block's weights‖)."""
    arriving = {}
    for i, block in enumerate(model.blocks):
        def recording_backward(dy, i=i, original=block.backward):
            dx = original(dy)
            arriving[i] = (norm(dy), norm(dx))
            return dx
        block.backward = recording_backward            # an instance attribute: only this block is wrapped
    model(idx, targets)
    model.backward()
    top = arriving[len(model.blocks) - 1][0]

    def weights_grad(block):
        return np.sqrt(sum(norm(p.grad) ** 2 for _, p in block.named_parameters()))
    return (np.array([arriving[i][1] for i in range(len(model.blocks))]) / top,
            weights_grad(model.blocks[0]) / weights_grad(model.blocks[-1]))


tokens = backend.new_host_rng(6).integers(0, 65, size=(B, T + 1))
stack_curves, first_block = {}, {}
with backend.using("float64"):
    idx, targets = backend.asarray(tokens[:, :-1]), backend.asarray(tokens[:, 1:])
    for layernorm in (True, False):
        for residual in (True, False):
            key = ("pre-norm LN" if layernorm else "no LN", "residual" if residual else "no residual")
            model = StageModel(StageConfig(vocab_size=65, block_size=T, n_embd=D, n_layer=DEPTH, n_head=N_HEAD,
                                           mlp=True, residual=residual, layernorm=layernorm, seed=0))
            stack_curves[key], first_block[key] = gradients_by_block(model, idx, targets)
print(f"  {DEPTH} blocks")
print(f"  {'stack':<28}{'‖dx‖ at block 0 / at the top':>30}{'‖dW‖ block 0 / last block':>28}")
for key, curve in stack_curves.items():
    print(f"  {', '.join(key):<28}{curve[0]:>30.2e}{first_block[key]:>28.2e}")
for ln_kind in ("pre-norm LN", "no LN"):
    with_res = (ln_kind, "residual")
    lesson.check(f"{ln_kind}, with residuals: at least half of the top's gradient reaches block 0, and block 0's "
                 "weights get at least half the gradient of the last block's",
                 stack_curves[with_res][0] > 0.5 and first_block[with_res] > 0.5,
                 f"{stack_curves[with_res][0]:.2f}, {first_block[with_res]:.2f}")
no_ln = ("no LN", "no residual")
lesson.check("no LN, without residuals: the gradient all but vanishes: below 1e-6 of the top's at block 0's "
             "input, and block 0's weights get below 1e-6 of the last block's gradient",
             stack_curves[no_ln][0] < 1e-6 and first_block[no_ln] < 1e-6,
             f"{stack_curves[no_ln][0]:.1e}, {first_block[no_ln]:.1e}")

# %% [markdown]
# Without residuals the gradient must pass through every block's Jacobian. At the usual initial weights
# each block shrinks it: **without LayerNorm** the first blocks get nothing usable.
#
# **With pre-norm LayerNorms**, which rescale the signal at every sublayer, the gradient at initialisation
# need not shrink much. How much depends on the initial weights: from about 1 to 1/70 across the seeds we
# tried. Is that stack then as good as one with residuals? The next step trains both.

# %% [markdown]
# ## Train without residuals
#
# A short training run: 6 blocks with LayerNorm, with and without residuals, 100 AdamW steps (40 with
# `--quick`) on Tiny Shakespeare. Both see the same batches, in the same order.

# %%
lesson.step("Train without residuals")
dataset = TextDataset(find_shakespeare().read_text(encoding="utf-8"))
runs = {}
for residual in (True, False):
    model = StageModel(StageConfig(vocab_size=dataset.tokenizer.vocab_size, block_size=8, n_embd=16,
                                   n_layer=TRAIN_DEPTH, n_head=4, mlp=True, residual=residual, layernorm=True,
                                   seed=0))
    optimizer = AdamW(model.named_parameters(), lr=1e-2, weight_decay=0.0)
    batches = np.random.default_rng(0)                 # the same batches, in the same order, for both
    losses = []
    for _ in range(TRAIN_ITERS):
        x_batch, y_batch = dataset.get_batch("train", 32, 8, batches)
        model.zero_grad()
        _, loss = model(x_batch, y_batch)
        losses.append(float(loss))
        model.backward()
        optimizer.step()
    runs["with residuals" if residual else "without residuals"] = np.array(losses)
ending = {name: float(losses[-10:].mean()) for name, losses in runs.items()}
print(f"  {TRAIN_DEPTH} blocks, {TRAIN_ITERS} steps: mean loss of the last 10 batches " +
      ", ".join(f"{name} {value:.3f}" for name, value in ending.items()))
lesson.check(f"after {TRAIN_ITERS} steps the stack with residuals is ahead by more than 0.1 nats",
             ending["with residuals"] < ending["without residuals"] - 0.1,
             f"{ending['with residuals']:.3f} vs {ending['without residuals']:.3f}")
lesson.figure(plots.without_residuals(stack_curves, runs, DEPTH, TRAIN_DEPTH, TRAIN_ITERS),
              "10_without_residuals")

# %% [markdown]
# The stack without residuals trains far worse, although its first gradient was not tiny. The size of the
# first gradient is not the whole story. The residual path:
#
# - makes every block start as the identity plus a small correction;
# - hands every block the top's gradient itself (step 3), plus what the branches add.

# %%
lesson.done()
