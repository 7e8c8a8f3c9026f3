"""``Parameter`` and ``Module``: the small amount of bookkeeping every layer shares.

A ``Module`` finds its parameters by looking at its own attributes: a ``Parameter``, another ``Module``,
or a list of modules. Names are the attribute paths (``blocks.0.attn.q_proj.weight``), as in PyTorch.

Gradients *accumulate*: every backward does ``param.grad += ...``. Call ``zero_grad()`` before each
backward pass. Accumulating is what makes a parameter used twice (weight tying) correct: both uses add
their share, and the sum is the gradient.
"""
from __future__ import annotations

import numbers

from . import backend
from .backend import xp


class Parameter:
    """A trainable array and its gradient (same shape, same dtype, same device)."""

    def __init__(self, data):
        self.data = data
        self.grad = xp.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: ``__call__`` runs ``forward``; ``backward`` is each layer's own."""

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, *args, **kwargs):
        raise NotImplementedError

    # --- walking the tree ---------------------------------------------------------------------------------
    def named_children(self):
        for attr, value in vars(self).items():
            if isinstance(value, Module):
                yield attr, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{attr}.{i}", item

    def named_modules(self, prefix=""):
        yield prefix, self
        for attr, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{attr}" if prefix else attr)

    def named_parameters(self):
        """(name, Parameter) pairs; a parameter shared by two layers (tied weights) is listed once."""
        seen = set()
        for prefix, module in self.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{attr}" if prefix else attr), value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(int(p.data.size) for p in self.parameters())

    # --- training helpers ---------------------------------------------------------------------------------
    def zero_grad(self):
        for p in self.parameters():
            p.grad.fill(0)

    def train(self, mode: bool = True):
        """Training mode (dropout active) or, with ``mode=False``, evaluation mode."""
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    # --- saving and loading -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every parameter as a host NumPy copy, by name (so a GPU-trained model saves like a CPU one)."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters; names and shapes must match exactly."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"State does not match {type(self).__name__}: missing {missing}, "
                           f"unexpected {unexpected}. Was it saved from a model with another config?")
        for name, p in params.items():
            value = state[name]
            if tuple(value.shape) != tuple(p.data.shape):
                raise ValueError(f"Parameter {name!r} has shape {tuple(p.data.shape)} in the model but "
                                 f"{tuple(value.shape)} in the state; the configs differ.")
            p.data[...] = backend.asarray(backend.to_numpy(value), dtype=p.data.dtype)


# --- input checks shared by the layers ------------------------------------------------------------------

def check_last_dim(x, expected: int, layer: str, what: str = "features") -> None:
    """Raise a ValueError naming the layer, the expected size and the shape that arrived."""
    if x.ndim == 0 or x.shape[-1] != expected:
        raise ValueError(f"{layer} expects input with last dimension {what}={expected}, got shape "
                         f"{tuple(x.shape)}. Reshape the input or build the layer with the right size.")


def check_input_dtype(x, weight, layer: str, what: str = "x") -> None:
    """A float input must have the dtype of the layer's weights.

    NumPy would not complain: a float64 x times float32 weights is float64, so every activation after
    it (and every array kept for backward) would silently be float64 while the weights stay float32,
    at twice the memory. A gradient check the other way round (float64 weights, float32 input) would
    measure float32 rounding. One comparison per call: cheap enough for the hot path.
    """
    if x.dtype != weight.dtype:
        raise TypeError(f"{layer} got {what} of dtype {x.dtype}, but its weights are {weight.dtype}. "
                        f"Convert the input, {what}.astype({str(weight.dtype)!r}), or build the model "
                        f"in {x.dtype}: `with backend.using({str(x.dtype)!r}): model = ...`.")


def is_int(value) -> bool:
    """A whole number (Python's or NumPy's), and not a bool (which Python counts as an int)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_token_batch(idx, model: str, what: str = "token ids", axes: str = "[B, T]") -> None:
    """A model's input: token ids as an integer array of shape [B, T] with B ≥ 1 and T ≥ 1.

    (The upper limits, T ≤ block_size and ids < vocab_size, are checked where they are known.)
    """
    if not hasattr(idx, "dtype") or not hasattr(idx, "ndim"):
        raise TypeError(f"{model} expects {what} as an integer array of shape {axes}, got a "
                        f"{type(idx).__name__}. Convert it first: backend.asarray(ids) (a list of "
                        f"equally long lists of ints becomes a {axes} array on the current backend).")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{model} expects integer {what}, got dtype {idx.dtype}. Token ids index the "
                        "embedding table: encode text with the model's tokenizer, or convert whole "
                        "numbers with ids.astype('int64').")
    if idx.ndim != 2:
        raise ValueError(f"{model} expects {what} of shape {axes}, got shape {tuple(idx.shape)}. "
                         "One sequence of T ids is a batch of one: ids[None, :] has shape [1, T].")
    if idx.shape[0] == 0 or idx.shape[1] == 0:
        raise ValueError(f"{model} got empty {what}, shape {tuple(idx.shape)}: {axes} needs at least "
                         "one sequence of at least one token.")


def check_token_ids(idx, vocab_size: int, layer: str, allowed_extra=None) -> None:
    """Token ids must be integers in [0, vocab_size); ``allowed_extra`` (e.g. ignore_index) is let through."""
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{layer} expects integer token ids, got dtype {idx.dtype}.")
    if idx.size == 0:
        return
    check = idx if allowed_extra is None else xp.where(idx == allowed_extra, 0, idx)
    low, high = int(check.min()), int(check.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise IndexError(f"{layer}: token id {bad} is outside the vocabulary [0, {vocab_size}). "
                         "Encode text with the model's own tokenizer, or build the model with a larger "
                         "vocab_size.")
