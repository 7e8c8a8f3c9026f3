"""tinytransformer: a Transformer in NumPy with every backward written by hand.

Each layer is a class with ``forward`` and ``backward``; ``backend.xp`` is NumPy or CuPy.
"""
from . import backend
from .activations import GELU, ReLU
from .attention import (MultiHeadAttention, ScaledDotProductAttention, causal_mask, masked_softmax,
                        padding_mask)
from .blocks import DecoderBlock, EncoderBlock, Residual
from .dropout import Dropout
from .embedding import Embedding
from .feedforward import FeedForward
from .gradcheck import check_layer, numerical_gradient, relative_error
from .layernorm import LayerNorm
from .linear import Linear
from .loss import CrossEntropyLoss
from .module import Module, Parameter
from .optim import AdamW, clip_grad_norm, cosine_lr
from .positional import (LearnedPositionalEncoding, PositionalEncoding, SinusoidalPositionalEncoding,
                         sinusoidal_table)
from .rnn import RNN

__version__ = "0.1.0"

__all__ = [
    "backend", "GELU", "ReLU", "MultiHeadAttention", "ScaledDotProductAttention", "causal_mask",
    "masked_softmax", "padding_mask", "DecoderBlock", "EncoderBlock", "Residual", "Dropout", "Embedding",
    "FeedForward", "check_layer", "numerical_gradient", "relative_error", "LayerNorm", "Linear",
    "CrossEntropyLoss", "Module", "Parameter", "AdamW", "clip_grad_norm", "cosine_lr",
    "LearnedPositionalEncoding", "PositionalEncoding", "SinusoidalPositionalEncoding", "sinusoidal_table",
    "RNN",
]
