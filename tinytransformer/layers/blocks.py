"""Transformer blocks: attention and a feed-forward network, each inside a residual connection.

Two places to put the LayerNorm (``norm=``):

    "pre"  (GPT-2, nanoGPT):          x = x + f(LN(x))
    "post" (the 2017 paper, "Add & Norm"): x = LN(x + f(x))

Pre-norm leaves the residual path x -> x + ... untouched from input to output, so gradients reach the
first layer undiminished and deep stacks train without warmup tricks (lessons/09 measures it).
"""
from __future__ import annotations

from .attention import MultiHeadAttention
from .dropout import Dropout
from .feedforward import FeedForward, SwiGLUFeedForward
from .layernorm import LayerNorm
from .rmsnorm import RMSNorm
from ..module import Module, check_input_dtype


def make_norm(d_model: int, normalization: str = "layernorm", bias: bool = True, eps: float = 1e-5) -> Module:
    """LayerNorm (GPT-2) or RMSNorm (LLaMA), by name."""
    if normalization == "layernorm":
        return LayerNorm(d_model, eps=eps, bias=bias)
    if normalization == "rmsnorm":
        return RMSNorm(d_model, eps=eps)
    raise ValueError(f"normalization must be 'layernorm' or 'rmsnorm', got {normalization!r}.")


def make_feedforward(d_model: int, d_hidden: int | None, activation: str, bias: bool, rng) -> Module:
    """GPT's MLP (activation "gelu" or "relu") or LLaMA's gated one (activation "swiglu")."""
    if activation == "swiglu":
        return SwiGLUFeedForward(d_model, d_hidden, bias=bias, rng=rng)
    return FeedForward(d_model, d_hidden, activation, bias=bias, rng=rng)


class Residual(Module):
    """A sublayer f (attention or FFN) with its residual connection, LayerNorm and dropout.

        pre:   y = x + dropout(f(LN(x)))          dx = dy + LNᵀ(fᵀ(dropoutᵀ(dy)))
        post:  y = LN(x + dropout(f(x)))          ds = LNᵀ(dy);  dx = ds + fᵀ(dropoutᵀ(ds))

    (``gᵀ(d)`` is g's backward applied to d.) The "dy +" / "ds +" term is the residual path: the
    gradient flows straight through it. Extra arguments (a mask, a context for cross-attention) go to f;
    when f's backward returns more than one gradient (cross-attention's dcontext), they come back too.
    """

    def __init__(self, sublayer: Module, d_model: int, norm: str = "pre", dropout: float = 0.0, seed=None,
                 bias: bool = True, normalization: str = "layernorm", eps: float = 1e-5):
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {norm!r}.")
        self.norm = norm
        self.ln = make_norm(d_model, normalization, bias, eps)   # LayerNorm or RMSNorm
        self.sublayer = sublayer
        self.dropout = Dropout(dropout, seed=seed) if dropout > 0 else None

    def _branch(self, x, *args, **kwargs):
        out = self.sublayer(x, *args, **kwargs)
        return self.dropout(out) if self.dropout is not None else out

    def _branch_backward(self, dout):
        if self.dropout is not None:
            dout = self.dropout.backward(dout)
        grads = self.sublayer.backward(dout)
        return grads if isinstance(grads, tuple) else (grads,)          # (dx, *d_other_inputs)

    def forward(self, x, *args, **kwargs):
        if self.norm == "pre":
            return x + self._branch(self.ln(x), *args, **kwargs)
        return self.ln(x + self._branch(x, *args, **kwargs))

    def backward(self, dy):
        if self.norm == "pre":
            dx_branch, *others = self._branch_backward(dy)
            dx = dy + self.ln.backward(dx_branch)
        else:
            ds = self.ln.backward(dy)
            dx_branch, *others = self._branch_backward(ds)
            dx = ds + dx_branch
        return (dx, *others) if others else dx


class EncoderBlock(Module):
    """Bidirectional self-attention (every position sees every other, up to padding) then an FFN.

        x = Residual(MultiHeadAttention)(x, mask=padding)    x = Residual(FeedForward)(x)
    """

    def __init__(self, d_model: int, n_head: int, d_hidden: int | None = None, activation: str = "gelu",
                 dropout: float = 0.0, norm: str = "pre", bias: bool = True, seed=None, rng=None):
        seeds = _child_seeds(seed, 3)
        self.attn = Residual(MultiHeadAttention(d_model, n_head, bias=bias, dropout=dropout, seed=seeds[0],
                                                rng=rng), d_model, norm, dropout, seed=seeds[1], bias=bias)
        self.ffn = Residual(FeedForward(d_model, d_hidden, activation, bias=bias, rng=rng), d_model, norm,
                            dropout, seed=seeds[2], bias=bias)

    def forward(self, x, mask=None):
        check_input_dtype(x, self.ffn.ln.weight.data, "EncoderBlock")     # before LayerNorm upcasts it
        return self.ffn(self.attn(x, mask=mask))                            # [B, T, d_model]

    def backward(self, dy):
        return self.attn.backward(self.ffn.backward(dy))


class DecoderBlock(Module):
    """Causal self-attention, then (with ``cross=True``) cross-attention over an encoder's output, then FFN.

        x = Residual(MultiHeadAttention)(x, mask=causal)                   # looks only at the past
        x = Residual(MultiHeadAttention)(x, context, mask=source padding)   # looks at the source
        x = Residual(FeedForward)(x)

    A GPT block is a DecoderBlock without cross-attention. With cross-attention, ``backward`` returns
    (dx, dcontext): the encoder's output receives a gradient from every decoder block.

    A LLaMA block is the same with ``normalization="rmsnorm"``, ``activation="swiglu"``, ``rope_theta``
    (rotary positions in the self-attention), ``bias=False`` and, in newer models, ``n_kv_head`` <
    n_head (grouped-query attention); Mistral adds ``window`` (local attention, used by the KV cache).
    """

    def __init__(self, d_model: int, n_head: int, d_hidden: int | None = None, activation: str = "gelu",
                 dropout: float = 0.0, norm: str = "pre", bias: bool = True, cross: bool = False, seed=None,
                 rng=None, n_kv_head: int | None = None, rope_theta: float | None = None,
                 window: int | None = None, normalization: str = "layernorm", norm_eps: float = 1e-5,
                 rope_scaling: dict | None = None):
        seeds = _child_seeds(seed, 5)
        kinds = dict(bias=bias, normalization=normalization, eps=norm_eps)
        self.self_attn = Residual(MultiHeadAttention(d_model, n_head, bias=bias, dropout=dropout,
                                                     seed=seeds[0], rng=rng, n_kv_head=n_kv_head,
                                                     rope_theta=rope_theta, window=window,
                                                     rope_scaling=rope_scaling),
                                  d_model, norm, dropout, seed=seeds[1], **kinds)
        self.cross_attn = (Residual(MultiHeadAttention(d_model, n_head, bias=bias, dropout=dropout,
                                                       seed=seeds[2], rng=rng), d_model, norm, dropout,
                                    seed=seeds[3], **kinds) if cross else None)
        self.ffn = Residual(make_feedforward(d_model, d_hidden, activation, bias, rng), d_model, norm,
                            dropout, seed=seeds[4], **kinds)

    def forward(self, x, mask=None, context=None, context_mask=None, cache=None):
        """``cache``: a dict for generation with a KV cache (see MultiHeadAttention.forward)."""
        check_input_dtype(x, self.ffn.ln.weight.data, "DecoderBlock")     # before LayerNorm upcasts it
        if context is not None:
            check_input_dtype(context, self.ffn.ln.weight.data, "DecoderBlock", "context")
        x = (self.self_attn(x, mask=mask) if cache is None
             else self.self_attn(x, cache=cache))                           # [B, T, d_model]
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("This DecoderBlock has cross-attention: pass the encoder output as context.")
            x = self.cross_attn(x, context, mask=context_mask)              # [B, T, d_model]
        return self.ffn(x)                                                  # [B, T, d_model]

    def backward(self, dy):
        dx = self.ffn.backward(dy)
        dcontext = None
        if self.cross_attn is not None:
            dx, dcontext = self.cross_attn.backward(dx)
        dx = self.self_attn.backward(dx)
        return (dx, dcontext) if self.cross_attn is not None else dx


def _child_seeds(seed, n):
    """Distinct dropout seeds for the n dropouts of a block (None stays None: unseeded)."""
    return [None if seed is None else seed * 1000 + i for i in range(n)]
