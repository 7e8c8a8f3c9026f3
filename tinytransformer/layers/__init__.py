"""The layers of a Transformer, one concept per file, each a Module with ``forward`` and a hand-written
``backward`` (the math is in each class's docstring).

    linear.py       Linear: y = x W + b
    embedding.py    Embedding: a table lookup, its gradient a scatter-add
    positional.py   learned and sinusoidal positions
    attention.py    scaled dot-product attention, masks, multi-head attention
    blockwise_attention.py  the same attention over blocks of keys (online softmax), for long sequences
    rotary.py       rotary position embedding (RoPE): positions as rotations of queries and keys
    layernorm.py    LayerNorm
    rmsnorm.py      RMSNorm: LayerNorm without the centring (LLaMA's)
    activations.py  GELU, ReLU, SiLU
    feedforward.py  the position-wise MLP: Linear, activation, Linear; and LLaMA's SwiGLU
    dropout.py      Dropout
    loss.py         cross-entropy over the vocabulary
    rnn.py          a recurrent layer (tanh), for the lesson before attention
    blocks.py       residual sublayers, the encoder and decoder blocks
    reductions.py   the per-row sums, means and maxima inside softmax and LayerNorm
"""
from .activations import GELU, ReLU, SiLU
from .attention import (MultiHeadAttention, ScaledDotProductAttention, causal_mask, masked_softmax,
                        padding_mask)
from .blocks import DecoderBlock, EncoderBlock, Residual
from .dropout import Dropout
from .embedding import Embedding
from .feedforward import FeedForward, SwiGLUFeedForward
from .layernorm import LayerNorm
from .linear import Linear
from .loss import CrossEntropyLoss
from .positional import (LearnedPositionalEncoding, PositionalEncoding, SinusoidalPositionalEncoding,
                         sinusoidal_table)
from .rmsnorm import RMSNorm
from .rnn import RNN
from .rotary import RotaryEmbedding

__all__ = [
    "GELU", "ReLU", "MultiHeadAttention", "ScaledDotProductAttention", "causal_mask", "masked_softmax",
    "padding_mask", "DecoderBlock", "EncoderBlock", "Residual", "Dropout", "Embedding", "FeedForward",
    "LayerNorm", "Linear", "CrossEntropyLoss", "LearnedPositionalEncoding", "PositionalEncoding",
    "SinusoidalPositionalEncoding", "sinusoidal_table", "RNN", "SiLU", "SwiGLUFeedForward", "RMSNorm",
    "RotaryEmbedding",
]
