"""What every layer's tests share: the tolerances, and the three checks each layer goes through.

1. ``assert_gradients_check``: the layer's hand-written backward against finite differences (float64).
2. ``assert_matches_torch``: the layer's output or gradient against PyTorch's with the same weights.
3. ``assert_stays_float32``: float32 in, float32 out, in forward, backward and the parameters' gradients.

The largest error each layer shows is remembered in ``LARGEST``; ``pytest --error-table`` prints them.
"""
from __future__ import annotations

from collections import defaultdict

import numpy
from hypothesis import settings

from tinytransformer import LayerNorm, Linear, Module, backend, check_layer, relative_error

# Centred differences in float64 with h = 1e-5 are accurate to about 1e-10 relative (truncation O(h²),
# rounding ~1e-16/h), while a backward with a real mistake in it is off by 1e-3 or more. 1e-7 sits
# between the two with a margin of about a thousand on either side.
GRAD_TOL = 1e-7

# PyTorch in float64 computes the same formulas in another order, so the two agree to rounding (~1e-15
# relative). 1e-10 leaves room for that and for nothing else.
TORCH_TOL = 1e-10

# Settings for the property tests that run finite differences. Those have a noise floor of ~1e-10
# (absolute), and on a tiny random problem one gradient can be small by accident, ~1e-4 when two keys
# of an attention head nearly coincide, say; its relative error then measures the noise, not the
# backward. The sizes in those tests keep such problems rare (about one in several thousand), and
# derandomize=True draws the same examples on every run, so a lucky draw cannot fail CI one day in fifty.
# A wrong backward is off by 1e-3 or more on essentially every example, fixed or not.
GRADIENT_PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)

# layer name -> {"finite differences": largest relative error seen,
#                "torch abs": largest |ours − torch|,
#                "torch rel": largest ‖ours − torch‖ / (‖ours‖ + ‖torch‖)}
LARGEST: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))


def _remember(layer: str, what: str, value: float) -> None:
    LARGEST[layer][what] = max(LARGEST[layer][what], float(value))


def assert_gradients_check(layer, inputs: dict, forward_kwargs: dict | None = None, name: str | None = None,
                           seed: int = 0) -> dict:
    """Finite-difference check of every float input and every parameter; returns {name: relative error}.

    Build the layer and its inputs inside ``with backend.using("float64"):``.
    """
    errors = check_layer(layer, inputs, forward_kwargs, seed=seed)
    checked = [n for n, x in inputs.items() if x.dtype.kind == "f"] + [n for n, _ in layer.named_parameters()]
    assert sorted(errors) == sorted(checked), f"not every input and parameter was checked: {sorted(errors)}"
    _remember(name or type(layer).__name__, "finite differences", max(errors.values(), default=0.0))
    too_large = {n: e for n, e in errors.items() if not e <= GRAD_TOL}  # `not <=` also catches NaN
    assert not too_large, f"gradient check failed (tolerance {GRAD_TOL}): {too_large}; all errors: {errors}"
    return errors


def assert_matches_torch(ours, theirs, layer: str, what: str) -> None:
    """``ours`` (a backend array) equals ``theirs`` (a torch tensor) to TORCH_TOL, entry by entry."""
    ours = backend.to_numpy(ours)
    theirs = theirs.detach().cpu().numpy()
    assert ours.shape == theirs.shape, f"{layer} {what}: shape {ours.shape} vs torch {theirs.shape}"
    _remember(layer, "torch abs", numpy.abs(ours - theirs).max(initial=0.0))
    _remember(layer, "torch rel", relative_error(ours, theirs))
    numpy.testing.assert_allclose(ours, theirs, rtol=TORCH_TOL, atol=TORCH_TOL, err_msg=f"{layer}: {what}")


def assert_stays_float32(layer, inputs: dict, forward_kwargs: dict | None = None) -> None:
    """A float32 forward and backward keep float32 everywhere: no silent upcast to float64."""
    out = layer(**inputs, **(forward_kwargs or {}))
    assert out.dtype == numpy.float32, f"forward returned {out.dtype}"
    dout = backend.randn(out.shape, rng=backend.new_host_rng(0), dtype=numpy.float32)
    grads = layer.backward(dout)
    for grad in grads if isinstance(grads, tuple) else (grads,):
        if grad is not None:
            assert grad.dtype == numpy.float32, f"backward returned {grad.dtype}"
    for name, p in layer.named_parameters():
        assert p.data.dtype == numpy.float32, f"parameter {name} is {p.data.dtype}"
        assert p.grad.dtype == numpy.float32, f"gradient of {name} is {p.grad.dtype}"


def to_torch(torch, array, requires_grad: bool = True):
    """A float64 leaf tensor holding a copy of ``array`` (any backend)."""
    return torch.tensor(backend.to_numpy(array), dtype=torch.float64, requires_grad=requires_grad)


def set_torch_param(torch, param, array) -> None:
    """Overwrite a torch parameter in place with our array (same layout; transpose before if needed)."""
    with torch.no_grad():
        param.copy_(torch.as_tensor(numpy.ascontiguousarray(backend.to_numpy(array))))


class TinyNet(Module):
    """x -> Linear -> LayerNorm -> Linear: the small model of the optimizer and checkpoint tests."""

    def __init__(self, d_in=4, d_hidden=8, d_out=3, seed=0):
        rng = numpy.random.default_rng(seed)
        self.fc1 = Linear(d_in, d_hidden, rng=rng)
        self.ln = LayerNorm(d_hidden)
        self.fc2 = Linear(d_hidden, d_out, rng=rng)

    def forward(self, x):
        return self.fc2(self.ln(self.fc1(x)))

    def backward(self, dy):
        return self.fc1.backward(self.ln.backward(self.fc2.backward(dy)))
