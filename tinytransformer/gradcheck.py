"""Finite-difference gradient checks: the proof that a hand-written backward is right.

The centred difference  (f(x + h) − f(x − h)) / 2h  approximates df/dx with error O(h²). In float64 with
h = 1e-5 that is ~1e-10 relative, far below the 1e-7 a wrong backward could hide under. A layer with
output y is checked through the scalar f = Σ y ⊙ g for a fixed random g: then df/dy = g, so running
``backward(g)`` must give df/dx and df/dθ for every input x and parameter θ.

Compare with ``relative_error``, which is per tensor:  ‖a − n‖ / (‖a‖ + ‖n‖). (CS231n's element-wise
version is harsh on single entries whose true gradient is ~0, where finite differences only have
absolute accuracy, ~1e-11 here; a per-tensor norm weighs every entry by its size instead.)

A gradient that is exactly zero in theory (the key projection's bias in attention: adding the same
number to every score of a row leaves softmax unchanged) has no meaningful relative error. When both
norms are below ``ZERO_TOL`` = 1e-8, far above finite-difference noise and far below any real
gradient here, the two count as equal and the error is reported as 0.
"""
from __future__ import annotations

from . import backend
from .backend import xp

DEFAULT_H = 1e-5
ZERO_TOL = 1e-8


def relative_error(a, b) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖) on any backend's arrays; 0 when both are zero to within ZERO_TOL."""
    a, b = backend.to_numpy(a), backend.to_numpy(b)
    diff = float(((a - b) ** 2).sum() ** 0.5)
    size = float((a ** 2).sum() ** 0.5 + (b ** 2).sum() ** 0.5)
    if size < ZERO_TOL:
        return 0.0
    return diff / size


def numerical_gradient(f, x, h: float = DEFAULT_H, order: int = 2):
    """df/dx of a scalar function ``f()`` that reads the array ``x``, by centred differences.

    order=2:  (f(x+h) − f(x−h)) / 2h                               error O(h²)
    order=4:  (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h       error O(h⁴)

    The fourth-order form allows a larger h (1e-3), which shrinks the rounding error ~ ε·|f|/h; whole
    models, whose smallest gradients are ~1e-4, need that to reach 1e-7. ``x`` is nudged in place, one
    entry at a time, and restored.
    """
    if x.dtype != xp.float64:
        raise TypeError(f"Gradient checks need float64 (float32 rounding swamps the difference); got "
                        f"{x.dtype}. Build the layer inside `with backend.using('float64'):`.")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order}.")
    steps, weights = ((1, -1), (1, -1)) if order == 2 else ((2, 1, -1, -2), (-1, 8, -8, 1))
    denominator = 2 * h if order == 2 else 12 * h
    grad = xp.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: writing them writes x and grad
    for i in range(flat_x.size):
        saved = float(flat_x[i])
        total = 0.0
        for step, weight in zip(steps, weights):
            flat_x[i] = saved + step * h
            total += weight * float(f())
        flat_x[i] = saved
        flat_grad[i] = total / denominator
    return grad


def check_layer(layer, inputs: dict, forward_kwargs: dict | None = None, seed: int = 0,
                h: float = DEFAULT_H, order: int = 2) -> dict:
    """Check ``layer.backward`` against finite differences for every float input and every parameter.

    ``inputs`` maps argument names to arrays passed to ``layer.forward`` as keywords (integer arrays such
    as token ids are passed but not differentiated); ``forward_kwargs`` are extra non-array arguments
    (masks, flags). ``backward`` must return the gradients of the float inputs in ``inputs`` order: one
    array, or a tuple. Returns {name: relative error} for each input ("x", ...) and parameter
    ("weight", "q_proj.bias", ...).
    """
    forward_kwargs = forward_kwargs or {}
    layer.zero_grad()
    out = layer(**inputs, **forward_kwargs)                      # also fills the caches backward reads
    g = backend.randn(out.shape, rng=backend.new_host_rng(seed), dtype=out.dtype)  # same g on any backend

    def f():
        return (layer(**inputs, **forward_kwargs) * g).sum()

    # Analytic gradients: backward(g) gives df/dx and df/dθ, since f = Σ out ⊙ g.
    grads = layer.backward(g)
    grads = [gr for gr in (grads if isinstance(grads, tuple) else (grads,)) if gr is not None]
    float_inputs = [name for name, x in inputs.items() if x.dtype.kind == "f"]
    if len(float_inputs) != len(grads):
        raise ValueError(f"backward returned {len(grads)} gradient(s) for float inputs {float_inputs}.")
    analytic = dict(zip(float_inputs, grads))
    analytic.update({name: p.grad.copy() for name, p in layer.named_parameters()})

    errors = {}
    for name in float_inputs:
        errors[name] = relative_error(analytic[name], numerical_gradient(f, inputs[name], h, order))
    for name, p in layer.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_gradient(f, p.data, h, order))
    return errors

