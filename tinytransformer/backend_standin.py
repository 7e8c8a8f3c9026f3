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


def unwrap(obj):
    """Device arrays -> their NumPy data; host arrays -> TypeError; containers recursively."""
    if isinstance(obj, StandinArray):
        return obj._data
    if isinstance(obj, numpy.ndarray):
        raise TypeError(_HOST_ARRAY_MESSAGE)
    if isinstance(obj, tuple):
        return tuple(unwrap(o) for o in obj)
    if isinstance(obj, list):
        return [unwrap(o) for o in obj]
    if isinstance(obj, dict):
        return {k: unwrap(v) for k, v in obj.items()}
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
            kwargs["out"] = unwrap(out)
        result = getattr(ufunc, method)(*unwrap(inputs), **kwargs)
        if out is not None:  # in-place operation (x += y): hand back the caller's own wrappers
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*unwrap(args), **unwrap(kwargs)))

    # --- the ndarray surface the project uses -----------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    nbytes = property(lambda self: self._data.nbytes)
    T = property(lambda self: StandinArray(self._data.T))

    def __getitem__(self, key):
        return _wrap(self._data[unwrap(key)])

    def __setitem__(self, key, value):
        self._data[unwrap(key)] = unwrap(value)

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
                return _wrap(value(*unwrap(args), **unwrap(kwargs)))
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
            return _wrap(value(*unwrap(args), **unwrap(kwargs)))
        function.__name__ = attr
        return function


xp = _StandinModule(numpy, "standin")


# --- backend.fuse: cupy.fuse's rules --------------------------------------------------------------------------

_FUSE_RULES = ("cupy.fuse compiles element-wise formulas only: arithmetic operators and ufuncs on the "
               "arguments, and number literals")


class _FusedValue(NDArrayOperatorsMixin):
    """An array inside a fused formula: it allows what cupy.fuse can compile, and refuses the rest.

    Operators and ufuncs (``x * y``, ``xp.tanh(x)``) compute on the NumPy data, so the stand-in gives the
    formula's numbers exactly. Reductions, ``xp.where`` and other functions, indexing, methods, in-place
    operations and ``out=`` raise TypeError, as cupy.fuse cannot compile them into one kernel.
    """

    __slots__ = ("_data",)

    def __init__(self, data):
        self._data = data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or "out" in kwargs:
            raise TypeError(f"{_FUSE_RULES}; not {ufunc.__name__}.{method} or out= (in-place).")
        data = []
        for value in inputs:
            if isinstance(value, _FusedValue):
                data.append(value._data)
            elif isinstance(value, (int, float, bool)):
                data.append(value)
            else:
                raise TypeError(f"{_FUSE_RULES}; got a {type(value).__name__} inside the formula.")
        result = getattr(ufunc, method)(*data, **kwargs)
        return tuple(map(_FusedValue, result)) if isinstance(result, tuple) else _FusedValue(result)

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"{_FUSE_RULES}; not {func.__name__} (a reduction or another non-element-wise "
                        "function).")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{_FUSE_RULES}; the formula tried to convert a value to an array.")

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{_FUSE_RULES}; not indexing or assignment.")

    __getitem__ = __setitem__ = _refuse

    # The in-place operators that NDArrayOperatorsMixin would route through ufuncs with out=.
    def _no_in_place(self, other):
        raise TypeError(f"{_FUSE_RULES}; not in-place operators (+=, *=, ...): write y = x + ... instead.")

    __iadd__ = __isub__ = __imul__ = __itruediv__ = __ipow__ = _no_in_place

    def __getattr__(self, attr):
        if attr in ("dtype", "shape", "ndim"):
            return getattr(self._data, attr)
        raise TypeError(f"{_FUSE_RULES}; not the method or attribute {attr!r}.")


def fuse_call(formula, args):
    """Run ``formula`` on device-array arguments with cupy.fuse's rules (for ``backend.fuse``).

    Arguments must be the stand-in's device arrays: a host NumPy array is refused as CuPy refuses it, and
    a Python number too, because cupy.fuse would turn it into a float64 argument and promote a float32
    formula to float64 (pass a 0-d device array of the right dtype instead). Floating-point overflow and
    invalid values are not reported, as a GPU kernel does not report them (GELU's e^(−2u) overflows to
    inf far below 0, where inf is the right value).
    """
    values = []
    for arg in args:
        if isinstance(arg, StandinArray):
            values.append(_FusedValue(arg._data))
        elif isinstance(arg, numpy.ndarray):
            raise TypeError(_HOST_ARRAY_MESSAGE)
        else:
            raise TypeError(f"A fused formula takes device arrays, not {type(arg).__name__} ({arg!r}): "
                            "cupy.fuse would make a Python number a float64 argument and promote float32 "
                            "results to float64. Pass backend.asarray(value, dtype=x.dtype) instead.")
    with numpy.errstate(all="ignore"):   # as a CUDA kernel: overflow gives inf, and nothing is reported
        result = formula(*values)
    if isinstance(result, tuple):
        return tuple(_fused_result(r) for r in result)
    return _fused_result(result)


def _fused_result(value):
    if not isinstance(value, _FusedValue):
        raise TypeError(f"A fused formula must return arrays computed from its arguments, not "
                        f"{type(value).__name__}.")
    return StandinArray(numpy.asarray(value._data))
