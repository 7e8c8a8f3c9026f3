"""A language model with each idea of the GPT switched on or off: the stages of "building it up".

Karpathy's "Let's build GPT" grows a character model one idea at a time; here the ideas are switches of
one config, so that two stages differ by exactly the switch named between them:

    bigram           logits = lm_head(E[idx])                   (n_head = 0: no blocks, no positions)
    + attention      x = E[idx] + P[:T];  x = Attn_l(x) for each of n_layer layers;  lm_head(x)
    + multi-head     the same with n_head > 1
    + MLP            each layer is x = Attn(x); x = MLP(x)
    + residual       x = x + Attn(x); x = x + MLP(x)
    + LayerNorm      x = x + Attn(LN(x)); x = x + MLP(LN(x)); a final LN before lm_head (pre-norm)

With every switch on this is GPT's architecture: ``models.GPT`` with ``tie_weights=False`` computes the
same function from the same weights (parameter names differ; ``gpt_names`` maps them). Every
layer is the library's own (Embedding, LearnedPositionalEncoding, MultiHeadAttention, FeedForward,
LayerNorm, Linear), with the library's default initialisation; ``lessons/15_build_it_up.py`` trains
each stage and ``lessons/10_residuals_and_layernorm.py`` measures the gradient with and without the
residual connections.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .. import backend
from ..layers.attention import MultiHeadAttention, causal_mask
from ..layers.embedding import Embedding
from ..layers.feedforward import FeedForward
from ..layers.layernorm import LayerNorm
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.positional import LearnedPositionalEncoding
from ..module import Module
from .common import Model, summary


@dataclass
class StageConfig:
    vocab_size: int = 65
    block_size: int = 32
    n_embd: int = 64
    n_layer: int = 4
    n_head: int = 0               # 0: the bigram model (no positions, no attention, no blocks)
    mlp: bool = False             # a feed-forward network after each attention
    residual: bool = False        # x + f(x) around each attention and each MLP
    layernorm: bool = False       # pre-norm: LN before each sublayer, and a final LN
    seed: int = 0                 # initial weights

    def to_dict(self) -> dict:
        return asdict(self)


class StageBlock(Module):
    """One layer: attention, then (``mlp``) a feed-forward network; each optionally with a residual
    connection and a LayerNorm before it.

        a = Attn(LN₁(x) or x);   x = x + a  (residual)  or  x = a
        f = MLP(LN₂(x) or x);    x = x + f  (residual)  or  x = f

    Backward walks it in reverse; with a residual connection the gradient of x is dy plus the branch's.
    """

    def __init__(self, c: StageConfig, rng):
        self.residual = c.residual
        self.ln1 = LayerNorm(c.n_embd) if c.layernorm else None
        self.attn = MultiHeadAttention(c.n_embd, c.n_head, rng=rng)
        self.ln2 = LayerNorm(c.n_embd) if c.layernorm and c.mlp else None
        self.mlp = FeedForward(c.n_embd, rng=rng) if c.mlp else None

    @staticmethod
    def _sublayer(f, ln, x, residual, **kwargs):
        out = f(ln(x) if ln is not None else x, **kwargs)                   # [B, T, n_embd]
        return x + out if residual else out

    @staticmethod
    def _sublayer_backward(f, ln, dy, residual):
        dx = f.backward(dy)
        if ln is not None:
            dx = ln.backward(dx)
        return dy + dx if residual else dx                                  # the residual path: dy itself

    def forward(self, x, mask=None):
        x = self._sublayer(self.attn, self.ln1, x, self.residual, mask=mask)
        if self.mlp is not None:
            x = self._sublayer(self.mlp, self.ln2, x, self.residual)
        return x

    def backward(self, dy):
        if self.mlp is not None:
            dy = self._sublayer_backward(self.mlp, self.ln2, dy, self.residual)
        return self._sublayer_backward(self.attn, self.ln1, dy, self.residual)


class StageModel(Model):
    """The model of one stage (see the module's docstring): ``StageModel(StageConfig(...))``.

    ``forward(idx, targets)`` -> (logits, loss) and ``backward()`` as ``GPT``'s.
    """

    forward_example = "model(idx, targets)"

    def __init__(self, config: StageConfig):
        self.config = c = config
        if c.n_head and c.n_embd % c.n_head:
            raise ValueError(f"n_head={c.n_head} must divide n_embd={c.n_embd}.")
        rng = backend.new_host_rng(c.seed)
        self.wte = Embedding(c.vocab_size, c.n_embd, rng=rng)
        self.wpe = LearnedPositionalEncoding(c.block_size, c.n_embd, rng=rng) if c.n_head else None
        self.blocks = [StageBlock(c, rng) for _ in range(c.n_layer)] if c.n_head else []
        self.ln_f = LayerNorm(c.n_embd) if c.layernorm and c.n_head else None
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False, rng=rng)      # as GPT's
        self.loss_fn = CrossEntropyLoss()

    def forward(self, idx, targets=None):
        """idx [B, T] token ids -> (logits [B, T, vocab], loss or None)."""
        self._check_tokens(idx)
        T = idx.shape[1]
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        x = self.wte(idx)                                                       # [B, T, n_embd]
        if self.wpe is not None:
            x = self.wpe(x)                                                     # + P[:T]
        mask = causal_mask(T)                                                   # [T, T]
        for block in self.blocks:
            x = block(x, mask=mask)                                             # [B, T, n_embd]
        if self.ln_f is not None:
            x = self.ln_f(x)
        logits = self.lm_head(x)                                                # [B, T, vocab]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); from the loss of the last forward by default."""
        dx = self.lm_head.backward(self._start_backward(dlogits))              # [B, T, n_embd]
        if self.ln_f is not None:
            dx = self.ln_f.backward(dx)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.wpe is not None:
            dx = self.wpe.backward(dx)
        self.wte.backward(dx)

    def summary(self) -> str:
        return summary(self)


# Where each part of a StageBlock lives in a GPT block (DecoderBlock: Residual(sublayer, its LayerNorm)).
_GPT_PLACES = {"ln1": "self_attn.ln", "attn": "self_attn.sublayer", "ln2": "ffn.ln", "mlp": "ffn.sublayer"}


def gpt_names(state: dict) -> dict:
    """A state dict of a StageModel with every switch on, under GPT's parameter names
    (``blocks.0.ln1.weight`` -> ``blocks.0.self_attn.ln.weight``), for ``GPT.load_state_dict``."""
    def rename(name):
        return re.sub(r"^(blocks\.\d+)\.(ln1|attn|ln2|mlp)\.", lambda m: f"{m[1]}.{_GPT_PLACES[m[2]]}.", name)
    return {rename(name): value for name, value in state.items()}
