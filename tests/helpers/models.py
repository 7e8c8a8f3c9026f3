"""What the block and model tests share: weights worth checking, a whole-model gradient check, and the
map between our parameters and PyTorch's.

1. ``randomise_weights``: GPT-2's initial weights (std 0.02) make some gradients ~1e-9, below the
   rounding noise of finite differences, so the checks first draw larger weights.
2. ``assert_model_gradients``: every parameter of a model against finite differences of its loss.
3. ``*_pairs`` / ``load_into_torch`` / ``assert_torch_grads``: one table per PyTorch layer says where
   each of our parameters lives in it; the same table loads the weights and reads the gradients back.
"""
from __future__ import annotations

import numpy

from helpers import GRAD_TOL, LARGEST, assert_matches_torch
from tinytransformer import backend, numerical_gradient, relative_error


# --- weights worth checking ---------------------------------------------------------------------------

def randomise_weights(model, seed: int = 0) -> None:
    """Matrices and tables ~ N(0, 0.5²), biases ~ N(0, 0.1²), LayerNorm gains 1 + N(0, 0.1²).

    Large enough that every gradient stands well above finite-difference noise (with GPT-2's std 0.02
    some are ~1e-9), small enough that no softmax or GELU saturates.
    """
    rng = numpy.random.default_rng(seed)
    for name, p in model.named_parameters():
        noise = rng.standard_normal(p.data.shape)
        if p.data.ndim == 2:
            value = 0.5 * noise                       # Linear weights, embedding and position tables
        elif name.endswith("bias"):
            value = 0.1 * noise                       # Linear and LayerNorm biases
        else:
            value = 1.0 + 0.1 * noise                 # LayerNorm gains γ
        p.data[...] = backend.asarray(value, dtype=p.data.dtype)


# --- a whole model against finite differences ----------------------------------------------------------

# A fourth-order stencil, (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h. Its two errors pull h in
# opposite directions: truncation ~ h⁴·f⁽⁵⁾ and rounding ~ ε·|loss|/h. With the weights above, the
# models are curved enough that h = 1e-3 is truncation-limited (halving h divides the error by 16; some seeds
# reach 1e-6), while below 1e-4 rounding takes over. At h = 2.5e-4 a correct backward shows relative
# errors of 1e-11 to 1e-8 and a wrong one 1e-3 or more; GRAD_TOL = 1e-7 sits between.
MODEL_H = 2.5e-4


def assert_model_gradients(model, run_loss, name: str) -> dict:
    """``run_loss()`` runs the model's forward and returns its loss; check model.backward() against it.

    Returns {parameter name: relative error}; build the model in float64 and GELU (ReLU's kink at 0
    would break the finite differences of a point that lands near it).
    """
    model.zero_grad()
    run_loss()
    model.backward()                                                   # from the loss's own backward
    analytic = {n: p.grad.copy() for n, p in model.named_parameters()}

    errors = {}
    for n, p in model.named_parameters():
        numeric = numerical_gradient(run_loss, p.data, h=MODEL_H, order=4)
        errors[n] = relative_error(analytic[n], numeric)
    worst = max(errors.values())
    LARGEST[name]["finite differences"] = max(LARGEST[name]["finite differences"], worst)
    too_large = {n: e for n, e in errors.items() if not e <= GRAD_TOL}  # `not <=` also catches NaN
    assert not too_large, f"{name}: gradient check failed (tolerance {GRAD_TOL}): {too_large}"
    return errors


# --- our parameters inside PyTorch's layers ------------------------------------------------------------
#
# Each table maps one of our parameter names to (torch parameter, view): ``view(t)`` picks out of a
# tensor shaped like the torch parameter the numbers that our parameter holds, in our layout. Views of
# a parameter share its memory, so ``view(param).copy_(ours)`` loads our weights into torch, and
# ``view(param.grad)`` reads torch's gradient back in our layout.
#
#   our Linear.weight is [in, out]; torch's nn.Linear.weight is [out, in]        -> transpose
#   torch's MultiheadAttention keeps W_q, W_k, W_v stacked as in_proj_weight [3d, d] (rows q | k | v)

def _transposed(t):
    return t.T


def _same(t):
    return t


def linear_pairs(ours: str, theirs) -> dict:
    return {f"{ours}.weight": (theirs.weight, _transposed), f"{ours}.bias": (theirs.bias, _same)}


def layernorm_pairs(ours: str, theirs) -> dict:
    return {f"{ours}.weight": (theirs.weight, _same), f"{ours}.bias": (theirs.bias, _same)}


def attention_pairs(ours: str, theirs, d: int) -> dict:
    """Our MultiHeadAttention ``ours`` (q_proj, k_proj, v_proj, out_proj) in torch's nn.MultiheadAttention."""
    pairs = {}
    for i, proj in enumerate(["q_proj", "k_proj", "v_proj"]):
        rows = slice(i * d, (i + 1) * d)
        pairs[f"{ours}.{proj}.weight"] = (theirs.in_proj_weight, lambda t, rows=rows: t[rows].T)
        pairs[f"{ours}.{proj}.bias"] = (theirs.in_proj_bias, lambda t, rows=rows: t[rows])
    pairs.update(linear_pairs(f"{ours}.out_proj", theirs.out_proj))
    return pairs


def _ffn_pairs(prefix: str, theirs) -> dict:
    return {**linear_pairs(f"{prefix}ffn.sublayer.fc1", theirs.linear1),
            **linear_pairs(f"{prefix}ffn.sublayer.fc2", theirs.linear2)}


def encoder_layer_pairs(prefix: str, theirs, d: int) -> dict:
    """EncoderBlock <-> nn.TransformerEncoderLayer: attn.ln is norm1, ffn.ln is norm2."""
    return {**attention_pairs(f"{prefix}attn.sublayer", theirs.self_attn, d),
            **layernorm_pairs(f"{prefix}attn.ln", theirs.norm1),
            **_ffn_pairs(prefix, theirs),
            **layernorm_pairs(f"{prefix}ffn.ln", theirs.norm2)}


def decoder_layer_pairs(prefix: str, theirs, d: int) -> dict:
    """DecoderBlock (cross) <-> nn.TransformerDecoderLayer: self_attn.ln, cross_attn.ln, ffn.ln are
    norm1, norm2, norm3; cross-attention is torch's multihead_attn."""
    return {**attention_pairs(f"{prefix}self_attn.sublayer", theirs.self_attn, d),
            **layernorm_pairs(f"{prefix}self_attn.ln", theirs.norm1),
            **attention_pairs(f"{prefix}cross_attn.sublayer", theirs.multihead_attn, d),
            **layernorm_pairs(f"{prefix}cross_attn.ln", theirs.norm2),
            **_ffn_pairs(prefix, theirs),
            **layernorm_pairs(f"{prefix}ffn.ln", theirs.norm3)}


def gpt_block_pairs(prefix: str, theirs, d: int) -> dict:
    """A GPT block (DecoderBlock without cross-attention) is torch's *encoder* layer run with a causal
    mask: self_attn.ln is norm1, ffn.ln is norm2."""
    pairs = encoder_layer_pairs(prefix, theirs, d)
    return {name.replace(f"{prefix}attn.", f"{prefix}self_attn.", 1): value for name, value in pairs.items()}


def load_into_torch(torch, ours_module, pairs: dict) -> None:
    """Copy every parameter named in ``pairs`` from our module into its place in torch's."""
    ours = dict(ours_module.named_parameters())
    with torch.no_grad():
        for name, (param, view) in pairs.items():
            view(param).copy_(torch.as_tensor(backend.to_numpy(ours[name].data)))


def assert_torch_grads(ours_module, pairs: dict, label: str) -> None:
    """Every gradient named in ``pairs`` equals torch's (read back through the same views)."""
    ours = dict(ours_module.named_parameters())
    for name, (param, view) in pairs.items():
        assert_matches_torch(ours[name].grad, view(param.grad), label, f"gradient of {name}")


def torch_activation(torch, name: str):
    """Our activation by name, as torch's layers take it. Our GELU is the tanh form (GPT-2's)."""
    if name == "relu":
        return "relu"
    return lambda x: torch.nn.functional.gelu(x, approximate="tanh")
