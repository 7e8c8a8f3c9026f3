"""A stand-in for CuPy that runs on the CPU: NumPy underneath, CuPy's rules on top.

Code written for NumPy often breaks under CuPy in two ways, and this module reproduces both so that a
machine without a GPU (CI, a laptop) can catch them:

1. Mixing a host ``numpy.ndarray`` into device arithmetic (``device_array + numpy_array``,
   ``xp.exp(numpy_array)``, indexing with a host array) raises ``TypeError``, as CuPy does.
2. Implicit conversion to NumPy (``numpy.asarray(device_array)``) raises ``TypeError``; the explicit
   ``.get()`` works, as in CuPy.

Moving host data in is explicit too: ``xp.asarray(host_array)`` (here, as in CuPy).

The stand-in wraps each NumPy array in ``StandinArray`` and each NumPy function so that it unwraps its
arguments (refusing host arrays) and wraps its results. It is slow and meant for tests only.
"""
from __future__ import annotations

import types

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

_HOST_ARRAY_MESSAGE = (
    "Unsupported type <class 'numpy.ndarray'>: a host NumPy array cannot be mixed with device arrays. "
    "Move it to the device first with backend.asarray(...)."
)
_IMPLICIT_MESSAGE = (
    "Implicit conversion to a NumPy array is not allowed. Use `.get()` or backend.to_numpy(...) to "
    "copy a device array to the host explicitly."
)


def _unwrap(obj):
    """Device arrays -> their NumPy data; host arrays -> TypeError; containers recursively."""
    if isinstance(obj, StandinArray):
        return obj._data
    if isinstance(obj, numpy.ndarray):
        raise TypeError(_HOST_ARRAY_MESSAGE)
    if isinstance(obj, tuple):
        return tuple(_unwrap(o) for o in obj)
    if isinstance(obj, list):
        return [_unwrap(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """NumPy results -> device arrays (a NumPy scalar becomes a 0-d array, as CuPy returns)."""
    if isinstance(obj, numpy.ndarray):
        return StandinArray(obj)
    if isinstance(obj, numpy.generic):
        return StandinArray(numpy.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class StandinArray(NDArrayOperatorsMixin):
    """A device array of the stand-in backend (operators come from NumPy's mixin, via ufuncs)."""

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    # CuPy refuses implicit conversion to NumPy; so do we.
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT_MESSAGE)

    def get(self):
        """Explicit copy to the host, as ``cupy.ndarray.get()``."""
        return self._data.copy()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out)
        result = getattr(ufunc, method)(*_unwrap(inputs), **kwargs)
        if out is not None:  # in-place operation (x += y): hand back the caller's own wrappers
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # --- the ndarray surface the project uses -----------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    nbytes = property(lambda self: self._data.nbytes)
    T = property(lambda self: StandinArray(self._data.T))

    def __getitem__(self, key):
        return _wrap(self._data[_unwrap(key)])

    def __setitem__(self, key, value):
        self._data[_unwrap(key)] = _unwrap(value)

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return (_wrap(row) for row in self._data)

    # CuPy allows these (they copy one value to the host).
    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __index__(self):
        return self._data.__index__()

    def __bool__(self):
        return bool(self._data)

    def __repr__(self):
        return f"standin.array({self._data!r})"

    def __getattr__(self, attr):
        # Special names are not forwarded: NumPy would find the data's __array_interface__ (or
        # __array_struct__, __dlpack__) here and convert implicitly without ever calling __array__.
        if attr.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        # Methods (reshape, sum, astype, ...) run on the NumPy data, with the same unwrap/wrap rules.
        value = getattr(self._data, attr)
        if callable(value):
            def method(*args, **kwargs):
                return _wrap(value(*_unwrap(args), **_unwrap(kwargs)))
            return method
        return _wrap(value)


# Functions that move host data onto the device: the only ones allowed to take host arrays.
_TRANSFERS = {"asarray", "array", "ascontiguousarray"}


class _StandinModule:
    """The stand-in's ``xp``: NumPy's functions with CuPy's rules about host arrays."""

    ndarray = StandinArray

    def __init__(self, module, name):
        self._module = module
        self.__name__ = name

    def __getattr__(self, attr):
        value = getattr(self._module, attr)
        if isinstance(value, types.ModuleType):
            return _StandinModule(value, f"{self.__name__}.{attr}")
        if isinstance(value, type) or not callable(value):
            return value  # dtypes (float32), constants (pi, inf, newaxis)
        if attr in _TRANSFERS:
            def transfer(obj, *args, **kwargs):
                if isinstance(obj, StandinArray):
                    obj = obj._data
                return StandinArray(numpy.array(value(obj, *args, **kwargs)))
            return transfer

        def function(*args, **kwargs):
            return _wrap(value(*_unwrap(args), **_unwrap(kwargs)))
        function.__name__ = attr
        return function


xp = _StandinModule(numpy, "standin")


def scatter_add(target, indices, values):
    """``target[indices] += values`` with repeats accumulating (the CuPy spelling is cupyx.scatter_add).

    Computed as the numpy backend computes it, so that the two give the same bits.
    """
    from .backend import scatter_add_sorted
    scatter_add_sorted(_unwrap(target), _unwrap(indices), _unwrap(values))
