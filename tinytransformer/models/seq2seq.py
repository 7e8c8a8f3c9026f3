"""The encoder-decoder Transformer of "Attention Is All You Need" (2017), for sequence-to-sequence tasks.

    source [B, S] -> embed -> n_encoder_layer × EncoderBlock (source padding masked) -> LN = memory
    target [B, T] -> embed -> n_decoder_layer × DecoderBlock (causal; cross-attention over memory) -> LN
                  -> Linear -> logits [B, T, tgt_vocab]

The decoder is trained with "teacher forcing": it reads the true target shifted right (starting with a
BOS token) and predicts the target itself, every position at once, the causal mask hiding the future.
The two stacks end in a LayerNorm each, as PyTorch's nn.Transformer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend
from ..layers.attention import causal_mask, padding_mask
from ..layers.blocks import DecoderBlock, EncoderBlock
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.layernorm import LayerNorm
from ..layers.linear import Linear
from ..layers.loss import CrossEntropyLoss
from ..layers.positional import PositionalEncoding
from .common import Model, init_gpt2, summary


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 16
    tgt_vocab_size: int = 16
    block_size: int = 32          # longest source and longest target
    n_encoder_layer: int = 2
    n_decoder_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True
    norm: str = "pre"
    activation: str = "relu"
    positional: str = "sinusoidal"
    pad_id: int = 0
    seed: int = 1337

    def to_dict(self) -> dict:
        return asdict(self)


class Seq2Seq(Model):
    """Encoder-decoder Transformer: masks are built from ``pad_id`` (source and target) and causality.

    ``backward`` belongs to the last forward and runs once per forward (see ``Model``).
    """

    forward_example = "model(src, tgt_in, targets)"

    def __init__(self, config: Seq2SeqConfig):
        self.config = c = config
        rng = backend.new_host_rng(c.seed)
        self.src_emb = Embedding(c.src_vocab_size, c.n_embd, rng=rng)
        self.src_pos = PositionalEncoding(c.positional, c.n_embd, c.block_size, rng=rng)
        self.tgt_emb = Embedding(c.tgt_vocab_size, c.n_embd, rng=rng)
        self.tgt_pos = PositionalEncoding(c.positional, c.n_embd, c.block_size, rng=rng)
        self.src_drop = Dropout(c.dropout, seed=c.seed) if c.dropout > 0 else None
        self.tgt_drop = Dropout(c.dropout, seed=c.seed + 1) if c.dropout > 0 else None
        block_args = dict(activation=c.activation, dropout=c.dropout, norm=c.norm, bias=c.bias, rng=rng)
        self.encoder_blocks = [EncoderBlock(c.n_embd, c.n_head, seed=c.seed + 10 + i, **block_args)
                               for i in range(c.n_encoder_layer)]
        self.encoder_norm = LayerNorm(c.n_embd, bias=c.bias)
        self.decoder_blocks = [DecoderBlock(c.n_embd, c.n_head, cross=True, seed=c.seed + 100 + i,
                                            **block_args) for i in range(c.n_decoder_layer)]
        self.decoder_norm = LayerNorm(c.n_embd, bias=c.bias)
        self.head = Linear(c.n_embd, c.tgt_vocab_size, rng=rng)
        self.loss_fn = CrossEntropyLoss(ignore_index=c.pad_id)
        init_gpt2(self, c.n_encoder_layer + c.n_decoder_layer, rng)

    # --- the two stacks, on already-embedded inputs (PyTorch's nn.Transformer works at this level) ----
    def run_encoder(self, x, src_mask=None):
        """x [B, S, n_embd] -> memory [B, S, n_embd]."""
        self._activations_replaced("run_encoder()")
        for block in self.encoder_blocks:
            x = block(x, mask=src_mask)
        return self.encoder_norm(x)

    def run_decoder(self, y, memory, tgt_mask=None, memory_mask=None):
        """y [B, T, n_embd], memory [B, S, n_embd] -> decoder output [B, T, n_embd]."""
        self._activations_replaced("run_decoder()")
        for block in self.decoder_blocks:
            y = block(y, mask=tgt_mask, context=memory, context_mask=memory_mask)
        return self.decoder_norm(y)

    def backward_decoder(self, dout):
        """-> (dy, dmemory): every decoder block's cross-attention adds to dmemory."""
        dy = self.decoder_norm.backward(dout)
        dmemory = 0
        for block in reversed(self.decoder_blocks):
            dy, dcontext = block.backward(dy)
            dmemory = dmemory + dcontext
        return dy, dmemory

    def backward_encoder(self, dmemory):
        dx = self.encoder_norm.backward(dmemory)
        for block in reversed(self.encoder_blocks):
            dx = block.backward(dx)
        return dx

    # --- the whole model ------------------------------------------------------------------------------
    def masks(self, src, tgt):
        """(source mask [B, 1, 1, S], target mask [B, 1, T, T]): no attention to padding or the future."""
        src_mask = padding_mask(src == self.config.pad_id)                      # [B, 1, 1, S]
        tgt_mask = causal_mask(tgt.shape[1]) & padding_mask(tgt == self.config.pad_id)  # [B, 1, T, T]
        return src_mask, tgt_mask

    def encode(self, src):
        """src [B, S] -> memory [B, S, n_embd], the encoder's output that cross-attention reads."""
        self._check_tokens(src, "source ids", "[B, S]")
        self._activations_replaced("encode()")
        src_mask = padding_mask(src == self.config.pad_id)
        x = self.src_pos(self.src_emb(src))                                     # [B, S, n_embd]
        if self.src_drop is not None:
            x = self.src_drop(x)
        return self.run_encoder(x, src_mask)

    def forward(self, src, tgt_in, targets=None):
        """src [B, S], tgt_in [B, T] (BOS + target[:-1]) -> (logits [B, T, tgt_vocab], loss or None)."""
        self._check_target(tgt_in, src)
        self._activations_replaced("a forward that stopped with an error")     # until it finishes
        logits = self.decode(self.encode(src), src, tgt_in)                    # [B, T, tgt_vocab]
        loss = self.loss_fn(logits, targets) if targets is not None else None
        return self._forward_finished(logits, loss)

    def _check_target(self, tgt_in, src):
        self._check_tokens(tgt_in, "target ids", "[B, T]")
        if hasattr(src, "shape") and len(src.shape) == 2 and src.shape[0] != tgt_in.shape[0]:
            raise ValueError(f"source {tuple(src.shape)} and target {tuple(tgt_in.shape)} hold different "
                             "numbers of sequences: row b of the target is the translation of row b of "
                             "the source, so both need the same B.")

    def decode(self, memory, src, tgt_in):
        """Decoder logits [B, T, tgt_vocab] for tgt_in given the encoder's memory of src."""
        self._check_target(tgt_in, src)
        self._activations_replaced("decode()")
        src_mask, tgt_mask = self.masks(src, tgt_in)
        y = self.tgt_pos(self.tgt_emb(tgt_in))                                  # [B, T, n_embd]
        if self.tgt_drop is not None:
            y = self.tgt_drop(y)
        return self.head(self.run_decoder(y, memory, tgt_mask, src_mask))       # [B, T, tgt_vocab]

    def backward(self, dlogits=None):
        """Gradients of every parameter (accumulated); from the loss of the last forward by default."""
        dlogits = self._start_backward(dlogits)
        dy, dmemory = self.backward_decoder(self.head.backward(dlogits))
        if self.tgt_drop is not None:
            dy = self.tgt_drop.backward(dy)
        self.tgt_emb.backward(self.tgt_pos.backward(dy))
        dx = self.backward_encoder(dmemory)
        if self.src_drop is not None:
            dx = self.src_drop.backward(dx)
        self.src_emb.backward(self.src_pos.backward(dx))

    def summary(self) -> str:
        return summary(self)
