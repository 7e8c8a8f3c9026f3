"""Rotary position embedding (RoPE): positions as rotations of the queries and keys (RoFormer; LLaMA)."""
from __future__ import annotations

import math

from .. import backend
from ..backend import xp
from ..module import Module


def rope_angles(length: int, d_k: int, theta: float = 10000.0, offset: int = 0, dtype=None, scaling=None):
    """cos and sin of the angles m·θ_i, each [length, d_k], for positions m = offset .. offset + length − 1.

    θ_i = theta^(−2i/d_k) for i = 0 .. d_k/2 − 1: the first pair of features turns fastest (one radian
    per position), the last slowest. Each angle appears twice, in column i and in column i + d_k/2, the
    two features it rotates together (Hugging Face's layout; the RoFormer paper pairs neighbours instead,
    the same rotation with the features in another order). The angles are computed in float64 and
    returned in ``dtype`` (default: the backend's). ``scaling``: Llama 3's frequencies (llama3_frequencies).
    """
    if d_k % 2:
        raise ValueError(f"RoPE rotates features in pairs, so the head size must be even; got d_k={d_k}.")
    inv_freq = 1.0 / theta ** (xp.arange(0, d_k, 2, dtype="float64") / d_k)          # [d_k/2]
    if scaling is not None:
        inv_freq = llama3_frequencies(inv_freq, **scaling)
    angles = xp.arange(offset, offset + length, dtype="float64")[:, None] * inv_freq  # [length, d_k/2]
    angles = xp.concatenate([angles, angles], axis=-1)                               # [length, d_k]
    dtype = dtype or backend.default_dtype()
    return xp.cos(angles).astype(dtype), xp.sin(angles).astype(dtype)


def llama3_frequencies(inv_freq, factor: float, low_freq_factor: float, high_freq_factor: float,
                       original_max_position_embeddings: int):
    """Llama 3.1's longer context: the slow pairs turned ``factor`` times slower, the fast ones unchanged.

    A pair whose wavelength 2π/θ_i is longer than L/low_freq_factor (L: the context it was trained at)
    never completed a turn in training, so its angles past L would be new to the model: it is slowed
    down by ``factor`` so that they stay in the range seen. A pair shorter than L/high_freq_factor turned
    many times in training and is kept as it is. In between the two, θ_i is blended linearly in L/λ_i.
    (Hugging Face's rope_type "llama3"; tests/test_llama.py holds the two equal.)
    """
    L = original_max_position_embeddings
    wavelength = 2 * math.pi / inv_freq
    slow = wavelength > L / low_freq_factor
    fast = wavelength < L / high_freq_factor
    blend = (L / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)   # 0 slow .. 1 fast
    blended = (1 - blend) * inv_freq / factor + blend * inv_freq
    return xp.where(slow, inv_freq / factor, xp.where(fast, inv_freq, blended))


def rotate_half(x):
    """(x₁, x₂) -> (−x₂, x₁) on the two halves of the last axis: a quarter turn of every pair (i, i + d/2)."""
    half = x.shape[-1] // 2
    return xp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


class RotaryEmbedding(Module):
    """x' = x ⊙ cos(mθ) + rotate_half(x) ⊙ sin(mθ), for x [..., T, d_k] at positions m = offset .. offset + T − 1.

    Every pair of features (x_i, x_{i+d/2}) of a query or key at position m is turned by the angle m·θ_i.
    A rotation R_m keeps lengths, and R_mᵀ R_n = R_{n−m}, so the score of a query at m and a key at n,
        (R_m q) · (R_n k) = q · R_{n−m} k,
    depends on the positions only through n − m: attention sees relative positions, with nothing added
    to the token vectors and no table to learn (tests/test_rotary.py checks this).

    Backward: the rotation is linear and orthogonal, so its gradient is the inverse rotation, by −mθ:
        dx = dx' ⊙ cos(mθ) − rotate_half(dx' ⊙ sin(mθ))
    (rotate_half's transpose is −rotate_half). There are no parameters.
    """

    def __init__(self, d_k: int, theta: float = 10000.0, scaling: dict | None = None):
        if d_k % 2:
            raise ValueError(f"RoPE rotates features in pairs, so the head size must be even; got d_k={d_k}.")
        self.d_k, self.theta, self.scaling = d_k, theta, scaling
        self.cos = self.sin = None   # the angles of the last forward, [T, d_k], for its backward
        self.angles_for = None       # (T, offset, dtype) they were made for: q and k reuse one set

    def forward(self, x, offset: int = 0):
        # in x's own dtype: a float64 model keeps float64 angles under a float32 default, and the other way
        key = (x.shape[-2], offset, x.dtype)
        if key != self.angles_for:   # attention turns q, then k, at the same positions: compute once
            self.cos, self.sin = rope_angles(x.shape[-2], self.d_k, self.theta, offset, dtype=x.dtype,
                                             scaling=self.scaling)
            self.angles_for = key
        return x * self.cos + rotate_half(x) * self.sin                          # [..., T, d_k]

    def backward(self, dy):
        return dy * self.cos - rotate_half(dy * self.sin)                        # [..., T, d_k]
