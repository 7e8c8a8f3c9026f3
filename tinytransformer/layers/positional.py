"""Positional encodings: attention alone cannot tell positions apart, so each position gets a vector.

Both classes add a position vector to each token vector: y[b, t] = x[b, t] + P[t].
"""
from __future__ import annotations


from .. import backend
from ..backend import xp
from ..module import Module, Parameter, check_last_dim


def sinusoidal_table(length: int, d_model: int):
    """The fixed table of "Attention Is All You Need" (2017), section 3.5, as a host-independent array:

        P[t, 2i]   = sin(t / 10000^(2i/d_model))
        P[t, 2i+1] = cos(t / 10000^(2i/d_model))

    Each pair of columns is a sinusoid of its own wavelength, from 2π to 10000·2π.
    """
    position = xp.arange(length, dtype=xp.float64)[:, None]                  # [T, 1]
    even = xp.arange(0, d_model, 2, dtype=xp.float64)                       # [ceil(d/2)]: the values 2i
    angle = position / (10000.0 ** (even / d_model))                        # [T, ceil(d/2)]
    table = xp.zeros((length, d_model), dtype=xp.float64)                   # [T, d_model]
    table[:, 0::2] = xp.sin(angle)
    table[:, 1::2] = xp.cos(angle[:, : d_model // 2])  # odd d_model: one fewer cosine column
    return table


class SinusoidalPositionalEncoding(Module):
    """y = x + P[:T] with the fixed sinusoidal table P (no parameters); dx = dy.

    The table is computed for any length on demand, so there is no maximum context.
    """

    def __init__(self, d_model: int):
        self.d_model = d_model
        self.table = None  # cached P, grown when a longer sequence arrives

    def encoding(self, length: int, dtype):
        if self.table is None or self.table.shape[0] < length or self.table.dtype != dtype:
            self.table = sinusoidal_table(length, self.d_model).astype(dtype)
        return self.table[:length]                                          # [T, d_model]

    def forward(self, x, start: int = 0):
        """x [B, T, d] holds positions start .. start+T-1 (start > 0 when generating with a KV cache)."""
        check_last_dim(x, self.d_model, "SinusoidalPositionalEncoding", "d_model")
        length = x.shape[-2]
        return x + self.encoding(start + length, x.dtype)[start:]          # [B, T, d] + [T, d]

    def backward(self, dy):
        return dy                                                           # P is a constant


class LearnedPositionalEncoding(Module):
    """y = x + P[:T] with a learned table P [block_size, d_model]; dP[:T] += Σ_b dy[b], dx = dy.

    The table has one row per position up to ``block_size`` (the model's context); a longer sequence has
    no row and is an error. Initialisation: Normal(0, 1) (GPT-style models re-initialise).
    """

    def __init__(self, block_size: int, d_model: int, rng=None):
        self.block_size, self.d_model = block_size, d_model
        self.weight = Parameter(backend.randn((block_size, d_model), rng=rng))
        self.rows = None  # slice of the positions in the last forward: which rows get a gradient

    def forward(self, x, start: int = 0):
        """x [B, T, d] holds positions start .. start+T-1 (start > 0 when generating with a KV cache)."""
        check_last_dim(x, self.d_model, "LearnedPositionalEncoding", "d_model")
        end = start + x.shape[-2]
        if end > self.block_size:
            raise ValueError(f"Sequence too long: model context is {self.block_size}, got {end}. "
                             "Crop the input to the last block_size tokens, or build the model with a "
                             "larger block_size.")
        self.rows = slice(start, end)
        return x + self.weight.data[self.rows]                              # [B, T, d] + [T, d]

    def backward(self, dy):
        leading = tuple(range(dy.ndim - 2))                                 # every axis before T
        self.weight.grad[self.rows] += dy.sum(axis=leading)                 # [T, d_model]
        return dy


def PositionalEncoding(kind: str, d_model: int, block_size: int | None = None, rng=None):
    """Build either encoding by name: ``"sinusoidal"`` (fixed) or ``"learned"`` (needs block_size)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model)
    if kind == "learned":
        if block_size is None:
            raise ValueError("A learned positional encoding needs block_size (its number of rows).")
        return LearnedPositionalEncoding(block_size, d_model, rng=rng)
    raise ValueError(f"Unknown positional encoding {kind!r}; use 'sinusoidal' or 'learned'.")
