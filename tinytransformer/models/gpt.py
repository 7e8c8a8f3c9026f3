"""A decoder-only language model (GPT): predict each next token from the ones before it.

    idx [B, T] -> token embedding + position -> n_layer × DecoderBlock (causal) -> LayerNorm -> logits

As nanoGPT's model.py, in NumPy, with the backward written out: ``backward`` calls every layer's
backward in exactly the reverse order of ``forward``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend
from ..layers.attention import causal_mask
from ..layers.blocks import DecoderBlock
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.layernorm import LayerNorm
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.positional import PositionalEncoding
from ..module import check_token_batch, is_int
from .common import Model, init_gpt2, summary


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64          # the context: how many tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True             # biases in Linear layers and LayerNorms (nanoGPT: False)
    norm: str = "pre"             # "pre" (GPT-2) or "post" (2017 paper)
    activation: str = "gelu"
    positional: str = "learned"   # "learned" (GPT-2) or "sinusoidal" (2017 paper)
    tie_weights: bool = True      # the output layer reuses the token embedding table
    seed: int = 1337              # initial weights and dropout masks

    def __post_init__(self):
        # A config may come from a file (a checkpoint, a config.json): refuse nonsense before any layer is
        # built, with the field and its value, rather than a ZeroDivisionError or a model that never ends.
        for field in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, field)
            if not is_int(value) or value < 1:
                raise ValueError(f"GPTConfig.{field} is {value!r}: it must be a whole number >= 1.")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_head {self.n_head} does not divide n_embd {self.n_embd}: each head "
                             "gets n_embd / n_head dimensions.")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig.dropout is {self.dropout!r}: it must be a number in [0, 1).")
        for field in ("bias", "tie_weights"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"GPTConfig.{field} is {getattr(self, field)!r}: it must be true or false.")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"GPTConfig.seed is {self.seed!r}: it must be a whole number >= 0.")

    def to_dict(self) -> dict:
        return asdict(self)


class GPT(Model):
    """Decoder-only Transformer language model.

    Forward:  h₀ = E[idx] + P[:T];  h_l = Block_l(h_{l−1}, causal mask);  logits = LN(h_L) W_outᵀ
    With ``tie_weights`` W_out is the token embedding E itself ([vocab, n_embd]), so the output layer
    scores each token by how well h matches its embedding, and E's gradient gets both contributions.
    ``backward`` belongs to the last forward and runs once per forward (see ``Model``).
    """

    forward_example = "model(idx, targets)"

    def __init__(self, config: GPTConfig):
        self.config = c = config
        rng = backend.new_host_rng(c.seed)
        self.wte = Embedding(c.vocab_size, c.n_embd, rng=rng)
        self.wpe = PositionalEncoding(c.positional, c.n_embd, c.block_size, rng=rng)
        self.drop = Dropout(c.dropout, seed=c.seed) if c.dropout > 0 else None
        self.blocks = [DecoderBlock(c.n_embd, c.n_head, activation=c.activation, dropout=c.dropout,
                                    norm=c.norm, bias=c.bias, seed=c.seed + 1 + i, rng=rng)
                       for i in range(c.n_layer)]
        self.ln_f = LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = None if c.tie_weights else Linear(c.n_embd, c.vocab_size, bias=False, rng=rng)
        self.loss_fn = CrossEntropyLoss()
        init_gpt2(self, c.n_layer, rng)
        self.h = None  # final hidden states [B, T, n_embd], kept for the output layer's backward

    def forward(self, idx, targets=None):
        """idx [B, T] token ids -> (logits [B, T, vocab], loss or None)."""
        self._check_tokens(idx)
        T = idx.shape[1]
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        x = self.wpe(self.wte(idx))                                             # [B, T, n_embd]
        if self.drop is not None:
            x = self.drop(x)
        mask = causal_mask(T)                                                   # [T, T]
        for block in self.blocks:
            x = block(x, mask=mask)                                             # [B, T, n_embd]
        logits = self._head(self.ln_f(x))                                       # [B, T, vocab]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def _head(self, h):
        self.h = h
        if self.lm_head is not None:
            return self.lm_head(h)                                              # [B, T, vocab]
        return h @ self.wte.weight.data.T                                       # [B,T,d] @ [d,vocab]

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); from the loss of the last forward by default."""
        dlogits = self._start_backward(dlogits)                                 # [B, T, vocab]
        if self.lm_head is not None:
            dh = self.lm_head.backward(dlogits)
        else:  # tied: logits = h Eᵀ, so dE += dlogitsᵀ h and dh = dlogits E
            V, d = self.wte.weight.data.shape
            self.wte.weight.grad += dlogits.reshape(-1, V).T @ self.h.reshape(-1, d)   # [V, d]
            dh = dlogits @ self.wte.weight.data                                 # [B, T, d]
        dx = self.ln_f.backward(dh)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.drop is not None:
            dx = self.drop.backward(dx)
        self.wte.backward(self.wpe.backward(dx))

    def forward_cached(self, idx, caches):
        """Logits for new tokens idx [B, T_new] given ``caches`` (one dict per block) of earlier ones.

        Generation only: the keys and values of earlier positions are reused rather than recomputed.
        There is no backward for it; it overwrites what the last forward kept for one.
        """
        check_token_batch(idx, "GPT.forward_cached")
        self._activations_replaced("forward_cached() (generation)")
        start = 0 if caches[0].get("k") is None else caches[0]["k"].shape[2]
        x = self.wpe(self.wte(idx), start=start)                                # [B, T_new, n_embd]
        for block, cache in zip(self.blocks, caches):
            x = block(x, cache=cache)
        return self._head(self.ln_f(x))                                         # [B, T_new, vocab]

    def summary(self) -> str:
        return summary(self)
