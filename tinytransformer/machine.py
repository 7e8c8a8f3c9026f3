"""What the numbers run on: NumPy's BLAS and the kernel it picked, for benchmark reports.

A matrix product in NumPy is a call into a BLAS library (OpenBLAS in NumPy's wheels). OpenBLAS picks a
kernel for the CPU it finds (``SkylakeX``, ``Haswell``, ``Zen``, ...) when it loads, unless an
environment variable forces one: ``OPENBLAS_CORETYPE`` names the kernel, ``OPENBLAS_L2_SIZE`` the cache
size it tunes its blocking for. Machines set these for old OpenBLAS builds; with a current NumPy they
can make matrix products much slower than on a user's machine. A benchmark must therefore say which BLAS
and kernel it ran, and warn when the environment chose the kernel.

``blas_report()`` collects the facts; ``describe_blas()`` turns them into the lines a benchmark prints
(pure, so that its logic is tested without depending on the machine).
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import subprocess
import sys

# Environment variables that choose a BLAS kernel or code path instead of the library itself.
KERNEL_VARIABLES = {
    "OPENBLAS_CORETYPE": "forces OpenBLAS's kernel instead of the one it picks for this CPU",
    "OPENBLAS_L2_SIZE": "overrides the L2 cache size OpenBLAS tunes its blocking for",
    "MKL_ENABLE_INSTRUCTIONS": "caps the instruction set MKL may use",
    "MKL_DEBUG_CPU_TYPE": "forces MKL's code path",
    "MKL_CBWR": "makes MKL take a reproducible, often slower, code path",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def numpy_blas_config() -> dict:
    """NumPy's build-time record of its BLAS (name, version, configuration); {} where it has none."""
    import numpy
    try:
        config = numpy.show_config(mode="dicts")  # NumPy >= 1.26
    except TypeError:
        return {}
    return dict(config.get("Build Dependencies", {}).get("blas", {}))


def openblas_library() -> str | None:
    """The path of the OpenBLAS library this process has loaded (NumPy must be imported first)."""
    import numpy  # noqa: F401  (loads the BLAS)
    try:
        with open("/proc/self/maps") as maps:  # Linux: every mapped library
            for line in maps:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path).lower() and path.startswith("/"):
                    return path
    except OSError:
        pass
    here = os.path.dirname(numpy.__file__)  # macOS and Windows wheels keep it beside NumPy
    for pattern in ("../numpy.libs/*openblas*", ".dylibs/*openblas*", "../numpy.libs/*openblas*.dll"):
        found = sorted(glob.glob(os.path.join(here, pattern)))
        if found:
            return found[0]
    return None


def openblas_runtime(path: str | None) -> dict | None:
    """What the loaded OpenBLAS says about itself: its kernel (corename), build config and threads.

    NumPy's wheels ship OpenBLAS with prefixed, suffixed symbol names (scipy_openblas_get_corename64_);
    other builds use plain ones (openblas_get_corename). None when there is no OpenBLAS to ask.
    """
    if path is None:
        return None
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None

    def function(name, restype):
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", "_64", ""):
                symbol = getattr(library, f"{prefix}{name}{suffix}", None)
                if symbol is not None:
                    symbol.restype, symbol.argtypes = restype, []
                    return symbol
        return None

    facts = {"library": path}
    for key, name, restype in (("corename", "get_corename", ctypes.c_char_p),
                               ("config", "get_config", ctypes.c_char_p),
                               ("threads", "get_num_threads", ctypes.c_int)):
        query = function(name, restype)
        if query is not None:
            value = query()
            facts[key] = value.decode().strip() if isinstance(value, bytes) else value
    return facts if "corename" in facts else None


def kernel_forcing(environ) -> dict:
    """The variables in ``environ`` that choose the BLAS kernel for the library: {name: value}."""
    return {name: environ[name] for name in KERNEL_VARIABLES if environ.get(name)}


def native_corename(environ=None) -> str | None:
    """The kernel OpenBLAS picks by itself on this CPU: asked in a fresh process without the forcing
    variables (a library reads them once, when it loads, so this process cannot unset them)."""
    environ = dict(os.environ if environ is None else environ)
    for name in KERNEL_VARIABLES:
        environ.pop(name, None)
    code = ("import json; from tinytransformer.machine import openblas_library, openblas_runtime; "
            "print(json.dumps(openblas_runtime(openblas_library())))")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environ.get("PYTHONPATH")]))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env=environ, check=True).stdout
        facts = json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return facts.get("corename") if facts else None


def blas_report(environ=None) -> dict:
    """Everything ``describe_blas`` needs, gathered from NumPy, the loaded library and the environment."""
    environ = os.environ if environ is None else environ
    forced = kernel_forcing(environ)
    runtime = openblas_runtime(openblas_library())
    return {
        "blas": numpy_blas_config(),
        "runtime": runtime,
        "forced": forced,
        "native_corename": native_corename(environ) if forced and runtime else None,
        "threads_env": {name: environ[name] for name in THREAD_VARIABLES if environ.get(name)},
    }


def describe_blas(report: dict, command: str = "python scripts/bench.py") -> tuple[list, list]:
    """(lines, warnings) to print for a ``blas_report``: which BLAS and kernel, and what forced it."""
    blas, runtime, forced = report.get("blas") or {}, report.get("runtime"), report.get("forced") or {}
    name = blas.get("name", "unknown BLAS")
    version = f" {blas['version']}" if blas.get("version") else ""
    lines = [f"NumPy's BLAS: {name}{version}"]
    if runtime:
        n = runtime.get("threads")
        threads = f", {n} thread{'' if n == 1 else 's'}" if n else ""
        lines.append(f"OpenBLAS kernel in use: {runtime['corename']}{threads} "
                     f"(build: {runtime.get('config', 'unknown')})")
    else:
        lines.append("kernel in use: not reported (not OpenBLAS, or its library was not found)")
    if report.get("threads_env"):
        lines.append("thread settings: " + ", ".join(f"{k}={v}" for k, v in report["threads_env"].items()))
    warnings = []
    if forced:
        native = report.get("native_corename")
        picked = f"; unset, OpenBLAS picks {native} on this CPU" if native else ""
        settings = ", ".join(f"{k}={v} ({KERNEL_VARIABLES[k]})" for k, v in forced.items())
        unset = " ".join(f"-u {k}" for k in forced)
        warnings.append(f"WARNING: the environment chooses the BLAS kernel: {settings}{picked}. Figures taken "
                        f"so are not what a default install gets; take them with `env {unset} {command}`.")
    return lines, warnings


def gpu_report() -> dict:
    """The GPU the 'cupy' backend runs on: name, memory, CUDA driver and runtime, CuPy, TF32.

    {} when CuPy is not importable. TF32 (tensor-core float32 with a 10-bit mantissa) is off in CuPy
    unless CUPY_TF32=1; benchmarks say so because it changes both speed and accuracy.
    """
    try:
        import cupy
    except ImportError:
        return {}
    from .backend import _cupy_versions, installed_cupy_wheels
    facts = {"cupy": cupy.__version__, "wheels": installed_cupy_wheels(),
             "tf32": os.environ.get("CUPY_TF32", "0") == "1"}
    driver, runtime = _cupy_versions(cupy)
    facts["driver_cuda"] = None if driver is None else "%d.%d" % driver
    facts["runtime_cuda"] = None if runtime is None else "%d.%d" % runtime
    try:
        properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = properties["name"]
        facts["device"] = name.decode() if isinstance(name, bytes) else name
        facts["memory_gib"] = round(properties["totalGlobalMem"] / 2**30, 1)
    except Exception as err:  # no device: say so in the report instead of failing it
        facts["device"] = f"none ({type(err).__name__})"
    return facts
