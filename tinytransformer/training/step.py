"""One training step's gradient: on one worker, or with the batch shared out among several.

    accumulate_gradients(model, x, y, grad_accum)   the plain step: one worker goes through the batch
    DataParallel(model, workers)                    the same step, each worker on its share of the rows

Data parallelism is how a batch is split across GPUs (PyTorch's DistributedDataParallel); here the
workers are threads of one process, so that every core works on all of the step, not only on the
matrix products that BLAS already spreads over the cores (processes.py runs the same step with each
worker a process, which Linux's training runs use):

    batch x, y [B, T]  ->  shares of rows  x₀ [B₀, T], x₁ [B₁, T], ...        B₀ + B₁ + ... = B
    worker i, in parallel:   Lᵢ = replicaᵢ(xᵢ, yᵢ);   gᵢ = ∇(wᵢ·Lᵢ)          wᵢ = nᵢ / Σⱼ nⱼ
    then once:               L = Σᵢ wᵢ·Lᵢ;   model's gradient = Σᵢ gᵢ

nᵢ counts the targets of share i that are not ignored (CrossEntropyLoss's ignore_index), so L is the
mean over all the batch's targets, the loss of one forward over the whole batch, and Σᵢ gᵢ its gradient.

Why Python threads help: NumPy releases Python's global lock (the GIL) inside its loops and BLAS calls,
so one worker's GELU runs while another's matrix product does; only the Python between NumPy calls
takes turns. Each worker's BLAS runs on one thread, or the workers' BLAS threads would fight over the
same cores.

A replica is the model with gradients and kept activations of its own, but the *same* parameter arrays
(p.data): AdamW's in-place step on the model is seen by every replica, with nothing to copy. Worker 0 is
the model itself.

The same result on every run: the shares are fixed by B and the number of workers, and the gradients
are summed in worker order, not in the order the threads finish. Another number of workers sums in
another order, so its float32 result differs in the last bits (as another BLAS kernel's does); in
float64 a test holds it equal to the plain step to 1e-12. Workers need the CPU (NumPy) and no dropout:
each replica's dropout would draw its own masks from a copy of the same generator.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

from .. import backend
from ..backend import xp
from ..machine import one_blas_thread, usable_cores

# The default's ceiling, not measured beyond 2 cores: threads take turns at Python's lock between their
# NumPy calls, and each worker (thread or process) holds the activations of its share and a gradient, so
# past a few workers they would cost more than the rows a worker saves.
MAX_DEFAULT_WORKERS = 4
# The least work worth a worker of its own, in numbers per layer: a share's rows · T · n_embd. On a 2-core
# Intel Xeon, 8 rows of 32 tokens at n_embd 32 (4,096 a share) took 4.4 ms a step on one worker and 8.0
# to 8.5 on two; at T 64 and n_embd 64 (16,384 a share) the two were level; the cpu preset (49,152) gains.
MIN_SHARE = 32 * 1024


def accumulate_gradients(model, x, y, grad_accum: int):
    """One step's gradient from the batch x, y [grad_accum·B, T], computed in grad_accum micro-batches
    of B rows; returns the step's loss (a backend scalar).

    The step's loss is the mean of the micro-batches' losses, L = (1/N) Σᵢ Lᵢ with N = grad_accum; each
    Lᵢ is the mean over its B·T tokens, so L is the mean over all N·B·T tokens, the loss of the whole
    batch at once. Its gradient is (1/N) Σᵢ ∇Lᵢ: each backward adds its ∇Lᵢ into param.grad, and the sum
    is divided by N once at the end. Only one micro-batch's activations are alive at a time, so a step
    needs the memory of a batch of B and gets the gradient of a batch of N·B.
    """
    micro = x.shape[0] // grad_accum
    model.zero_grad()
    total = 0.0
    for i in range(grad_accum):
        rows = slice(i * micro, (i + 1) * micro)
        _, loss = model(x[rows], y[rows])                    # [B, T] -> the mean loss of this micro-batch
        model.backward()                                     # param.grad += ∇Lᵢ
        total = total + loss
    if grad_accum > 1:
        for p in model.parameters():
            p.grad /= grad_accum                             # the sum of N gradients -> their mean
    return total / grad_accum


def default_workers(rows: int, row_size: int) -> int:
    """Workers when none are asked for, for micro-batches of ``rows`` rows of ``row_size`` = T·n_embd
    numbers each: one per core this process may use, at most MAX_DEFAULT_WORKERS and one per row, and
    only as many as have a share of at least MIN_SHARE numbers; one off the CPU (a GPU runs one stream)."""
    if backend.name() != "numpy":
        return 1
    return max(1, min(usable_cores(), MAX_DEFAULT_WORKERS, rows, rows * row_size // MIN_SHARE))


def workers_of(cfg) -> int:
    """A run's workers (``cfg``: its TrainConfig): --workers if given; else ``default_workers`` for its
    micro-batches, or one with dropout (each replica's dropout would draw from a copy of one generator)."""
    if cfg.workers:
        return cfg.workers
    return default_workers(cfg.batch_size, cfg.block_size * cfg.n_embd) if cfg.dropout == 0 else 1


def shares(rows: int, workers: int) -> list:
    """Rows 0 .. rows−1 as consecutive slices, one per worker (at most one per row), whose sizes differ
    by at most one: 12 rows for 2 workers -> 6 + 6; 5 rows -> 2 + 3."""
    workers = min(workers, rows)
    bounds = [rows * i // workers for i in range(workers + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(workers)]


def share_weights(y, parts, ignore_index) -> list:
    """wᵢ = nᵢ / Σⱼ nⱼ for each share ``parts[i]`` of the targets y, where nᵢ counts the targets of share i
    that are not ``ignore_index``: the weights that make Σᵢ wᵢ·Lᵢ the mean loss over the whole batch."""
    counts = [int((y[part] != ignore_index).sum()) for part in parts]
    return [n / max(sum(counts), 1) for n in counts]


def deal(items, workers: int, size) -> list:
    """``items`` dealt out into ``workers`` groups of about equal total ``size(item)``: largest first, each
    to the group that holds least so far (ties: the first such group), so the workers finish together."""
    groups, loads = [[] for _ in range(workers)], [0] * workers
    for item in sorted(items, key=size, reverse=True):       # sorted is stable: the same groups every run
        least = loads.index(min(loads))
        groups[least].append(item)
        loads[least] += size(item)
    return groups


def replica_of(model):
    """A copy of ``model`` that shares its parameter arrays (p.data) and has gradients of its own.

    copy.deepcopy copies everything but what its memo already maps: mapping each parameter array to
    itself keeps it shared (and a tied weight stays one Parameter, as deepcopy keeps shared objects)."""
    shared = {id(p.data): p.data for p in model.parameters()}
    twin = copy.deepcopy(model, memo=shared)
    for p in twin.parameters():
        p.grad = xp.zeros_like(p.data)
    return twin


class DataParallel:
    """``workers`` replicas of ``model`` that compute one step's gradient together; with one worker,
    the plain ``accumulate_gradients``. The sum lands in ``model``'s gradients, where the optimizer
    reads it."""

    def __init__(self, model, workers: int):
        if workers > 1 and backend.name() != "numpy":
            raise ValueError(f"DataParallel: {workers} workers need the CPU (NumPy) backend, not "
                             f"{backend.name()}; use one worker.")
        self.model, self.workers = model, workers
        self.replicas = [model] + [replica_of(model) for _ in range(workers - 1)]
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="worker") if workers > 1 else None
        # Each replica's parameters, found once rather than by walking its modules at every step.
        self.replica_parameters = [replica.parameters() for replica in self.replicas]
        # For the sum of the gradients: each parameter with its copies in the other replicas.
        self.copies = list(zip(*self.replica_parameters))
        self.dealt = {}   # items -> their groups: every step spreads the same items, dealt once

    def accumulate_gradients(self, x, y, grad_accum: int) -> float:
        """As ``accumulate_gradients``: the gradient of the mean loss over x, y [grad_accum·B, T], in
        grad_accum micro-batches, each shared out among the workers; returns the loss."""
        if self.pool is None:
            return float(accumulate_gradients(self.model, x, y, grad_accum))
        micro = x.shape[0] // grad_accum
        total = 0.0
        with one_blas_thread():
            self._zero_gradients()
            for i in range(grad_accum):
                rows = slice(i * micro, (i + 1) * micro)
                # Each micro-batch's loss is weighted 1/grad_accum: the step's loss is their mean.
                total += self._in_parallel(x[rows], y[rows], backward=True, scale=1.0 / grad_accum)
            self._sum_gradients()
        return total

    def loss(self, x, y) -> float:
        """The mean loss over x, y [B, T] (a forward only, shared out as the step's)."""
        if self.pool is None:
            return float(self.model(x, y)[1])
        with one_blas_thread():
            return self._in_parallel(x, y, backward=False, scale=1.0)

    def _in_parallel(self, x, y, backward: bool, scale: float) -> float:
        """Σᵢ wᵢ·Lᵢ over the shares of x, y, each on its worker; with ``backward``, replica i's gradients
        grow by ∇(scale·wᵢ·Lᵢ)."""
        parts = shares(x.shape[0], self.workers)
        weights = share_weights(y, parts, self.model.loss_fn.ignore_index)   # wᵢ = nᵢ / Σⱼ nⱼ

        def work(i):
            replica, part = self.replicas[i], parts[i]
            _, loss = replica(x[part], y[part])
            if backward:   # the loss's backward with dloss = scale·wᵢ: the gradient of scale·wᵢ·Lᵢ
                replica.backward(replica.loss_fn.backward(scale * weights[i]))
            return weights[i] * float(loss)

        return scale * sum(self.pool.map(work, range(len(parts))))          # in worker order

    def _zero_gradients(self) -> None:
        """Every replica's gradients set to 0, each replica's by a worker of its own."""
        def zero(replicas):
            for i in replicas:
                for p in self.replica_parameters[i]:
                    p.grad.fill(0)

        self.spread(zero, range(len(self.replicas)))

    def _sum_gradients(self) -> None:
        """model's gradients += every other replica's, in worker order; the parameters are spread among
        the workers, so that the sums run in parallel too."""
        def add_up(copies):
            for own, *others in copies:
                for other in others:
                    own.grad += other.grad

        self.spread(add_up, self.copies, size=lambda copies: copies[0].data.size)

    def spread(self, function, items, size=lambda item: 1) -> None:
        """``function(group)`` for each worker's group of ``items`` (``deal``), in parallel: for work in which
        each item is independent of the others, such as one parameter's AdamW update
        (``optimizer.step(lr, spread=parallel.spread)``)."""
        if self.pool is None:
            function(list(items))
            return
        key = tuple(items)
        if key not in self.dealt:
            self.dealt[key] = deal(key, self.workers, size)
        list(self.pool.map(function, self.dealt[key]))

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode for every replica."""
        for replica in self.replicas:
            replica.train(mode)

    def eval(self) -> None:
        self.train(False)

    def close(self) -> None:
        """Let the worker threads go (they wait for work between steps)."""
        if self.pool is not None:
            self.pool.shutdown()
