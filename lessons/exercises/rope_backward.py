"""Exercise (lesson 24): the backward of rotary position embedding (RoPE), the inverse rotation.

Run it:  python lessons/24_rotary_positions.py --exercise
"""
import numpy as np


def rope_backward(self, dy):
    """dx from dy = ∂L/∂y: the body of RotaryEmbedding.backward.

    self: the RotaryEmbedding layer after its forward, which kept the angles it turned by:
          self.cos and self.sin, each [T, d_k], for the positions m = offset .. offset + T − 1
          (column i and column i + d_k/2 hold the same angle m·θ_i: the two features of pair i).
    dy: [..., T, d_k]. Returns dx [..., T, d_k]. The layer has no parameters.

    The forward turned every pair (x_i, x_{i+d_k/2}) by the angle m·θ_i:
        y = x ⊙ cos + rotate_half(x) ⊙ sin,     rotate_half(x) = concatenate([−x₂, x₁]) on the halves
    (rotate_half is in tinytransformer.layers.rotary). y = R x is linear, so dx = Rᵀ dy; which rotation
    is Rᵀ? Lesson 24 (step 4) says, and checks your answer by finite differences in float64, at
    offset 0 and at offset 7, and against the library.
    """
    # TODO: your code here (one or two lines).
    raise NotImplementedError
