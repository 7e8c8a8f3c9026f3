"""The one place that knows NumPy from CuPy.

Layer code writes ``xp.exp(x)``, ``xp.matmul(a, b)`` and so on, where ``xp`` is the array module of the
current backend. Switching backends swaps what ``xp`` points to; the layers do not change.

Backends
--------
- ``"numpy"``   the CPU (default).
- ``"cupy"``    an NVIDIA GPU through CuPy.
- ``"standin"`` NumPy dressed up as CuPy: its arrays refuse to mix with host NumPy arrays and refuse
                implicit conversion, as CuPy's do. It lets a machine without a GPU check that code
                would run under CuPy (see ``tinytransformer/backend_standin.py``).

Choose one with ``use("cupy")``, with the environment variable ``TINYTRANSFORMER_BACKEND``, or for a
block of code with ``with using("float64"): ...`` / ``with using(backend="standin"): ...``.

The default floating dtype is float32 (training); gradient checks use float64.

Random numbers for initial weights are drawn on the host with NumPy and then copied to the device, so
that a model built with the same seed starts from the same weights on every backend.
"""
from __future__ import annotations

import contextlib
import functools
import os

import numpy

BACKENDS = ("numpy", "cupy", "standin")
ENV_VAR = "TINYTRANSFORMER_BACKEND"

class BackendError(RuntimeError):
    """The requested backend cannot be used here (e.g. CuPy is missing or there is no GPU)."""


class _State:
    name = "numpy"
    module = numpy
    dtype = numpy.dtype(numpy.float32)
    host_rng = numpy.random.default_rng(0)


_state = _State()


class _ArrayModule:
    """``xp``: forwards every attribute to the current backend's array module (numpy or cupy).

    Layer code imports this object once (``from tinytransformer.backend import xp``) and always sees the
    backend chosen at call time, not the one that was current at import time.
    """

    def __getattr__(self, attr):
        return getattr(_state.module, attr)

    def __repr__(self):
        return f"<xp: {_state.name} array module>"


xp = _ArrayModule()


# --- choosing the backend ------------------------------------------------------------------------------

_cupy = None  # the CuPy module once _load_cupy has checked that it works here


def _load_cupy():
    global _cupy
    if _cupy is not None:
        return _cupy
    from .machine import cupy_install_hint, cupy_versions, driver_cuda_version, installed_cupy_wheels
    try:
        import cupy
    except ImportError as err:
        raise BackendError(f"The 'cupy' backend needs CuPy, which is not installed ({err}). "
                           + cupy_install_hint(driver_cuda_version())) from err
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
        if n_gpus > 0:
            # One tiny kernel: compiles (needs CUDA's NVRTC library) and launches, so that a broken
            # install fails here, with this message, and not in the middle of a training step.
            float((cupy.arange(3, dtype=cupy.float32) * 2).sum())
    except Exception as err:  # CUDARuntimeError without a driver or device; wrong wheel; no NVRTC
        driver, runtime = cupy_versions(cupy)
        raise BackendError(f"CuPy is installed but cannot run on a CUDA GPU ({type(err).__name__}: "
                           f"{err}). " + cupy_install_hint(driver if driver is not None else
                                                            driver_cuda_version(),
                                                            installed=installed_cupy_wheels(),
                                                            runtime=runtime)) from err
    if n_gpus == 0:
        raise BackendError("CuPy is installed but no CUDA GPU is visible (check `nvidia-smi` and "
                           "CUDA_VISIBLE_DEVICES). Use the 'numpy' backend here.")
    _cupy = cupy
    return cupy


def use(name: str, dtype=None) -> None:
    """Switch the array backend: ``"numpy"``, ``"cupy"`` or ``"standin"``; optionally the default dtype."""
    if name not in BACKENDS:
        raise BackendError(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    if name == "numpy":
        module = numpy
    elif name == "cupy":
        module = _load_cupy()
    else:
        from . import backend_standin as standin
        module = standin.xp
    _state.name, _state.module = name, module
    if dtype is not None:
        set_default_dtype(dtype)


def name() -> str:
    """The current backend's name."""
    return _state.name


def is_gpu() -> bool:
    """True when arrays live on a device (cupy, or the standin that imitates it)."""
    return _state.name != "numpy"


def set_default_dtype(dtype) -> None:
    """Floating dtype for new parameters and activations: float32 (training) or float64 (checks)."""
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.float32, numpy.float64):
        raise BackendError(f"Default dtype must be float32 or float64, got {dtype}.")
    _state.dtype = dtype


def default_dtype() -> numpy.dtype:
    return _state.dtype


@contextlib.contextmanager
def using(dtype=None, backend=None):
    """Temporarily switch dtype and/or backend: ``with using("float64"): ...``."""
    saved = (_state.name, _state.module, _state.dtype)
    try:
        if backend is not None:
            use(backend)
        if dtype is not None:
            set_default_dtype(dtype)
        yield
    finally:
        _state.name, _state.module, _state.dtype = saved


# --- moving data between host and device ---------------------------------------------------------------

def asarray(a, dtype=None):
    """Host data (list, NumPy array) -> an array of the current backend (copied to the GPU under CuPy)."""
    return _state.module.asarray(a, dtype=dtype)


def to_numpy(a) -> numpy.ndarray:
    """Any backend's array -> a host NumPy array (copied from the GPU under CuPy)."""
    if isinstance(a, numpy.ndarray):
        return a
    if hasattr(a, "get"):  # cupy.ndarray and the standin's arrays
        return a.get()
    return numpy.asarray(a)


def synchronize() -> None:
    """Wait for queued GPU work to finish; timing GPU code without this measures only the launch."""
    if _state.name == "cupy":
        _state.module.cuda.Device().synchronize()


# --- random numbers ------------------------------------------------------------------------------------

def seed(value: int) -> None:
    """Seed the host generator that initial weights are drawn from."""
    _state.host_rng = numpy.random.default_rng(value)


def host_rng() -> numpy.random.Generator:
    """The shared host generator (NumPy), used to draw initial weights on every backend alike."""
    return _state.host_rng


def new_host_rng(seed_value=None) -> numpy.random.Generator:
    """A fresh host generator of its own (e.g. for a fixed random upstream gradient in a check)."""
    return numpy.random.default_rng(seed_value)


def randn(shape, std=1.0, rng=None, dtype=None):
    """Normal(0, std^2) numbers drawn on the host (so every backend gets the same ones), then moved."""
    rng = rng if rng is not None else _state.host_rng
    return asarray(rng.standard_normal(shape) * std, dtype=dtype or _state.dtype)


class DeviceRNG:
    """Uniform random numbers generated where the arrays live (for dropout masks), seeded."""

    def __init__(self, seed_value=None):
        if _state.name == "cupy":
            self._rng = _state.module.random.RandomState(seed_value)
        else:
            self._rng = numpy.random.default_rng(seed_value)

    def random(self, shape, dtype):
        """Uniform [0, 1) numbers of the given shape and dtype, on the current backend."""
        if _state.name == "cupy":
            return self._rng.random_sample(size=shape, dtype=dtype)
        sample = self._rng.random(shape, dtype=dtype)
        return asarray(sample) if _state.name == "standin" else sample

    def get_state(self):
        if _state.name == "cupy":
            raise BackendError("Saving the GPU dropout generator's state is not supported; "
                               "it is re-seeded from the run's seed on resume.")
        return self._rng.bit_generator.state

    def set_state(self, state):
        self._rng.bit_generator.state = state


# --- the operations NumPy and CuPy spell differently ----------------------------------------------------

def scatter_add(target, indices, values) -> None:
    """In place: ``target[indices[i]] += values[i]`` for every i, repeated indices accumulating.

    Plain ``target[indices] += values`` would keep only one update per repeated index. NumPy spells the
    accumulating form ``np.add.at``; CuPy spells it ``cupyx.scatter_add``. On NumPy this calls
    ``scatter_add_sorted``, the same sums about 5x faster than ``np.add.at`` (which stays the reference
    in tests/test_backend.py).
    """
    if _state.name == "numpy":
        scatter_add_sorted(target, indices, values)
    elif _state.name == "cupy":
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:                               # the stand-in: the same sums as NumPy's, on the unwrapped arrays
        from . import backend_standin as standin
        scatter_add_sorted(*(standin.unwrap(a) for a in (target, indices, values)))


def scatter_add_sorted(target, indices, values) -> None:
    """``numpy.add.at(target, indices, values)`` for 1-D integer indices, by sorting instead of looping.

    ``add.at`` handles one element at a time (on the embedding's [768, 128] gradient, 0.63 ms). Here the
    rows of ``values`` are sorted by their index, so that equal indices sit in one run; ``add.reduceat``
    sums each run, and each distinct index gets its sum in one fancy-indexed add (0.12 ms).
    """
    if len(indices) == 0:
        return
    order = numpy.argsort(indices, kind="stable")                  # rows grouped by index, in order
    sorted_indices = indices[order]
    run_starts = numpy.flatnonzero(numpy.r_[True, sorted_indices[1:] != sorted_indices[:-1]])
    target[sorted_indices[run_starts]] += numpy.add.reduceat(values[order], run_starts, axis=0)


# --- fusing an element-wise formula into one GPU kernel ---------------------------------------------------

# TINYTRANSFORMER_FUSE=0 runs the fused formulas operation by operation under CuPy too: the same
# numbers, one kernel per operation, to measure (scripts/bench.py --profile) what fusing gains.
FUSE_ENV = "TINYTRANSFORMER_FUSE"
FUSION = os.environ.get(FUSE_ENV, "1") != "0"


class fuse:
    """``@backend.fuse`` on an element-wise formula: one GPU kernel under CuPy, the formula itself elsewhere.

    On a GPU each operation of ``0.5 * x * (1.0 + xp.tanh(...))`` is a kernel launch and a pass over
    memory. ``cupy.fuse`` compiles the whole formula into one kernel that reads each input once and writes
    each output once. On NumPy and the stand-in the call runs the formula as written, so there is one
    formula, read as the math, for every backend.

    What may go inside (cupy.fuse's rules, which the stand-in enforces; see backend_standin.fuse):
    arithmetic operators and ufuncs (``xp.tanh``, ``xp.sqrt``, ...) on the array arguments, Python number
    literals; no reductions, indexing, methods, in-place operations or ``out=``. A number that changes
    between calls (a learning rate) is passed as a 0-d array of the arrays' dtype: cupy.fuse would
    promote a Python float argument to float64. The function may return a tuple of arrays.
    """

    def __init__(self, formula):
        self.formula = formula
        self._kernel = None  # cupy.fuse(formula), made on the first call under CuPy
        functools.update_wrapper(self, formula)

    def __call__(self, *args):
        if _state.name == "cupy" and FUSION:
            if self._kernel is None:
                self._kernel = _state.module.fuse(self.formula)
            return self._kernel(*args)
        if _state.name == "standin":
            from . import backend_standin as standin
            return standin.fuse_call(self.formula, args)
        return self.formula(*args)


# Honour the environment variable at import time (after everything above is defined).
if os.environ.get(ENV_VAR):
    use(os.environ[ENV_VAR])
