"""An encoder-only Transformer (BERT-like) with a classification head.

    idx [B, T] -> embedding + position -> n_layer × EncoderBlock (bidirectional, padding masked) -> LN
      head="sequence": mean over the non-padding positions -> Linear -> logits [B, n_classes]
      head="token":    Linear at every position               -> logits [B, T, n_classes]

Every position sees the whole sequence (no causal mask): the encoder is for understanding a sequence
that is given in full, not for generating one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend
from ..layers.attention import padding_mask
from ..layers.blocks import EncoderBlock
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.layernorm import LayerNorm
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.positional import PositionalEncoding
from .common import Model, init_gpt2, summary


@dataclass
class EncoderConfig:
    vocab_size: int = 16
    n_classes: int = 2
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True
    norm: str = "pre"
    activation: str = "gelu"
    positional: str = "learned"
    head: str = "sequence"        # "sequence" (one label per sequence) or "token" (one per position)
    pad_id: int = 0               # this token id marks padding: it is never attended to
    seed: int = 1337

    def to_dict(self) -> dict:
        return asdict(self)


class EncoderClassifier(Model):
    """Encoder-only Transformer with a sequence- or token-classification head.

    Sequence head:  pooled_b = Σ_t keep_bt h_bt / Σ_t keep_bt  (mean over real tokens),  logits = pooled W
                    backward: dh_bt = keep_bt · dpooled_b / Σ_t keep_bt
    Token head:     logits_bt = h_bt W   (targets at padding positions should be ignore_index, -100)

    ``backward`` belongs to the last forward and runs once per forward (see ``Model``).
    """

    forward_example = "model(idx, targets)"

    def __init__(self, config: EncoderConfig):
        if config.head not in ("sequence", "token"):
            raise ValueError(f"head must be 'sequence' or 'token', got {config.head!r}.")
        self.config = c = config
        rng = backend.new_host_rng(c.seed)
        self.wte = Embedding(c.vocab_size, c.n_embd, rng=rng)
        self.wpe = PositionalEncoding(c.positional, c.n_embd, c.block_size, rng=rng)
        self.drop = Dropout(c.dropout, seed=c.seed) if c.dropout > 0 else None
        self.blocks = [EncoderBlock(c.n_embd, c.n_head, activation=c.activation, dropout=c.dropout,
                                    norm=c.norm, bias=c.bias, seed=c.seed + 1 + i, rng=rng)
                       for i in range(c.n_layer)]
        self.ln_f = LayerNorm(c.n_embd, bias=c.bias)
        self.head = Linear(c.n_embd, c.n_classes, rng=rng)
        self.loss_fn = CrossEntropyLoss()
        init_gpt2(self, c.n_layer, rng)
        self.keep = None   # [B, T, 1] 1.0 at real tokens, 0.0 at padding (sequence head)
        self.count = None  # [B, 1] number of real tokens per sequence

    def encode(self, idx):
        """idx [B, T] -> hidden states [B, T, n_embd] (after the final LayerNorm)."""
        self._check_tokens(idx)
        self._activations_replaced("encode()")
        is_pad = idx == self.config.pad_id                                      # [B, T]
        mask = padding_mask(is_pad)                                             # [B, 1, 1, T]
        x = self.wpe(self.wte(idx))                                             # [B, T, n_embd]
        if self.drop is not None:
            x = self.drop(x)
        for block in self.blocks:
            x = block(x, mask=mask)
        self.keep = (~is_pad)[:, :, None].astype(x.dtype)                       # [B, T, 1]
        return self.ln_f(x)

    def forward(self, idx, targets=None):
        """-> (logits, loss or None); logits [B, n_classes] or [B, T, n_classes] (token head)."""
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        h = self.encode(idx)                                                    # [B, T, n_embd]
        if self.config.head == "sequence":
            self.count = backend.xp.maximum(self.keep.sum(axis=1), 1.0)         # [B, 1]
            h = (h * self.keep).sum(axis=1) / self.count                        # [B, n_embd]
        logits = self.head(h)
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); from the loss of the last forward by default."""
        dlogits = self._start_backward(dlogits)
        dh = self.head.backward(dlogits)
        if self.config.head == "sequence":
            dh = self.keep * (dh / self.count)[:, None, :]                      # [B, T, n_embd]
        dx = self.ln_f.backward(dh)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.drop is not None:
            dx = self.drop.backward(dx)
        self.wte.backward(self.wpe.backward(dx))

    def summary(self) -> str:
        return summary(self)
