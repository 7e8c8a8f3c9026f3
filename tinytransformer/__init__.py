"""tinytransformer: a Transformer in NumPy with every backward written by hand.

Each layer is a class with ``forward`` and ``backward``; ``backend.xp`` is NumPy or CuPy.

The Transformer:  layers/ (one concept per file), models/ (GPT, encoder, encoder-decoder, RNN), and
                  module.py, optim.py, generate.py, gradcheck.py, backend.py beneath them.
The tooling:      training/ (settings, the loop, checkpoints, the run's folder), tokenizers/, pretrained/
                  (GPT-2's weights, safetensors), data.py, tasks/, files.py, machine.py.
"""
from . import backend
from .gradcheck import check_layer, numerical_gradient, relative_error
from .layers import (GELU, RNN, CrossEntropyLoss, DecoderBlock, Dropout, Embedding, EncoderBlock, FeedForward,
                     LayerNorm, LearnedPositionalEncoding, Linear, MultiHeadAttention, PositionalEncoding,
                     ReLU, Residual, ScaledDotProductAttention, SinusoidalPositionalEncoding, causal_mask,
                     masked_softmax, padding_mask, sinusoidal_table)
from .module import Module, Parameter
from .optim import AdamW, clip_grad_norm, cosine_lr

__version__ = "0.1.0"

__all__ = [
    "backend", "GELU", "ReLU", "MultiHeadAttention", "ScaledDotProductAttention", "causal_mask",
    "masked_softmax", "padding_mask", "DecoderBlock", "EncoderBlock", "Residual", "Dropout", "Embedding",
    "FeedForward", "check_layer", "numerical_gradient", "relative_error", "LayerNorm", "Linear",
    "CrossEntropyLoss", "Module", "Parameter", "AdamW", "clip_grad_norm", "cosine_lr",
    "LearnedPositionalEncoding", "PositionalEncoding", "SinusoidalPositionalEncoding", "sinusoidal_table",
    "RNN",
]
