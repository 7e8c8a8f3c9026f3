"""Training helpers: the AdamW optimizer, gradient clipping and the cosine learning-rate schedule.

These three are what nanoGPT's training loop uses, written out so that each line can be read against
the math. The arithmetic happens where the parameters live (``xp``: NumPy or CuPy); only single numbers
(the gradient norm, the learning rate) are Python floats on the host.
"""
from __future__ import annotations

import functools
import itertools
import math

from . import backend
from .backend import xp
from .module import Parameter


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    For every parameter θ with gradient g, at step t = 1, 2, ...:

        m = β1·m + (1 − β1)·g               first moment: a running mean of the gradient
        v = β2·v + (1 − β2)·g²              second moment: a running mean of its square
        m̂ = m / (1 − β1ᵗ)                  bias correction: m and v start at 0, so early
        v̂ = v / (1 − β2ᵗ)                  averages are too small by exactly these factors
        θ = θ − lr·wd·θ                     decoupled weight decay (matrices only, see below)
        θ = θ − lr · m̂ / (√v̂ + eps)

    Each coordinate moves by about lr whatever the gradient's scale, because m̂/√v̂ is a ratio of a
    gradient to its own typical size.

    Weight decay is *decoupled*: it shrinks θ directly instead of being added to g, so it is not divided
    by √v̂ (that is the W in AdamW). It is applied only to parameters with ndim ≥ 2: the weight
    matrices and embedding tables. Biases and LayerNorm gains (ndim 1) are not decayed; pulling a gain
    towards 0 would fight the normalisation. This is nanoGPT's ``configure_optimizers``: torch's AdamW
    with two parameter groups, one with ``weight_decay`` and one with 0.

    Usage::

        optimizer = AdamW(model.named_parameters(), lr=1e-3)
        model.zero_grad(); loss = ...; model.backward(...)
        optimizer.step(lr=cosine_lr(it, ...))     # an lr passed in replaces self.lr (for schedules)

    Parameters are updated in place (``p.data`` keeps its array), so a view of a weight elsewhere, such
    as a tied output layer, sees the update. m and v live on the parameter's device, in its dtype.

    On the CPU (parameters of one dtype), the gradients, m and v of all the parameters lie end to end in
    one array each (the optimizer moves each ``p.grad`` into its place when it is made): ``self.grad``,
    ``self.flat_m``, ``self.flat_v``, of which ``p.grad``, ``self.m[name]`` and ``self.v[name]`` are
    views. The update then runs over a few long stretches of memory, not over each small bias on its
    own: ``_update_groups`` (the same operations as the per-parameter ``_update``, in the same order, so
    the two agree bit for bit; tests/test_optim.py). Each group of parameters is about ``GROUP_SIZE``
    numbers, so that its g, m, v and step stay in a core's cache between one operation and the next.
    """

    # Numbers per group of the grouped update: 64 Ki float32 numbers are 256 kB an array, and g, m, v, the
    # step and a temporary (1.3 MB) fit in a 2 MB L2 cache. One update of the cpu preset's 804,096
    # parameters took 2.7 ms in groups of 64 Ki, 3.0 ms in groups of 16 Ki, 3.4 ms one parameter at a
    # time, and 7.4 ms as one group (Intel Xeon, one thread, medians of one run).
    GROUP_SIZE = 64 * 1024
    # The grouped update on the CPU; False runs ``_update``, the plain loop over parameters it stands for.
    grouped = True

    def __init__(self, named_parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        self.params = {}  # name -> Parameter, in the model's order
        for item in named_parameters:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter)):
                raise TypeError("AdamW takes (name, Parameter) pairs: pass model.named_parameters(), "
                                f"not model.parameters() (got an item of type {type(item).__name__}).")
            name, p = item
            twin = next((other for other, q in self.params.items() if q is p), None)
            if twin is not None:
                raise ValueError(f"AdamW: {name!r} is the same Parameter as {twin!r}, so it would be updated "
                                 "twice a step; list each parameter once (model.named_parameters() does).")
            self.params[name] = p
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), eps, weight_decay
        self.step_count = 0  # t, for the bias correction
        # Flat on the CPU when the parameters share one dtype; on a GPU, one fused kernel per parameter
        # (_fused_step) makes new m and v arrays at every step.
        dtypes = {p.data.dtype for p in self.params.values()}
        self.flat = not backend.is_gpu() and len(dtypes) == 1
        if not self.flat:
            self.m = {name: xp.zeros_like(p.data) for name, p in self.params.items()}
            self.v = {name: xp.zeros_like(p.data) for name, p in self.params.items()}
            return
        ends = list(itertools.accumulate(int(p.data.size) for p in self.params.values()))
        self.places = {name: slice(end - p.data.size, end)                # each one's [start, stop)
                       for (name, p), end in zip(self.params.items(), ends)}
        self.grad = xp.concatenate([p.grad.reshape(-1) for p in self.params.values()])
        self.flat_m, self.flat_v = xp.zeros_like(self.grad), xp.zeros_like(self.grad)
        self.m, self.v = {}, {}
        for name, p in self.params.items():
            self.m[name], self.v[name] = self._view(self.flat_m, name), self._view(self.flat_v, name)
        self._take_gradients()
        self.groups = group_parameters(self.places, self.GROUP_SIZE)

    def _view(self, flat, name):
        """Parameter ``name``'s place in one of the flat arrays, in the parameter's shape."""
        return flat[self.places[name]].reshape(self.params[name].data.shape)

    def move_state(self, copies) -> None:
        """Move the flat gradient, m and v into ``copies([grad, m, v])``, arrays of the same values elsewhere
        (memory that worker processes share: training/processes.py), and point the views at them."""
        self.grad, self.flat_m, self.flat_v = copies([self.grad, self.flat_m, self.flat_v])
        for name in self.params:
            self.m[name], self.v[name] = self._view(self.flat_m, name), self._view(self.flat_v, name)
        self._take_gradients()

    def _take_gradients(self) -> None:
        """Point every ``p.grad`` at its place in self.grad, bringing its values along: at the start, and
        again whenever something has set a ``p.grad`` to an array of its own since (another optimizer made
        for the same parameters, or code that assigns ``p.grad = ...``)."""
        for name, p in self.params.items():
            if p.grad.base is not self.grad:
                place = self._view(self.grad, name)
                place[...] = p.grad
                p.grad = place

    def decays(self, name) -> bool:
        """Whether weight decay applies to this parameter: matrices and tables (ndim ≥ 2) only."""
        return self.params[name].data.ndim >= 2

    def zero_grad(self) -> None:
        """Set every gradient to 0 (gradients accumulate, so do this before each backward)."""
        if self.flat:
            self._take_gradients()
            self.grad.fill(0)
            return
        for p in self.params.values():
            p.grad.fill(0)

    def step(self, lr=None, spread=None) -> None:
        """One update of every parameter from its current ``.grad``.

        Each parameter's update depends on nothing but its own θ, g, m and v, so the updates may run in
        parallel: ``spread(update, items, size)``, if given, runs ``update`` on shares of the items (the
        groups of parameters, or their names) at once (the training step's workers, training/step.py)."""
        if lr is not None:
            self.lr = float(lr)
        (beta1, beta2), wd = self.betas, self.weight_decay
        self.step_count += 1
        t = self.step_count
        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2 = 1.0 - beta2 ** t
        step_size = self.lr / bias_correction1                       # lr · m̂/m
        if backend.is_gpu():
            return self._fused_step(self.lr, step_size, math.sqrt(bias_correction2))
        numbers = (step_size, math.sqrt(bias_correction2), 1.0 - self.lr * wd)
        if self.flat and self.grouped:
            self._take_gradients()
            update = functools.partial(self._update_groups, numbers=numbers)
            items, size = self.groups, (lambda group: group[1] - group[0])
        else:
            update = functools.partial(self._update, numbers=numbers)
            items, size = list(self.params), (lambda name: self.params[name].data.size)
        if spread is None:
            update(items)
        else:
            spread(update, items, size=size)

    def _update(self, names, numbers) -> None:
        """The update of the parameters ``names``, one at a time: the plain form of ``_update_groups``.
        ``numbers``: this step's lr·(1 − β1ᵗ)⁻¹, √(1 − β2ᵗ) and decay factor 1 − lr·wd."""
        decay = numbers[2]                                           # 1 − lr·wd
        for name in names:
            p = self.params[name]
            step = self._moments_and_step(p.grad, self.m[name], self.v[name], numbers)
            if self.weight_decay != 0 and self.decays(name):
                p.data *= decay                                      # decay before the step, as torch
            p.data -= step

    def _update_groups(self, groups, numbers) -> None:
        """The same update, each group of parameters at once: m, v and the step over the group's stretch
        of the flat arrays, then θ of each parameter (whose arrays are its own, not in the flat ones)."""
        decay = numbers[2]                                           # 1 − lr·wd
        for start, stop, names in groups:
            step = self._moments_and_step(self.grad[start:stop], self.flat_m[start:stop],
                                          self.flat_v[start:stop], numbers)
            for name in names:
                p, place = self.params[name], self.places[name]
                if self.weight_decay != 0 and self.decays(name):
                    p.data *= decay                                  # decay before the step, as torch
                p.data -= step[place.start - start:place.stop - start].reshape(p.data.shape)

    def _moments_and_step(self, g, m, v, numbers):
        """m and v moved on by the gradient g, in place, and the step lr · m̂ / (√v̂ + eps) returned (a new
        array the shape of g), arranged as torch does: √v̂ = √v / √(1 − β2ᵗ), m̂ = m / (1 − β1ᵗ)."""
        (beta1, beta2), eps = self.betas, self.eps
        step_size, sqrt_bias_correction2, _ = numbers
        # In-place updates (*=, +=): no new arrays for m and v on every step.
        m *= beta1
        m += (1.0 - beta1) * g                                       # m = β1·m + (1 − β1)·g
        v *= beta2
        g2 = g * g
        g2 *= 1.0 - beta2
        v += g2                                                      # v = β2·v + (1 − β2)·g²
        step = xp.sqrt(v)
        step /= sqrt_bias_correction2
        step += eps                                                  # √v̂ + eps
        xp.divide(m, step, out=step)
        step *= step_size                                            # lr · m̂ / (√v̂ + eps)
        return step

    def _fused_step(self, lr, step_size, sqrt_bias_correction2):
        """The same update on a GPU: m, v and the step of each parameter in one fused kernel."""
        (beta1, beta2), wd = self.betas, self.weight_decay
        numbers = {}  # dtype -> the step's numbers as 0-d device arrays (cupy.fuse promotes Python floats)
        for name, p in self.params.items():
            if p.data.dtype not in numbers:
                numbers[p.data.dtype] = [backend.asarray(value, dtype=p.data.dtype) for value in
                                         (beta1, 1.0 - beta1, beta2, 1.0 - beta2, sqrt_bias_correction2,
                                          self.eps, step_size)]
            self.m[name], self.v[name], update = adamw_formula(p.grad, self.m[name], self.v[name],
                                                               *numbers[p.data.dtype])
            if wd != 0 and self.decays(name):
                p.data *= 1.0 - lr * wd                              # decay first, as torch does
            p.data -= update                                         # in place: views of θ see it

    # --- saving and loading -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Step count, hyperparameters, and m and v by parameter name as host NumPy copies."""
        return {
            "step": self.step_count,
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "m": {name: backend.to_numpy(m).copy() for name, m in self.m.items()},
            "v": {name: backend.to_numpy(v).copy() for name, v in self.v.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; the parameter names and shapes must match this optimizer's."""
        for key in ("m", "v"):
            missing = sorted(set(self.params) - set(state[key]))
            unexpected = sorted(set(state[key]) - set(self.params))
            if missing or unexpected:
                raise ValueError(f"Optimizer state does not match the parameters: {key} is missing "
                                 f"{missing} and has unexpected {unexpected}. Was it saved for a model "
                                 "with another config?")
            for name, p in self.params.items():
                if tuple(state[key][name].shape) != tuple(p.data.shape):
                    raise ValueError(f"Optimizer state {key}[{name!r}] has shape "
                                     f"{tuple(state[key][name].shape)} but the parameter has shape "
                                     f"{tuple(p.data.shape)}; the configs differ.")
        self.step_count = int(state["step"])
        self.lr, self.betas = float(state["lr"]), tuple(state["betas"])
        self.eps, self.weight_decay = state["eps"], state["weight_decay"]
        for name, p in self.params.items():
            # Host arrays -> the parameter's device and dtype, into m and v's own memory (the flat arrays).
            self.m[name][...] = backend.asarray(state["m"][name], dtype=p.data.dtype)
            self.v[name][...] = backend.asarray(state["v"][name], dtype=p.data.dtype)


def group_parameters(places: dict, size: int) -> list:
    """Consecutive parameters gathered into groups: a group closes as soon as it holds ``size`` numbers or
    more, so each but the last holds at least ``size``, and fewer than ``size`` before its last parameter.
    ``places`` maps each name to its slice [start, stop) of the flat arrays, in order; each group is
    (start, stop, names)."""
    groups, names, start = [], [], 0
    for name, place in places.items():
        names.append(name)
        if place.stop - start >= size:
            groups.append((start, place.stop, tuple(names)))
            names, start = [], place.stop
    if names:
        groups.append((start, places[names[-1]].stop, tuple(names)))
    return groups


@backend.fuse
def adamw_formula(g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, eps,
                  step_size):
    """AdamW's moments and step for one parameter, as ``AdamW.step`` computes them in place on NumPy.

    Returns (m, v, update) with θ_new = θ − update (after the decay). The operations and their order are
    those of the in-place code, so that the two agree bit for bit on the CPU.
    """
    m = m * beta1 + one_minus_beta1 * g                                 # m = β1·m + (1 − β1)·g
    v = v * beta2 + g * g * one_minus_beta2                             # v = β2·v + (1 − β2)·g²
    update = m / (xp.sqrt(v) / sqrt_bias_correction2 + eps) * step_size  # lr · m̂ / (√v̂ + eps)
    return m, v, update


def clip_bound(grad_clip: float) -> float:
    """A ``grad_clip`` setting as clip_grad_norm's ``max_norm``: 0 means no clipping (nanoGPT's convention),
    so the bound is infinite and the gradients stay as they are (their norm is still measured)."""
    return grad_clip if grad_clip > 0 else math.inf


def clip_grad_norm(parameters, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

        norm = √( Σ_params Σ_entries g² )            one norm over every gradient, as if concatenated
        if norm > max_norm:  g ← g · max_norm / (norm + 1e-6)   for every g, in place

    Scaling all gradients by one factor keeps the update's direction and only shortens it: a rare huge
    gradient (a loss spike) cannot throw the weights far. The 1e-6 is torch's
    ``clip_grad_norm_``, which this matches.

    Returns the norm *before* clipping, as a Python float. It is NaN or inf when any gradient holds NaN
    or inf (the gradients are then left as they are), which is the signal for a training loop to stop.
    """
    parameters = list(parameters)
    total = 0.0
    for p in parameters:
        g = p.grad.reshape(-1)
        total = total + xp.dot(g, g)  # Σ g², as one BLAS dot; a 0-d device array, copied to the host once
    norm = math.sqrt(float(total))
    if math.isfinite(norm) and norm > max_norm:  # NaN or inf: nothing sensible to scale to; leave them
        scale = max_norm / (norm + 1e-6)
        for p in parameters:
            p.grad *= scale
    return norm


def cosine_lr(it: int, *, lr: float, min_lr: float, warmup_iters: int, lr_decay_iters: int) -> float:
    """The learning rate at iteration ``it``: linear warmup, then cosine decay to ``min_lr`` (nanoGPT).

        it < warmup_iters:          lr · (it + 1) / (warmup_iters + 1)        rises linearly towards lr
        warmup ≤ it ≤ decay_iters:  min_lr + ½(1 + cos(π·r)) · (lr − min_lr),  r = (it − warmup) /
                                                                               (decay_iters − warmup)
        it > lr_decay_iters:        min_lr

    Warmup keeps the first updates small while Adam's v is still a poor estimate; the slow decay lets
    the weights settle into a minimum at the end.
    """
    if it < warmup_iters:
        return lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:  # at it == lr_decay_iters the cosine is already at min_lr
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)  # in [0, 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))                # 1 -> 0
    return min_lr + coeff * (lr - min_lr)
