# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 11: backpropagation by hand, and the gradient check that proves it
#
# Every layer of tinytransformer has a hand-written backward. Given $dy = \partial L/\partial y$, the
# gradient of the loss with respect to the layer's output, it:
#
# - returns $dx = \partial L/\partial x$;
# - adds $\partial L/\partial \theta$ into each parameter's `.grad`.
#
# We derive each backward briefly (Linear, LayerNorm, softmax, attention, GELU, cross-entropy), run it,
# and compare it with finite differences in float64. For a fixed random $g$, let
# $f(x) = \sum y(x) \odot g$. Then $\partial f/\partial y = g$, so `backward(g)` must equal
# $\partial f/\partial x$, which a centred difference measures:
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}$$
#
# The relative error between the analytic gradient $a$ and the numerical one $n$:
#
# $$\frac{\|a - n\|}{\|a\| + \|n\|}$$
#
# A correct backward agrees to about $10^{-10}$; a wrong one is off by about $10^{-1}$. Nothing in between
# is hard to tell.
#
# Run: `python lessons/11_backprop_by_hand.py` (add `--no-pause` to run straight through).

# %%
import numpy as np
from _lesson import Lesson
from _plots import lesson11 as plots

from tinytransformer import (GELU, CrossEntropyLoss, LayerNorm, Linear, MultiHeadAttention,
                             ScaledDotProductAttention, backend, causal_mask, check_layer, masked_softmax,
                             numerical_gradient, padding_mask, relative_error)
from tinytransformer.layers.attention import softmax_backward

lesson = Lesson("11 Backpropagation by hand", steps=11)
# With --exercise, your backwards (lessons/exercises/) run in place of the library's, in this order.
Linear.backward = lesson.exercise("linear_backward", Linear.backward)
LayerNorm.backward = lesson.exercise("layernorm_backward", LayerNorm.backward)
ScaledDotProductAttention.backward = lesson.exercise("attention_backward", ScaledDotProductAttention.backward)
MultiHeadAttention.backward = lesson.exercise("multi_head_backward", MultiHeadAttention.backward)
GELU.derivative = lesson.exercise("gelu_derivative", GELU.derivative)
CrossEntropyLoss.backward = lesson.exercise("cross_entropy_backward", CrossEntropyLoss.backward)

TOL = 1e-8           # a correct backward in float64 lands near 1e-10, two orders below this
results = {}         # "layer: tensor" -> relative error, for the figure


def rng(seed):
    return backend.new_host_rng(seed)


def record(layer_name, errors):
    """Print a layer's errors, one per tensor, and keep them for the bar chart."""
    for tensor, error in errors.items():
        results[f"{layer_name}: {tensor}"] = error
        print(f"    {layer_name:<22} d{tensor:<16} relative error {error:.1e}")
    return max(errors.values())


# %% [markdown]
# ## Why float64
#
# Why not check gradients in float32, the training default? A centred difference has two errors:
#
# - **truncation**, about $h^2 f'''/6$: smaller for smaller $h$;
# - **rounding**, about $\epsilon |f|/h$, where $\epsilon$ is the machine epsilon: larger for smaller $h$.
#
# In float32 ($\epsilon \approx 10^{-7}$) the best $h$ still leaves an error near $10^{-5}$: too large to
# tell a subtle mistake from noise. In float64 ($\epsilon \approx 2 \cdot 10^{-16}$), $h = 10^{-5}$ gives
# about $10^{-10}$. So the checker refuses float32 arrays.

# %%
lesson.step("Why float64")
x32 = backend.randn((2, 3), dtype="float32")                          # float32, the training default
try:
    numerical_gradient(lambda: (x32 ** 2).sum(), x32)
    refused = False
except TypeError as err:
    refused = True
    print(f"  numerical_gradient on float32: TypeError: {str(err)[:70]}...")
lesson.check("the gradient checker refuses float32 input", refused)
print(f"  machine epsilon: float32 {np.finfo(np.float32).eps:.1e}, float64 {np.finfo(np.float64).eps:.1e}")

backend.set_default_dtype("float64")  # from here on every array, and so every check, is float64

# %% [markdown]
# From here on every array is float64 (`backend.set_default_dtype`), and so is every check.

# %% [markdown]
# ## Linear: y = xW + b
#
# What are the three gradients of a linear layer? Write one output:
#
# $$y_{nj} = \sum_i x_{ni} W_{ij} + b_j$$
#
# Differentiate, then write each sum as one matrix product:
#
# - $\partial L/\partial W_{ij} = \sum_n x_{ni}\, dy_{nj}$, that is $dW = x^\top dy$ (the rows $n$ summed);
# - $db = \sum_n dy_n$;
# - $\partial L/\partial x_{ni} = \sum_j dy_{nj} W_{ij}$, that is $dx = dy\, W^\top$.
#
# The forward keeps $x$ for $dW$.
#
# Shapes are the check you can do in your head: $dW$ has $W$'s shape `[in, out]`. But a **square** $W$
# hides a missing transpose: $dy\, W$ has the shape of $dy\, W^\top$. So the first check runs on a square
# $W$ (4 → 4), where only the numbers can tell.

# %%
lesson.step("Linear: y = xW + b")
square = Linear(4, 4, rng=rng(16))                                 # in = out: dy W fits where dy Wᵀ does
worst = record("Linear (square W)", check_layer(square, {"x": backend.randn((2, 5, 4), rng=rng(17))}))
lesson.check(f"on a square W (4 → 4) Linear's backward matches finite differences to {TOL:g}", worst < TOL,
             f"worst {worst:.1e}")
linear = Linear(4, 3, rng=rng(0))
x = backend.randn((2, 5, 4), rng=rng(1))                           # [B, T, in]
dy = backend.randn((2, 5, 3), rng=rng(2))                          # [B, T, out]
linear.zero_grad()
linear(x)
dx = linear.backward(dy)
x2, dy2 = x.reshape(-1, 4), dy.reshape(-1, 3)                      # [N, in], [N, out]
by_hand = {"x": dy @ linear.weight.data.T, "weight": x2.T @ dy2, "bias": dy2.sum(axis=0)}
from_layer = {"x": dx, "weight": linear.weight.grad, "bias": linear.bias.grad}
for name, value in by_hand.items():
    shape = str(tuple(value.shape))
    print(f"    d{name:<7} shape {shape:<10} by hand vs library: max |diff| "
          f"{float(abs(value - from_layer[name]).max()):.1e}")
lesson.check("the three formulas give the library's gradients",
             all(np.allclose(by_hand[n], from_layer[n], rtol=1e-12, atol=1e-12) for n in by_hand))
worst = record("Linear", check_layer(linear, {"x": x}))
lesson.check(f"Linear's backward matches finite differences to {TOL:g}", worst < TOL,
             f"worst {worst:.1e}")

# %% [markdown]
# ## Gradients add up: two backwards in a row
#
# Does a backward set `.grad`, or add to it? It **adds** (`+=`), and it must:
#
# - the gradient of a weight used twice is the sum of its two shares;
# - training with two micro-batches per step runs two backwards before one update.
#
# A backward that assigns keeps only the last share. We run two micro-batches with no `zero_grad` in
# between; the weight's gradient should be
#
# $$dW = x_1^\top dy_1 + x_2^\top dy_2$$

# %%
lesson.step("Gradients add up: two backwards in a row")
x_a, x_b = backend.randn((3, 4), rng=rng(18)), backend.randn((2, 4), rng=rng(19))   # two micro-batches
dy_a, dy_b = backend.randn((3, 3), rng=rng(20)), backend.randn((2, 3), rng=rng(21))
linear.zero_grad()
for x_part, dy_part in ((x_a, dy_a), (x_b, dy_b)):                 # no zero_grad in between
    linear(x_part)
    linear.backward(dy_part)
summed = {"weight": x_a.T @ dy_a + x_b.T @ dy_b, "bias": dy_a.sum(axis=0) + dy_b.sum(axis=0)}
print(f"    two backwards in a row: dW vs x₁ᵀ dy₁ + x₂ᵀ dy₂: max |diff| "
      f"{float(abs(linear.weight.grad - summed['weight']).max()):.1e}")
lesson.check("two backwards in a row add up: dW = x₁ᵀ dy₁ + x₂ᵀ dy₂, db likewise",
             np.allclose(linear.weight.grad, summed["weight"], rtol=1e-12, atol=1e-12)
             and np.allclose(linear.bias.grad, summed["bias"], rtol=1e-12, atol=1e-12))

# %% [markdown]
# ## LayerNorm: y = γ ⊙ x̂ + β
#
# The forward, per row of $D$ features:
#
# $$\hat{x} = (x - \mu)\, r, \qquad r = 1/\sqrt{\sigma^2 + \epsilon}, \qquad y = \gamma \odot \hat{x} + \beta$$
#
# The parameters are easy, as for any scale and shift: $d\gamma = \sum_{\text{rows}} dy \odot \hat{x}$
# and $d\beta = \sum_{\text{rows}} dy$.
#
# For $x$, let $g = dy \odot \gamma$, the gradient reaching $\hat{x}$. But $\hat{x}$ depends on $x$ three
# ways: directly, and through $\mu$ and $\sigma^2$, which depend on the whole row:
#
# $$\partial \mu/\partial x_i = 1/D, \qquad \partial \sigma^2/\partial x_i = 2(x_i - \mu)/D$$
#
# Summing the three paths, and using $r$:
#
# $$dx = r \cdot \left(g - \mathrm{mean}(g) - \hat{x} \odot \mathrm{mean}(g \odot \hat{x})\right)$$
#
# The two subtracted terms are the paths through $\mu$ and $\sigma$. Forget them (treat $\mu$ and
# $\sigma$ as constants) and the backward is wrong: step 10 does exactly that.
#
# $\gamma$ and $\beta$ are set away from 1 and 0, so that their gradients are tested fully. And as for
# Linear, $d\gamma$ and $d\beta$ are **added** into `.grad`: two backwards in a row must give the sum.

# %%
lesson.step("LayerNorm: y = γ ⊙ x̂ + β")
layer_norm = LayerNorm(6)
layer_norm.weight.data[...] = backend.randn(6, rng=rng(3))        # γ, β away from 1, 0 so that
layer_norm.bias.data[...] = backend.randn(6, rng=rng(4))          # their gradients are tested fully
x_ln = backend.randn((2, 4, 6), rng=rng(5)) * 3.0 + 1.0
worst = record("LayerNorm", check_layer(layer_norm, {"x": x_ln}))
lesson.check(f"LayerNorm's backward matches finite differences to {TOL:g}", worst < TOL,
             f"worst {worst:.1e}")
x_a, x_b = x_ln[:1], x_ln[1:]                                      # two micro-batches
dy_a, dy_b = backend.randn(x_a.shape, rng=rng(28)), backend.randn(x_b.shape, rng=rng(29))
shares = []
for x_part, dy_part in ((x_a, dy_a), (x_b, dy_b)):                 # each backward on its own
    layer_norm.zero_grad()
    layer_norm(x_part)
    layer_norm.backward(dy_part)
    shares.append((layer_norm.weight.grad.copy(), layer_norm.bias.grad.copy()))
layer_norm.zero_grad()
for x_part, dy_part in ((x_a, dy_a), (x_b, dy_b)):                 # then both, no zero_grad in between
    layer_norm(x_part)
    layer_norm.backward(dy_part)
lesson.check("two backwards in a row add up: dγ and dβ are the sums of each backward's (+=, not =)",
             np.allclose(layer_norm.weight.grad, shares[0][0] + shares[1][0], rtol=1e-12, atol=1e-12)
             and np.allclose(layer_norm.bias.grad, shares[0][1] + shares[1][1], rtol=1e-12, atol=1e-12))

# %% [markdown]
# ## Softmax along a row
#
# $w = \mathrm{softmax}(s)$ along the last axis: $w_i = e^{s_i} / \sum_j e^{s_j}$. Its derivative:
#
# $$\frac{\partial w_i}{\partial s_j} = w_i (\delta_{ij} - w_j)$$
#
# Multiply by $dw_i$ and sum over $i$:
#
# $$ds_j = w_j \left(dw_j - \sum_i dw_i w_i\right), \quad \text{that is} \quad
# ds = w \odot (dw - \mathrm{rowsum}(dw \odot w))$$
#
# No $D \times D$ Jacobian is ever built.
#
# What about a masked position? It has $w = 0$, so it gets $ds = 0$: no gradient flows to a score that was
# not allowed to matter. We check it under a causal mask.

# %%
lesson.step("Softmax along a row")
scores = backend.randn((3, 5), rng=rng(6)) * 2.0
dweights = backend.randn((3, 5), rng=rng(7))
mask = causal_mask(3, past=2)                                      # [3, 5]: row t sees keys 0 .. 2 + t
weights = masked_softmax(scores, mask)
dscores = softmax_backward(weights, dweights)
numeric = numerical_gradient(lambda: (masked_softmax(scores, mask) * dweights).sum(), scores)
worst = record("softmax (masked)", {"s": relative_error(dscores, numeric)})
lesson.check(f"softmax's backward matches finite differences to {TOL:g}", worst < TOL, f"{worst:.1e}")
lesson.check("masked scores get exactly zero gradient", bool((dscores[~mask] == 0).all()))

# %% [markdown]
# ## Attention: out = softmax(QKᵀ/√d_k) V
#
# The forward is three steps:
#
# $$S = QK^\top/\sqrt{d_k}, \qquad W = \mathrm{softmax}(S), \qquad \mathrm{out} = WV$$
#
# So the backward is the three steps reversed:
#
# 1. $dW = d\mathrm{out}\, V^\top$ and $dV = W^\top d\mathrm{out}$: the matrix-product rule, as Linear's
#    (step 2);
# 2. $dS$ = the softmax backward of $dW$ (step 5);
# 3. $dQ = dS\, K/\sqrt{d_k}$ and $dK = dS^\top Q/\sqrt{d_k}$.
#
# What does a key that no query may see, such as padding, receive? Its whole column has $W = 0$, so its
# $dK$ and $dV$ should be exactly 0: not small, 0. Sequence 1 below has 2 real tokens and 2 padded ones.

# %%
lesson.step("Attention: out = softmax(QKᵀ/√d_k) V")
q, k, v = (backend.randn((2, 2, 4, 3), rng=rng(s)) for s in (8, 9, 10))   # [B, h, T, d_k]
is_pad = backend.asarray(np.array([[False] * 4, [False, False, True, True]]))  # sequence 1: 2 tokens
padded_mask = causal_mask(4) & padding_mask(is_pad)                # [2, 1, 4, 4]
attention = ScaledDotProductAttention()
attention(q, k, v, padded_mask)
dq, dk, dv = attention.backward(backend.randn((2, 2, 4, 3), rng=rng(22)))
print(f"    padded keys (sequence 1, keys 2 and 3): max |dK| {float(abs(dk[1, :, 2:]).max()):.0e}, "
      f"max |dV| {float(abs(dv[1, :, 2:]).max()):.0e}; other keys: max |dV| {float(abs(dv[:, :, :2]).max()):.1f}")
lesson.check("keys masked for every query (padding) get dK and dV exactly 0",
             bool((dk[1, :, 2:] == 0).all() and (dv[1, :, 2:] == 0).all()))
worst = record("attention (causal)", check_layer(ScaledDotProductAttention(), {"q": q, "k": k, "v": v},
                                                 {"mask": causal_mask(4)}))
lesson.check(f"scaled dot-product attention's backward matches to {TOL:g}", worst < TOL,
             f"worst {worst:.1e}")

# %% [markdown]
# ## Multi-head attention: projections and heads
#
# Multi-head attention adds four projections around that core ($W_q$, $W_k$, $W_v$ and the output's
# $W_o$). Two things to get right:
#
# - In self-attention $x$ feeds $Q$, $K$ and $V$, so $dx$ is the **sum** of the three gradients.
# - Splitting into heads and merging them back only move numbers. So their backwards only move the
#   gradients back, each number to the place it came from.
#
# A gradient sent to the wrong column shows up only with several heads of $d_k \neq T$. So we check 3 heads
# of $d_k = 4$ over $T = 5$ positions, with $Q$, $K$, $V$ projected one by one, and as cross-attention.
# Then the usual layer: $dx$ and all 8 parameters.

# %%
lesson.step("Multi-head attention: projections and heads")
# The heads' reshapes, reversed: 3 heads of d_k = 4 over T = 5 positions (d_k ≠ T, so that a transpose
# of the wrong axes cannot hide behind a shape), with Q, K, V projected one by one, and as cross-attention.
separate = MultiHeadAttention(12, 3, rng=rng(23))
separate.fuse_qkv = False                                          # q_proj, k_proj, v_proj one by one
heads_errors = check_layer(separate, {"x": backend.randn((2, 5, 12), rng=rng(24))}, {"mask": causal_mask(5)})
cross_errors = check_layer(MultiHeadAttention(12, 3, rng=rng(25)),
                           {"x": backend.randn((2, 5, 12), rng=rng(26)),
                            "context": backend.randn((2, 3, 12), rng=rng(27))})
worst = max(max(heads_errors.values()), max(cross_errors.values()))
results["3 heads, d_k = 4, T = 5: worst"] = worst
print(f"    {'3 heads (d_k 4, T 5)':<22} self-attention worst {max(heads_errors.values()):.1e} "
      f"(dx {heads_errors['x']:.1e}); cross-attention worst {max(cross_errors.values()):.1e} "
      f"(dcontext {cross_errors['context']:.1e})")
lesson.check(f"with 3 heads of d_k = 4 over 5 positions every head's gradient goes back to its own columns: "
             f"self- and cross-attention match to {TOL:g}", worst < TOL, f"worst {worst:.1e}")
mha_errors = check_layer(MultiHeadAttention(8, 2, rng=rng(11)),
                         {"x": backend.randn((2, 4, 8), rng=rng(12))}, {"mask": causal_mask(4)})
worst = max(mha_errors.values())
results["multi-head attention: worst of 9"] = worst
print(f"    {'multi-head attention':<22} {len(mha_errors)} tensors (x and 8 parameters), worst relative "
      f"error {worst:.1e}; dk_proj.bias: {mha_errors['k_proj.bias']}")
lesson.check(f"multi-head attention's backward matches to {TOL:g} for x and all 8 parameters", worst < TOL)

# %% [markdown]
# The key projection's bias gets a gradient of exactly 0: adding the same number to every score of a row
# does not change the softmax. The checker reports two zeros as error 0.

# %% [markdown]
# ## GELU
#
# $$y = x\, (1 + \tanh u)/2, \qquad u = \sqrt{2/\pi}\, (x + 0.044715\, x^3)$$
#
# GELU acts element by element, so $dx = dy \odot y'(x)$. The product rule, then the chain rule through
# $\tanh$ and $u$:
#
# $$y' = (1 + \tanh u)/2 + x\, (1 - \tanh^2 u)/2 \cdot \sqrt{2/\pi}\, (1 + 3 \cdot 0.044715\, x^2)$$
#
# The library computes both through a sigmoid, $\sigma(z) = 1/(1 + e^{-z})$: $(1 + \tanh u)/2 = \sigma(2u)$,
# so with $s = \sigma(2u)$ the same two lines read $y = x\,s$ and $y' = s\,(1 + 2x\,u'\,(1 - s))$, where
# $u' = \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\, x^2)$ (one exp instead of one tanh, and no $1 + \tanh u$
# that cancels for negative $x$). The forward computes $y'(x)$ while $x$ and $s$ are at hand
# (`GELU.derivative(x, s)`) and keeps only it: the backward is then one multiplication, and the layer
# holds one array instead of two.

# %%
lesson.step("GELU")
worst = record("GELU", check_layer(GELU(), {"x": backend.randn((3, 7), rng=rng(13)) * 2.0}))
lesson.check(f"GELU's backward matches finite differences to {TOL:g}", worst < TOL, f"{worst:.1e}")

# %% [markdown]
# ## Cross-entropy
#
# The mean over $N$ targets of the negative log-probability of the target:
#
# $$L = \frac{1}{N} \sum_n \left[\log \sum_v e^{z_{nv}} - z_{n, y_n}\right]$$
#
# Differentiate with respect to $z_{nv}$:
#
# - $\log \sum_v e^{z_{nv}}$ gives $\mathrm{softmax}(z_n)_v$;
# - $-z_{n, y_n}$ gives $-1$ at $v = y_n$.
#
# So the gradient is the predicted distribution minus the true one:
#
# $$dz = \frac{\mathrm{softmax}(z) - \mathrm{onehot}(y)}{N}$$
#
# The forward keeps $\mathrm{softmax}(z)$, and the backward starts from it. Targets are integers: no
# gradient. A target equal to `ignore_index` (-100) is left out: its row gets 0, and $N$ counts only the
# kept ones.

# %%
lesson.step("Cross-entropy")
loss_fn = CrossEntropyLoss()
logits = backend.randn((2, 3, 5), rng=rng(14))                     # [B, T, V]
targets = backend.asarray(np.array([[0, 1, 2], [3, 4, 0]]))        # [B, T]
loss = loss_fn(logits, targets)
dz = loss_fn.backward()
z, y = logits.reshape(-1, 5), targets.reshape(-1)
probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
by_hand = (probs - np.eye(5)[y]) / len(y)
print(f"    loss {float(loss):.4f}; (softmax − onehot)/N vs library: max |diff| "
      f"{float(abs(by_hand - dz.reshape(-1, 5)).max()):.1e}; each row of dz sums to "
      f"{float(abs(dz.sum(-1)).max()):.0e}")
lesson.check("dz = (softmax(z) − onehot(y)) / N",
             np.allclose(by_hand, dz.reshape(-1, 5), rtol=1e-12, atol=1e-15))
worst = record("cross-entropy", check_layer(loss_fn, {"logits": logits, "targets": targets}))
lesson.check(f"cross-entropy's backward matches finite differences to {TOL:g}", worst < TOL, f"{worst:.1e}")
padded = backend.asarray(np.array([[0, 1, -100], [3, -100, 0]]))  # ignore_index: N counts kept ones
ignored = check_layer(loss_fn, {"logits": logits, "targets": padded})["logits"]
print(f"    with two targets ignored (-100): relative error {ignored:.1e}")
lesson.check(f"... and with ignored targets (their rows get 0, N = 4 kept), to {TOL:g}", ignored < TOL,
             f"{ignored:.1e}")

# %% [markdown]
# ## A wrong backward is caught
#
# Does the check really catch mistakes? Two classic ones, written as subclasses whose forward is right and
# backward is wrong:
#
# - **LayerNorm treating $\mu$ and $\sigma$ as constants**: $dx = r \cdot g$, forgetting both subtracted
#   terms (step 4);
# - **GELU treating $\tanh u$ as a constant**: $y' = (1 + \tanh u)/2 = s$, forgetting the derivative
#   of $\tanh$ (of $s = \sigma(2u)$ in the library's form).
#
# Both look plausible, and both have the right shapes.

# %%
lesson.step("A wrong backward is caught")

class LayerNormConstantSigma(LayerNorm):
    def backward(self, dy):
        leading = tuple(range(dy.ndim - 1))
        self.weight.grad += (dy * self.xhat).sum(axis=leading)
        self.bias.grad += dy.sum(axis=leading)
        return self.rstd * (dy * self.weight.data)                 # WRONG: misses the paths through μ, σ

class GELUConstantTanh(GELU):
    def derivative(self, x, s):
        return s.copy()                                            # WRONG: (1 + tanh u)/2 = s, misses x·ds/dx

wrong_ln = LayerNormConstantSigma(6)
wrong_ln.weight.data[...] = layer_norm.weight.data
wrong_ln.bias.data[...] = layer_norm.bias.data
ln_errors = check_layer(wrong_ln, {"x": x_ln})
gelu_errors = check_layer(GELUConstantTanh(), {"x": backend.randn((3, 7), rng=rng(13)) * 2.0})
wrong = {}
for tensor, error in ln_errors.items():
    wrong[f"WRONG LayerNorm (σ constant): {tensor}"] = error
    print(f"    LayerNorm, σ constant   d{tensor:<8} relative error {error:.1e}")
wrong["WRONG GELU (tanh constant): x"] = gelu_errors["x"]
print(f"    GELU, tanh constant     dx        relative error {gelu_errors['x']:.1e}")
lesson.check("the wrong LayerNorm dx is caught (error > 1e-2)", ln_errors["x"] > 1e-2,
             f"{ln_errors['x']:.2f}")
lesson.check("... while its correct dγ and dβ still pass",
             max(ln_errors["weight"], ln_errors["bias"]) < TOL)
lesson.check("the wrong GELU dx is caught (error > 1e-2)", gelu_errors["x"] > 1e-2,
             f"{gelu_errors['x']:.2f}")

# %% [markdown]
# The check finds both, and it names the tensor: LayerNorm's $d\gamma$ and $d\beta$ still pass, only its
# $dx$ is off.

# %% [markdown]
# ## Choosing h
#
# Which step $h$ should the check use? Sweep it for GELU's gradient:
#
# - for large $h$ the truncation error falls as $h^2$: 100× per decade;
# - for small $h$ rounding takes over, and the error grows as $1/h$.
#
# The minimum should sit near $h \approx \epsilon^{1/3}$, about $10^{-5}$ in float64: the checker's
# default.

# %%
lesson.step("Choosing h")
x_gelu = backend.randn((3, 7), rng=rng(13)) * 2.0
g_gelu = backend.randn((3, 7), rng=rng(15))
gelu = GELU()
gelu(x_gelu)
analytic = gelu.backward(g_gelu)
hs = 10.0 ** -np.arange(1, 13)
h_errors = np.array([relative_error(analytic, numerical_gradient(lambda: (gelu(x_gelu) * g_gelu).sum(),
                                                                 x_gelu, h=h)) for h in hs])
for h, error in zip(hs, h_errors):
    print(f"    h = {h:.0e}: relative error {error:.1e}")
best = hs[h_errors.argmin()]
slope_large = np.log10(h_errors[1] / h_errors[2])                  # per decade between h = 1e-2 and 1e-3
lesson.check("the best h lies between 1e-6 and 1e-4", 1e-6 <= best <= 1e-4, f"best h = {best:.0e}")
lesson.check("for large h the error falls about 100× per decade (truncation ∝ h²)",
             1.7 < slope_large < 2.3, f"{slope_large:.2f} decades per decade")
lesson.figure(plots.gradient_check_errors(results, wrong, TOL, hs, h_errors), "11_gradient_check_errors")

# %% [markdown]
# Left: every backward of this lesson against finite differences, one bar per tensor; the red bars, above
# the dashed line at $10^{-8}$, are the wrong backwards of step 10. Right: the sweep over $h$, with the
# checker's default $h = 10^{-5}$ dotted.

# %%
lesson.done()
