"""Data parallelism over worker processes: DataParallel's step (step.py), each worker a process of its own.

Threads of one process take turns at Python's global lock (the GIL) between their NumPy calls, and each
hand-over wakes a thread on another core. On a 2-core AMD EPYC the two threads of DataParallel stood idle
8-9% of the step for it (docs/performance.md); processes each have a lock of their own. What threads
share for free, processes are given:

    the parameters   one block of memory that every process maps (mmap, MAP_SHARED), made before the
                     workers start: an update of the weights in place is seen by every worker
    the gradients    worker i ≥ 1 writes its gradient into a block of its own, shared the same way; the
                     main process (worker 0, the model itself) adds them to its own, in worker order
    the rows         worker i's share of x, y goes to it through a pipe (a few kB); its loss comes back
    AdamW's update   its flat gradient, m and v are shared too, and each worker updates its groups of
                     parameters (``spread``), as DataParallel's threads do (about 5% of the step, on one core)

So the step is DataParallel's, bit for bit: the same shares, the same weights wᵢ, the same order of sums,
and the same update of each parameter.

A worker is started by fork, a copy of the main process with the model in it, so it is Linux's (where
fork is safe with NumPy's OpenBLAS); elsewhere ``data_parallel`` gives the threads. A worker waits on its
pipe and ends when the pipe closes: when the run ends, stops with an error, or is killed (kill -9
included, as the system closes a dead process's pipes). It ignores Ctrl-C, which the main process turns
into a stop between two steps.
"""
from __future__ import annotations

import mmap
import multiprocessing
import signal
import sys
import traceback
import warnings

import numpy  # shared memory is the host's: the workers need the CPU backend, whose xp is NumPy

from .. import backend
from ..machine import one_blas_thread, openblas_thread_functions
from .step import DataParallel, deal, share_weights, shares


class WorkerFailed(RuntimeError):
    """A worker process raised an error, or ended without a word."""


def processes_available() -> bool:
    """Whether workers can be processes here: Linux, whose fork copies a process with NumPy safely."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def data_parallel(model, workers: int, optimizer=None):
    """The step's workers: processes where ``processes_available``, threads (DataParallel) elsewhere;
    one worker is the plain step either way. ``optimizer``: the run's AdamW, whose update the worker
    processes share out too (threads share it without being told)."""
    if workers > 1 and backend.name() == "numpy" and processes_available():
        return ProcessDataParallel(model, workers, optimizer)
    return DataParallel(model, workers)


def shared_copies(arrays) -> list:
    """Copies of ``arrays`` in one new block of memory that processes forked from now on share; each
    copy starts on a 64-byte line of its own, so two processes never write to the same cache line."""
    sizes = [-(-a.nbytes // 64) * 64 for a in arrays]
    block = mmap.mmap(-1, max(sum(sizes), 64))   # anonymous memory, MAP_SHARED: a fork shares it
    copies, offset = [], 0
    for a, size in zip(arrays, sizes):
        copy = numpy.frombuffer(block, dtype=a.dtype, count=a.size, offset=offset)
        if a.ndim != 1:                       # a 1-D copy is left as it is: the base of its views
            copy = copy.reshape(a.shape)      # (AdamW checks that base to know p.grad is in its flat array)
        copy[...] = a
        copies.append(copy)
        offset += size
    return copies


class ProcessDataParallel:
    """``workers`` processes that compute one step's gradient together, as DataParallel's threads do;
    the sum lands in ``model``'s gradients, where the optimizer reads it. Given the ``optimizer`` (an
    AdamW with flat state: on the CPU, one dtype), its update is shared out among the workers as well."""

    # The optimizer's updates a worker may run: the grouped one reads the gradient from the optimizer's
    # flat array, which is shared; the plain one reads p.grad, which in a worker is that worker's own.
    WORKER_UPDATES = ("_update_groups",)

    def __init__(self, model, workers: int, optimizer=None):
        if backend.name() != "numpy":
            raise ValueError(f"ProcessDataParallel: workers need the CPU (NumPy) backend, not {backend.name()}.")
        self.model, self.workers = model, workers
        self.parameters = model.parameters()
        for p, data in zip(self.parameters, shared_copies([p.data for p in self.parameters])):
            p.data = data                    # the values kept, in memory the workers will share
        self.gradients = [shared_copies([p.grad for p in self.parameters]) for _ in range(workers - 1)]
        self.optimizer = optimizer if getattr(optimizer, "flat", False) else None
        if self.optimizer is not None:
            self.optimizer.move_state(shared_copies)   # its summed gradient, m and v: shared too
        self.processes, self.pipes, self.dealt = [], [], {}
        context = multiprocessing.get_context("fork")
        ends = [context.Pipe() for _ in range(workers - 1)]
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)   # a worker never sees a Ctrl-C, even at once
        try:
            with warnings.catch_warnings():
                # Python 3.12 warns of fork in a process with threads; OpenBLAS's own threads are stopped
                # and restarted around a fork (its pthread_atfork handlers), and a worker starts none else.
                warnings.filterwarnings("ignore", message=".*multi-threaded.*fork", category=DeprecationWarning)
                for i in range(1, workers):
                    process = context.Process(target=self._serve, args=(i, ends), daemon=True,
                                              name=f"worker {i}")
                    process.start()
                    self.processes.append(process)
        finally:
            signal.signal(signal.SIGINT, before)
        for main_end, worker_end in ends:
            worker_end.close()                # the worker's end is the worker's alone: EOF when it dies
            self.pipes.append(main_end)

    # --- in a worker process ----------------------------------------------------------------------------
    def _serve(self, i, ends) -> None:
        """Worker i's life: compute what the main process asks, until its pipe closes."""
        for k, (main_end, worker_end) in enumerate(ends):
            main_end.close()                  # so that the main process's death closes this pipe
            if k != i - 1:
                worker_end.close()
        pipe = ends[i - 1][1]
        for p, grad in zip(self.parameters, self.gradients[i - 1]):
            p.grad = grad                     # this worker's gradient, where the main process reads it
        functions = openblas_thread_functions()
        if functions is not None:
            functions[0](1)                   # one BLAS thread: the other cores are the other workers'
        while True:
            try:
                request = pipe.recv()
            except (EOFError, OSError):
                return                        # the main process has closed the pipe, or died
            try:
                pipe.send(("done", self._answer(request)))
            except Exception:                 # the main process raises it, with this worker's traceback
                pipe.send(("failed", traceback.format_exc()))

    def _answer(self, request):
        """One request: ("mode", training) sets the mode; ("update", method, group, keywords, numbers) runs
        the optimizer's update of a group of parameters, with the main process's numbers (lr, betas,
        step count, ...); ("loss", x, y, dloss, zero) computes the loss of the rows x, y and, given dloss,
        adds the gradient of dloss·loss (after zeroing, with zero)."""
        if request[0] == "mode":
            self.model.train(request[1])
            return None
        if request[0] == "update":
            _, method, group, keywords, numbers = request
            vars(self.optimizer).update(numbers)       # as they are now: a resumed run loads them after fork
            getattr(self.optimizer, method)(group, **keywords)
            return None
        _, x, y, dloss, zero = request
        if zero:
            for p in self.parameters:
                p.grad.fill(0)
        _, loss = self.model(x, y)
        if dloss is not None:
            self.model.backward(self.model.loss_fn.backward(dloss))
        return float(loss)

    # --- in the main process ----------------------------------------------------------------------------
    def accumulate_gradients(self, x, y, grad_accum: int) -> float:
        """As ``accumulate_gradients``: the gradient of the mean loss over x, y [grad_accum·B, T], in
        grad_accum micro-batches, each shared out among the workers; returns the loss."""
        micro = x.shape[0] // grad_accum
        total = 0.0
        with one_blas_thread():
            for p in self.parameters:
                p.grad.fill(0)
            for i in range(grad_accum):
                rows = slice(i * micro, (i + 1) * micro)
                # Each micro-batch's loss is weighted 1/grad_accum: the step's loss is their mean.
                total += self._in_parallel(x[rows], y[rows], backward=True, scale=1.0 / grad_accum, zero=i == 0)
            busy = len(shares(micro, self.workers)) - 1       # the workers that had rows (one per row at most)
            for k, p in enumerate(self.parameters):
                for gradients in self.gradients[:busy]:        # in worker order
                    p.grad += gradients[k]
        return total

    def loss(self, x, y) -> float:
        """The mean loss over x, y [B, T] (a forward only, shared out as the step's)."""
        with one_blas_thread():
            return self._in_parallel(x, y, backward=False, scale=1.0, zero=False)

    def _in_parallel(self, x, y, backward: bool, scale: float, zero: bool) -> float:
        """Σᵢ wᵢ·Lᵢ over the shares of x, y, each on its worker (the main process is worker 0); with
        ``backward``, worker i's gradients grow by ∇(scale·wᵢ·Lᵢ)."""
        if not self.pipes:
            raise WorkerFailed("the step's worker processes are stopped (close(), or a worker failed); "
                               "make a new ProcessDataParallel.")
        parts = shares(x.shape[0], self.workers)
        weights = share_weights(y, parts, self.model.loss_fn.ignore_index)   # wᵢ = nᵢ / Σⱼ nⱼ
        self._ask(*[("loss", x[part], y[part], scale * weights[i] if backward else None, zero)
                    for i, part in enumerate(parts[1:], start=1)])

        def own_share():                                                      # worker 0's, here
            _, loss = self.model(x[parts[0]], y[parts[0]])
            if backward:
                self.model.backward(self.model.loss_fn.backward(scale * weights[0]))
            return float(loss)

        own, others = self._meanwhile(own_share, len(parts) - 1)
        return scale * sum(w * loss for w, loss in zip(weights, [own, *others]))   # in worker order

    def _ask(self, *requests) -> None:
        """Send request i to worker i + 1."""
        for pipe, request in zip(self.pipes, requests):
            pipe.send(request)

    def _meanwhile(self, work, count: int):
        """``work()`` here while workers 1 .. count do what they were asked; its result and their answers."""
        try:
            result = work()
        except BaseException:
            self._answers(count)     # the workers' answers are read all the same: the pipes stay in step
            raise
        return result, self._answers(count)

    def _answers(self, count: int) -> list:
        """The answers of workers 1 .. count, in worker order; WorkerFailed if one failed or died (after
        every answer is read, so that the pipes stay in step)."""
        answers, failures = [], []
        for i, pipe in enumerate(self.pipes[:count], start=1):
            try:
                kind, value = pipe.recv()
            except (EOFError, OSError):
                process = self.processes[i - 1]
                process.join(1.0)
                failures.append(f"worker process {i} (pid {process.pid}) ended unexpectedly, exit code "
                                f"{process.exitcode}")
                continue
            if kind == "failed":
                failures.append(f"worker process {i} failed:\n{value}")
            answers.append(value)
        if failures:
            self.close()
            raise WorkerFailed("; ".join(failures) + "\nThe step's workers are stopped; the last checkpoint "
                               "is kept: continue with --resume (or --workers 1).")
        return answers

    def spread(self, function, items, size=lambda item: 1) -> None:
        """``function(group)`` for each worker's group of ``items`` (``deal``), at once, when ``function`` is
        an update of the optimizer this was given (``optimizer.step(lr, spread=parallel.spread)``): each
        worker runs it on its own copy of the optimizer, whose arrays are the shared ones. Any other
        function runs here, on all the items."""
        method = getattr(function, "func", None)           # the update: a functools.partial of a method
        if (self.optimizer is None or not self.pipes or getattr(method, "__self__", None) is not self.optimizer
                or method.__name__ not in self.WORKER_UPDATES):
            function(list(items))
            return
        key = tuple(items)
        if key not in self.dealt:
            self.dealt[key] = deal(key, self.workers, size)
        groups = self.dealt[key]
        numbers = {name: value for name, value in vars(self.optimizer).items()
                   if isinstance(value, (bool, int, float, tuple))}
        self._ask(*[("update", method.__name__, group, function.keywords, numbers) for group in groups[1:]])
        self._meanwhile(lambda: function(groups[0]), len(groups) - 1)

    def train(self, mode: bool = True) -> None:
        """Training or evaluation mode, for the model and every worker's copy of it."""
        self.model.train(mode)
        self._ask(*[("mode", mode)] * len(self.pipes))
        self._answers(len(self.pipes))

    def eval(self) -> None:
        self.train(False)

    def close(self) -> None:
        """End the workers: their pipes close, and each returns."""
        for pipe in self.pipes:
            pipe.close()
        for process in self.processes:
            process.join(5.0)
            if process.is_alive():
                process.terminate()
        self.pipes, self.processes = [], []
