# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 25: the modern block, RMSNorm and SwiGLU beside LayerNorm and GELU
#
# A LLaMA block is wired like GPT-2's (lesson 12): norm → attention → +, norm → MLP → +. Three of its
# parts are different:
#
# - **RMSNorm** instead of LayerNorm: each row is scaled, never centred;
# - **SwiGLU** instead of the GELU MLP: a gate times a value, three matrices instead of two;
# - **RoPE** instead of a position table (lesson 24); and no biases, an untied output layer.
#
# We take each new part apart and check it against the old one, count its parameters, and then train
# both blocks on one budget, with the same number of parameters, and report what the measurement says.
#
# Run: `python lessons/25_the_modern_block.py` (add `--no-pause` to run straight through).

# %%
import time

import numpy as np
from _lesson import Lesson
from _plots import lesson25 as plots

from tinytransformer import AdamW, LayerNorm, backend, check_layer
from tinytransformer.data import TextDataset, find_shakespeare
from tinytransformer.layers.activations import GELU, SiLU
from tinytransformer.layers.feedforward import FeedForward, SwiGLUFeedForward, swiglu_hidden
from tinytransformer.layers.rmsnorm import RMSNorm
from tinytransformer.machine import one_blas_thread
from tinytransformer.models import GPT, GPTConfig
from tinytransformer.optim import clip_grad_norm, cosine_lr

lesson = Lesson("25 The modern block", steps=5)
backend.use("numpy", dtype="float64")  # the exact steps run in float64; the training in float32
np.set_printoptions(precision=3, suppress=True)

# Settings: --quick trains for fewer iterations and two seeds, so the lesson runs in seconds.
T, N_LAYER, N_HEAD, N_EMBD = 32, 2, 2, 32
ITERS = 150 if lesson.quick else 800
SEEDS = [0, 1] if lesson.quick else [0, 1, 2]
BATCH, LR = 16, 1e-2
EVAL_EVERY = ITERS // 6                  # the validation loss six times per run

# %% [markdown]
# ## RMSNorm: LayerNorm without the centring
#
# LayerNorm (lesson 10) subtracts each row's mean, then divides by its standard deviation. RMSNorm
# only divides, by the root mean square:
#
# $$\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
# \mathrm{RMS}(x) = \gamma \odot \frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}}$$
#
# If a row already has mean 0, then $\sigma^2 = \mathrm{mean}(x^2)$ and the two are the same function.
# If it does not, LayerNorm removes the shift and RMSNorm keeps it.
#
# Below: rows of $D = 8$ made to have mean 0 exactly, then the same rows shifted by 3; both layers
# fresh ($\gamma = 1$, $\beta = 0$).

# %%
lesson.step("RMSNorm: LayerNorm without the centring")
D = 8
rms, ln = RMSNorm(D), LayerNorm(D)
x = backend.randn((4, D), rng=backend.new_host_rng(0))
centred = x - x.mean(axis=-1, keepdims=True)                         # rows of mean 0
shifted = centred + 3.0
by_hand = shifted / np.sqrt((shifted ** 2).mean(axis=-1, keepdims=True) + rms.eps)
print(f"  a row of mean 0:   RMS {rms(centred)[0]}\n                     LN  {ln(centred)[0]}")
print(f"  the row + 3:       RMS {rms(shifted)[0]}\n                     LN  {ln(shifted)[0]}")
print(f"  parameters: RMSNorm {rms.num_parameters()} (γ), LayerNorm {ln.num_parameters()} (γ and β)")
lesson.check("RMSNorm is x / √(mean(x²) + eps) ⊙ γ (by hand, to 1e-12)",
             np.allclose(rms(shifted), by_hand, atol=1e-12, rtol=0))
lesson.check("on rows of mean 0, RMSNorm and LayerNorm give the same output (to 1e-12)",
             np.allclose(rms(centred), ln(centred), atol=1e-12, rtol=0))
shift_gap = float(np.abs(rms(shifted) - rms(centred)).max())
lesson.check("shift the rows by 3: LayerNorm's output does not move (to 1e-12), RMSNorm's does (by more than 0.5)",
             np.allclose(ln(shifted), ln(centred), atol=1e-12, rtol=0) and shift_gap > 0.5, f"{shift_gap:.2f}")
out = rms(shifted)
lesson.check("RMSNorm's rows have a root mean square of 1 but keep a mean (here above 0.5)",
             np.allclose((out ** 2).mean(axis=-1), 1, atol=1e-5) and (out.mean(axis=-1) > 0.5).all(),
             f"means {out.mean(axis=-1)}")

# %% [markdown]
# Why drop the centring? The paper that proposed RMSNorm (Zhang and Sennrich, 2019) argued that the
# re-scaling, not the re-centring, is what helps training; and one reduction fewer per row is cheaper.
# In a block, the rows that reach the attention and the MLP then keep whatever mean they have.

# %% [markdown]
# ## One term fewer in dx
#
# LayerNorm's backward (lesson 11), with $g = dy \odot \gamma$ and $r = 1/\sqrt{\sigma^2 + \epsilon}$:
#
# $$dx_{\mathrm{LN}} = r\,\big(g - \mathrm{mean}(g) - \hat{x} \odot \mathrm{mean}(g \odot \hat{x})\big)$$
#
# The term $-\mathrm{mean}(g)$ came from the mean $\mu$. RMSNorm has no $\mu$, so it has no such term:
#
# $$dx_{\mathrm{RMS}} = r\,\big(g - \hat{x} \odot \mathrm{mean}(g \odot \hat{x})\big)$$
#
# On rows of mean 0 the two layers have the same $\hat{x}$ and $r$, so their $dx$ should differ by
# exactly $-r \cdot \mathrm{mean}(g)$. And that term is what makes LayerNorm blind to shifts: each row
# of its $dx$ sums to 0 (moving all of a row's features together changes nothing), which RMSNorm's
# does not.

# %%
lesson.step("One term fewer in dx")
dy = backend.randn(centred.shape, rng=backend.new_host_rng(1))
rms(centred)
ln(centred)
dx_rms, dx_ln = rms.backward(dy), ln.backward(dy)
r = 1 / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + rms.eps)
xhat = centred * r
formula = r * (dy - xhat * (dy * xhat).mean(axis=-1, keepdims=True))
error = check_layer(RMSNorm(D), {"x": shifted})
print(f"  dx_LN − dx_RMS, row 0: {(dx_ln - dx_rms)[0]}\n  −r·mean(g),    row 0: {(-r * dy.mean(-1, keepdims=True))[0]}")
print(f"  row sums of dx: LN {dx_ln.sum(axis=-1)}, RMS {dx_rms.sum(axis=-1)}")
print("  RMSNorm against finite differences: " + ", ".join(f"{name} {e:.1e}" for name, e in error.items()))
lesson.check("RMSNorm's dx is r·(g − x̂ ⊙ mean(g ⊙ x̂)) (by hand, to 1e-12)",
             np.allclose(dx_rms, formula, atol=1e-12, rtol=0))
lesson.check("on rows of mean 0, dx_LN − dx_RMS is exactly the missing term −r·mean(g) (to 1e-12)",
             np.allclose(dx_ln - dx_rms, -r * dy.mean(axis=-1, keepdims=True), atol=1e-12, rtol=0))
lesson.check("LayerNorm's dx rows sum to 0 (to 1e-12); RMSNorm's do not (some by more than 0.1)",
             np.allclose(dx_ln.sum(axis=-1), 0, atol=1e-12) and np.abs(dx_rms.sum(axis=-1)).max() > 0.1)
lesson.check("RMSNorm's backward matches finite differences to 1e-8 (dx and dγ, on shifted rows)",
             max(error.values()) < 1e-8, f"largest {max(error.values()):.1e}")

# %% [markdown]
# ## SiLU, and a gate times a value
#
# GPT-2's MLP is $\mathrm{GELU}(x W_1) W_2$: one path through a non-linearity. LLaMA's SwiGLU has two
# paths from $x$, multiplied feature by feature, then a third matrix:
#
# $$\mathrm{SwiGLU}(x) = \big(\mathrm{SiLU}(x W_{\mathrm{gate}}) \odot x W_{\mathrm{up}}\big)
# W_{\mathrm{down}}, \qquad \mathrm{SiLU}(a) = a \cdot \sigma(a)$$
#
# - $x W_{\mathrm{up}}$ is the **value**: linear in $x$;
# - $\mathrm{SiLU}(x W_{\mathrm{gate}})$ is the **gate**: it decides, per hidden feature, how much of
#   the value passes (about 0 for a very negative $a$, about $a$ for a large one).
#
# SiLU looks like GELU (both are $a$ times a smooth step). The output is linear in the value path:
# doubling $W_{\mathrm{up}}$ doubles it exactly; doubling $W_{\mathrm{gate}}$ does not.

# %%
lesson.step("SiLU, and a gate times a value")
a = np.linspace(-6, 6, 1201)
silu, gelu = SiLU()(a), GELU()(a)
print(f"  SiLU: smallest {silu.min():.3f} at a = {a[silu.argmin()]:.2f};  largest |SiLU − GELU| on [−6, 6] "
      f"{np.abs(silu - gelu).max():.3f}")
lesson.check("the library's SiLU is a·σ(a) (to 1e-12)", np.allclose(silu, a / (1 + np.exp(-a)), atol=1e-12, rtol=0))
d, h = 6, 16
ffn = SwiGLUFeedForward(d, h, rng=backend.new_host_rng(2))
x = backend.randn((3, 5, d), rng=backend.new_host_rng(3))
W_gate, W_up, W_down = (ffn.gate_proj.weight.data, ffn.up_proj.weight.data, ffn.down_proj.weight.data)
gate_in = x @ W_gate
by_hand = (gate_in / (1 + np.exp(-gate_in)) * (x @ W_up)) @ W_down
y = ffn(x)
lesson.check("SwiGLUFeedForward is (SiLU(x W_gate) ⊙ x W_up) W_down (by hand, to 1e-12)",
             np.allclose(y, by_hand, atol=1e-12, rtol=0))
ffn.up_proj.weight.data = 2 * W_up
doubled_value = ffn(x)
ffn.up_proj.weight.data, ffn.gate_proj.weight.data = W_up, 2 * W_gate
doubled_gate = ffn(x)
ffn.gate_proj.weight.data = W_gate
lesson.check("doubling the value's W_up doubles the output exactly; doubling the gate's W_gate does not",
             np.allclose(doubled_value, 2 * y, atol=1e-12, rtol=0) and not np.allclose(doubled_gate, 2 * y, atol=1e-3),
             f"gate doubled: output × {np.abs(doubled_gate).sum() / np.abs(y).sum():.2f} on average")
errors = check_layer(SwiGLUFeedForward(d, h, rng=backend.new_host_rng(4)), {"x": x})
lesson.check("SwiGLU's backward matches finite differences to 1e-8 (dx and the three matrices)",
             max(errors.values()) < 1e-8, f"largest {max(errors.values()):.1e}")
lesson.figure(plots.silu_and_gelu(a, silu, gelu), "25_silu_and_gelu")

# %% [markdown]
# ## Three matrices, the same parameters: 2/3 · 4d
#
# GPT-2's MLP has two matrices of $d \times 4d$: $8d^2$ parameters. SwiGLU has three of $d \times h$:
# $3dh$. They are equal when
#
# $$h = \frac{2}{3} \cdot 4d = \frac{8d}{3}$$
#
# So LLaMA's hidden width is 2/3 of GPT's $4d$, rounded up to a multiple of 256 (`swiglu_hidden`): the
# gate costs no extra parameters, only a narrower hidden layer.

# %%
lesson.step("Three matrices, the same parameters: 2/3 · 4d")
d = 48                                                               # 8·48/3 = 128, a whole number
gelu_ffn = FeedForward(d, 4 * d, bias=False)
swiglu_ffn = SwiGLUFeedForward(d, 8 * d // 3)
print(f"  d = {d}: GELU MLP {d}→{4 * d}→{d}: {gelu_ffn.num_parameters():,} parameters;  "
      f"SwiGLU with h = 8d/3 = {8 * d // 3}: {swiglu_ffn.num_parameters():,}")
lesson.check("at h = 8d/3 the three SwiGLU matrices hold exactly the parameters of GPT's two (no biases)",
             gelu_ffn.num_parameters() == swiglu_ffn.num_parameters() == 8 * d * d)
d7 = 4096
h7 = swiglu_hidden(d7)
ratio = 3 * d7 * h7 / (8 * d7 * d7)
print(f"  LLaMA-7B: d = {d7}, h = swiglu_hidden({d7}) = {h7:,} (8d/3 = {8 * d7 / 3:,.1f}, rounded up to a "
      f"multiple of 256);  3dh / 8d² = {ratio:.4f}")
lesson.check(f"LLaMA-7B's hidden width {h7:,} is 8d/3 rounded up to a multiple of 256, and keeps the "
             f"parameters within 1% of GPT's 8d²", h7 == 11008 and h7 % 256 == 0 and 0 <= h7 - 8 * d7 / 3 < 256
             and abs(ratio - 1) < 0.01, f"× {ratio:.4f}")

# %% [markdown]
# ## Two blocks, one budget
#
# Now both blocks learn Tiny Shakespeare, on the same terms:
#
# - **GPT-2 style**: learned positions, LayerNorm, GELU, biases, tied output layer (the `GPTConfig`
#   defaults);
# - **LLaMA style**: `GPTConfig(positional="rope", normalization="rmsnorm", activation="swiglu",
#   bias=False, tie_weights=False)`, with `ffn_hidden` chosen so that the whole model has as many
#   parameters as the GPT-2 one (the untied output layer costs $V \cdot d$, which the position table and
#   the biases it drops nearly pay for).
#
# And a third, to tell the block from the positions: **GPT-2 + RoPE**, GPT-2's block with lesson 24's
# rotary positions (its MLP widened to the same parameter count).
#
# The same 2 layers, 2 heads, $d = 32$, $T = 32$; AdamW at lr 0.01 with warmup and cosine decay, the
# same batches; float32. Each is trained from 2 seeds with `--quick` (150 iterations), 3 without (800).
# The validation loss (on 128 fixed windows) is measured six times per run, and we keep the best; the
# time of every iteration is measured too (on one BLAS thread).

# %%
lesson.step("Two blocks, one budget")
data = TextDataset(find_shakespeare().read_text(encoding="utf-8"))
V = data.tokenizer.vocab_size
STYLES = ("GPT-2", "GPT-2 + RoPE", "LLaMA")


def config(style, seed, ffn_hidden=None):
    base = dict(vocab_size=V, block_size=T, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD, seed=seed)
    if style == "GPT-2":
        return GPTConfig(**base)
    if style == "GPT-2 + RoPE":
        return GPTConfig(**base, positional="rope", ffn_hidden=ffn_hidden)
    return GPTConfig(**base, positional="rope", normalization="rmsnorm", activation="swiglu", bias=False,
                     tie_weights=False, ffn_hidden=ffn_hidden)


def size(style, ffn_hidden=None):
    return GPT(config(style, 0, ffn_hidden)).num_parameters()


target = size("GPT-2")
hidden = {"GPT-2": 4 * N_EMBD}
for style in STYLES[1:]:    # the feed-forward width that brings the model closest to GPT-2's parameters
    hidden[style] = min(range(8, 8 * N_EMBD), key=lambda h: abs(size(style, h) - target))
sizes = {style: size(style, hidden[style] if style != "GPT-2" else None) for style in STYLES}
for style in STYLES:
    print(f"  {style:>12}: ffn_hidden {hidden[style]:>3}, {sizes[style]:,} parameters")
lesson.check("the three models have the same number of parameters, to 0.5%",
             max(abs(n / target - 1) for n in sizes.values()) < 0.005,
             ", ".join(f"{n / target - 1:+.2%}" for n in sizes.values()))


def train(style, seed):
    """-> (validation losses every EVAL_EVERY iterations, median ms per iteration)."""
    model = GPT(config(style, seed, hidden[style] if style != "GPT-2" else None))
    optimizer = AdamW(model.named_parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.1)
    rng, losses, times = np.random.default_rng(seed), [], []
    for it in range(ITERS):
        x, y = data.get_batch("train", BATCH, T, rng)
        start = time.perf_counter()
        model.zero_grad()
        model(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step(cosine_lr(it, lr=LR, min_lr=LR / 10, warmup_iters=20, lr_decay_iters=ITERS))
        times.append(time.perf_counter() - start)
        if (it + 1) % EVAL_EVERY == 0:
            losses.append(float(model(val_x, val_y)[1]))
    return np.array(losses), 1000 * float(np.median(times))


with backend.using("float32"), one_blas_thread():
    val_x, val_y = data.get_batch("val", 128, T, np.random.default_rng(1000))
    runs = {(style, seed): train(style, seed) for seed in SEEDS for style in STYLES}
best = {key: float(losses.min()) for key, (losses, _) in runs.items()}
ms = {key: run[1] for key, run in runs.items()}
print(f"  best val loss and ms per iteration (median), {ITERS} iterations:")
for style in STYLES:
    print(f"    {style:>12}: best val " + ", ".join(f"{best[style, seed]:.3f}" for seed in SEEDS)
          + "   ms/iter " + ", ".join(f"{ms[style, seed]:.1f}" for seed in SEEDS) + f"   (seeds {SEEDS})")
gap = {seed: best["GPT-2", seed] - best["LLaMA", seed] for seed in SEEDS}
block_gap = {seed: best["GPT-2 + RoPE", seed] - best["LLaMA", seed] for seed in SEEDS}
lesson.check("LLaMA style reaches a lower best val loss than GPT-2 style, at every seed",
             all(g > 0 for g in gap.values()), ", ".join(f"by {g:.3f}" for g in gap.values()))
lesson.check("and lower than GPT-2's block with RoPE too: the block itself helps here, not only the positions "
             "(every seed)", all(g > 0 for g in block_gap.values()), ", ".join(f"by {g:.3f}" for g in block_gap.values()))
curves = {style: np.array([runs[style, seed][0] for seed in SEEDS]) for style in STYLES}
lesson.figure(plots.two_blocks(curves, EVAL_EVERY, {style: [ms[style, seed] for seed in SEEDS] for style in STYLES}),
              "25_two_blocks")

# %%
share = np.mean([(best["GPT-2", seed] - best["GPT-2 + RoPE", seed]) / gap[seed] for seed in SEEDS])
lesson.say(f"""
    Measured here, at {ITERS} iterations of a {target:,}-parameter model: LLaMA's block ahead at every seed,
    by {np.mean(list(gap.values())):.3f} nats on average; RoPE alone (GPT-2 + RoPE) accounts for
    {share:.0%} of that gap, RMSNorm, SwiGLU, no biases and the untied output layer together for the rest.
    Median ms per iteration over the seeds: """ + ", ".join(f"{style} {np.median([ms[style, seed] for seed in SEEDS]):.1f}"
                                                          for style in STYLES) + """. RMSNorm saves a
    reduction and RoPE adds the turning of q and k, but at this size such differences are smaller than
    what a shared CPU changes from run to run, so the lesson ranks nothing by time.""")

# %% [markdown]
# What this does and does not show:
#
# - One small model, one budget, one learning rate, 2–3 seeds. It shows that the modern block trains
#   well here, with the same parameters; it does not rank the choices in general.
# - The papers behind each change measured them at scale: RMSNorm as good as LayerNorm and cheaper
#   (Zhang and Sennrich, 2019), the GLU variants ahead of GELU at equal parameters (Shazeer, 2020), and
#   LLaMA (2023) put them together. When a lecture says the modern block is better, that is the
#   evidence it rests on.
# - CS224N's point stands: the 2017 block with small changes (the norm, the non-linearity of the
#   feed-forward, the positions) is still the Transformer. Lesson 12 assembled GPT-2's; this one is the
#   same wiring with three parts swapped.

# %%
lesson.done()
