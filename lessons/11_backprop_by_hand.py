# %% [markdown]
"""Lesson 11: Backpropagation by hand, and the gradient check that proves it.

Every layer of tinytransformer has a hand-written backward: given dy = ∂L/∂y, the gradient of the loss
with respect to the layer's output, it returns dx = ∂L/∂x and adds ∂L/∂θ into each parameter's .grad.
This lesson derives each backward briefly (Linear, LayerNorm, softmax, attention, GELU, cross-entropy),
runs it, and compares it with finite differences in float64:

    f(x) = Σ y(x) ⊙ g  for a fixed random g,   so ∂f/∂y = g  and  backward(g) must equal ∂f/∂x,
    ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h
    relative error between analytic a and numerical n:  ‖a − n‖ / (‖a‖ + ‖n‖)

A correct backward agrees to ~1e-10; a wrong one is off by ~1e-1. Nothing in between is hard to tell.

Run:  python lessons/11_backprop_by_hand.py        (add --no-pause to run straight through)
"""

# %%
import numpy as np

from _lesson import Lesson

from tinytransformer import (GELU, CrossEntropyLoss, LayerNorm, Linear, MultiHeadAttention,
                             ScaledDotProductAttention, backend, causal_mask, check_layer, masked_softmax,
                             numerical_gradient, padding_mask, relative_error)
from tinytransformer.layers.attention import softmax_backward

lesson = Lesson("11 Backpropagation by hand", __doc__, steps=9)
# With --exercise, your backwards (lessons/exercises/) run in place of the library's, in this order.
Linear.backward = lesson.exercise("linear_backward", Linear.backward)
LayerNorm.backward = lesson.exercise("layernorm_backward", LayerNorm.backward)
ScaledDotProductAttention.backward = lesson.exercise("attention_backward", ScaledDotProductAttention.backward)
MultiHeadAttention.backward = lesson.exercise("multi_head_backward", MultiHeadAttention.backward)
GELU.backward = lesson.exercise("gelu_backward", GELU.backward)
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


# %%
lesson.step("Why float64", """
    A centred difference has two errors: truncation, about h²·f‴/6, and rounding, about ε·|f|/h, where
    ε is the machine epsilon. In float32 (ε ≈ 1e-7) the best h leaves an error near 1e-5, too large to
    tell a subtle mistake from noise; in float64 (ε ≈ 2e-16) h = 1e-5 gives ~1e-10. So from the next
    step on every array is float64 (backend.set_default_dtype), and the checker refuses float32 arrays.""")
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
# %%
lesson.step("Linear: y = x W + b", """
    Each output y_nj = Σ_i x_ni W_ij + b_j. So ∂L/∂W_ij = Σ_n x_ni dy_nj, that is dW = xᵀ dy (the
    rows n summed); db = Σ_n dy_n; and ∂L/∂x_ni = Σ_j dy_nj W_ij, that is dx = dy Wᵀ. The forward
    keeps x for dW. Shapes are the check you can do in your head: dW has W's shape [in, out]; but a
    square W hides a missing transpose (dy W has the shape of dy Wᵀ), so the numbers are checked on
    one too. And backward ADDS into .grad (+=): the gradient of a weight used twice is the sum of its
    two shares, and training with two micro-batches per step runs two backwards before one update.
    A backward that assigns keeps only the last share.""")
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

# %%
lesson.step("LayerNorm: y = γ ⊙ x̂ + β,  x̂ = (x − μ) r,  r = 1/√(σ² + eps)", """
    dγ = Σ_rows dy ⊙ x̂ and dβ = Σ_rows dy, as for any scale and shift. For x, let g = dy ⊙ γ (the
    gradient reaching x̂). x̂ depends on x directly and through μ and σ², which depend on the whole
    row: ∂μ/∂x_i = 1/D and ∂σ²/∂x_i = 2(x_i − μ)/D. Summing the three paths and using r gives
    dx = r · (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)). The two subtracted terms are the paths through μ
    and σ: forget them (treat μ, σ as constants) and the backward is wrong; step 8 does exactly
    that.""")
layer_norm = LayerNorm(6)
layer_norm.weight.data[...] = backend.randn(6, rng=rng(3))        # γ, β away from 1, 0 so that
layer_norm.bias.data[...] = backend.randn(6, rng=rng(4))          # their gradients are tested fully
x_ln = backend.randn((2, 4, 6), rng=rng(5)) * 3.0 + 1.0
worst = record("LayerNorm", check_layer(layer_norm, {"x": x_ln}))
lesson.check(f"LayerNorm's backward matches finite differences to {TOL:g}", worst < TOL,
             f"worst {worst:.1e}")

# %%
lesson.step("Softmax: w = softmax(s) along the last axis", """
    w_i = e^{s_i} / Σ_j e^{s_j} gives ∂w_i/∂s_j = w_i (δ_ij − w_j). Multiplying by dw and summing
    over i: ds_j = w_j (dw_j − Σ_i dw_i w_i), or ds = w ⊙ (dw − rowsum(dw ⊙ w)). No D×D
    Jacobian is ever built. A masked position has w = 0, so it gets ds = 0: no gradient flows to a score that
    was not allowed to matter.""")
scores = backend.randn((3, 5), rng=rng(6)) * 2.0
dweights = backend.randn((3, 5), rng=rng(7))
mask = causal_mask(3, past=2)                                      # [3, 5]: row t sees keys 0 .. 2 + t
weights = masked_softmax(scores, mask)
dscores = softmax_backward(weights, dweights)
numeric = numerical_gradient(lambda: (masked_softmax(scores, mask) * dweights).sum(), scores)
worst = record("softmax (masked)", {"s": relative_error(dscores, numeric)})
lesson.check(f"softmax's backward matches finite differences to {TOL:g}", worst < TOL, f"{worst:.1e}")
lesson.check("masked scores get exactly zero gradient", bool((dscores[~mask] == 0).all()))

# %%
lesson.step("Attention: out = softmax(Q Kᵀ/√d_k) V", """
    The forward is three steps, S = QKᵀ/√d_k, W = softmax(S), out = W V, so the backward is three
    steps reversed: dW = dout Vᵀ and dV = Wᵀ dout (the matmul rule, as Linear), dS = softmax
    backward of dW (step 4), then dQ = dS K/√d_k and dK = dSᵀ Q/√d_k. Multi-head attention adds the
    four projections around it, and in self-attention x feeds Q, K and V, so dx is the sum of the
    three gradients. (The key projection's bias gets a gradient of exactly 0: adding the same number
    to every score of a row does not change the softmax. The checker reports two zeros as error 0.)
    A key that no query may see, such as padding, has W = 0 in its whole column, so its dK and dV are
    exactly 0: not small, 0. Splitting into heads and merging them back only move numbers, so their
    backwards only move the gradients back, each number to the place it came from; with several heads
    of d_k ≠ T, a gradient sent to the wrong column shows up in the check.""")
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

# %%
lesson.step("GELU: y = ½ x (1 + tanh(u)),  u = √(2/π)(x + 0.044715 x³)", """
    Element-wise, so dx = dy ⊙ y'(x), with the product and chain rules
    y' = ½ (1 + tanh u) + ½ x (1 − tanh² u) · √(2/π) (1 + 3·0.044715 x²).
    The forward keeps tanh(u): the backward reuses it instead of recomputing it.""")
worst = record("GELU", check_layer(GELU(), {"x": backend.randn((3, 7), rng=rng(13)) * 2.0}))
lesson.check(f"GELU's backward matches finite differences to {TOL:g}", worst < TOL, f"{worst:.1e}")

# %%
lesson.step("Cross-entropy: L = (1/N) Σ_n [log Σ_v e^{z_nv} − z_n,y_n]", """
    ∂/∂z_nv of log Σ e^z is softmax(z_n)_v; of −z_n,y_n it is −1 at v = y_n. So
    dz = (softmax(z) − onehot(y)) / N: the predicted distribution minus the true one. The forward
    keeps softmax(z) and the backward starts from it. Targets are integers: no gradient.""")
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

# %%
lesson.step("A wrong backward is caught", """
    Two classic mistakes, written as subclasses whose backward is wrong and forward is right.
    LayerNorm treating μ and σ as constants: dx = r·g, forgetting both subtracted terms. GELU
    treating tanh(u) as a constant: y' = ½(1 + tanh u), forgetting the derivative of tanh. Both
    look plausible and have the right shapes; the check finds them, and names the tensor.""")

class LayerNormConstantSigma(LayerNorm):
    def backward(self, dy):
        leading = tuple(range(dy.ndim - 1))
        self.weight.grad += (dy * self.xhat).sum(axis=leading)
        self.bias.grad += dy.sum(axis=leading)
        return self.rstd * (dy * self.weight.data)                 # WRONG: misses the paths through μ, σ

class GELUConstantTanh(GELU):
    def backward(self, dy):
        return dy * 0.5 * (1.0 + self.t)                           # WRONG: misses ½x(1 − t²)du/dx

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

# %%
lesson.step("Choosing h", """
    Sweep h for GELU's gradient: for large h the truncation error falls as h² (100× per decade);
    for small h rounding takes over and the error grows as 1/h. The minimum sits near h ≈ ε^(1/3),
    about 1e-5 in float64: the checker's default.""")
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

import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_bars, ax_h) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
names = list(results) + list(wrong)
values = [max(e, 1e-17) for e in list(results.values()) + list(wrong.values())]   # 0 cannot go on a log axis
colors = ["tab:red" if e > TOL else "tab:blue" for e in values]
ax_bars.barh(range(len(names)), values, color=colors)
ax_bars.set_yticks(range(len(names)), names, fontsize=8)
ax_bars.invert_yaxis()
ax_bars.set_xscale("log")
ax_bars.axvline(TOL, color="k", linestyle="--", linewidth=1)
ax_bars.text(TOL, len(names) - 0.5, f"  {TOL:g}", va="bottom", fontsize=8)
ax_bars.set_xlabel("relative error vs finite differences (float64)")
ax_bars.set_title("hand-written backward vs finite differences: red = caught")
ax_h.loglog(hs, h_errors, "o-")
ax_h.axvline(1e-5, color="gray", linestyle=":", linewidth=1)
ax_h.set(xlabel="step h", ylabel="relative error (GELU dx)", title="truncation (∝ h²) vs rounding (∝ 1/h)")
ax_h.invert_xaxis()
ax_h.grid(alpha=0.3, which="both")
fig.tight_layout()
lesson.figure(fig, "11_gradient_check_errors")

lesson.done()
