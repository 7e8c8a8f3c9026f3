"""What the numbers run on: the CPU, NumPy's BLAS and the kernel it picked, the GPU and which CuPy wheel
fits its driver, and the C library's allocator.

A matrix product in NumPy is a call into a BLAS library (OpenBLAS in NumPy's wheels). OpenBLAS picks a
kernel for the CPU it finds (``SkylakeX``, ``Haswell``, ``Zen``, ...) when it loads, unless an
environment variable forces one: ``OPENBLAS_CORETYPE`` names the kernel, ``OPENBLAS_L2_SIZE`` the cache
size it tunes its blocking for. Machines set these for old OpenBLAS builds; with a current NumPy they
can make matrix products much slower than on a user's machine. A benchmark must therefore say which BLAS
and kernel it ran, and warn when the environment chose the kernel.

``blas_report()`` collects the facts (the CPU's from ``cpu_report()``); ``describe_blas()`` turns them
into the lines a benchmark prints (pure, so that its logic is tested without depending on the machine).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import json
import os
import platform
import re
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

# The CuPy wheel for each CUDA major version. A driver runs code built for its own CUDA major version or
# an older one, never a newer one: a CUDA 12 driver cannot run cupy-cuda13x.
CUPY_WHEELS = {11: "cupy-cuda11x", 12: "cupy-cuda12x", 13: "cupy-cuda13x"}
# The extras of this package that install them (setup.cfg); `.[gpu]` is `.[gpu-cuda12]`.
CUPY_EXTRAS = {12: "gpu-cuda12", 13: "gpu-cuda13"}
# CuPy 14's wheels load CUDA's libraries (NVRTC, cuBLAS, ...) from a local CUDA Toolkit, or, with the
# [ctk] extra, from PyPI: with it a machine needs nothing but the driver.
CUPY_WITH_LIBRARIES = {12: '"cupy-cuda12x[ctk]"', 13: '"cupy-cuda13x[ctk]"'}


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


def openblas_function(library, name: str, restype, argtypes=()):
    """OpenBLAS's function ``name`` (get_corename, set_num_threads, ...) in ``library``, or None.

    NumPy's wheels ship OpenBLAS with prefixed, suffixed symbol names (scipy_openblas_get_corename64_);
    other builds use plain ones (openblas_get_corename)."""
    for prefix in ("scipy_openblas_", "openblas_"):
        for suffix in ("64_", "_64", ""):
            symbol = getattr(library, f"{prefix}{name}{suffix}", None)
            if symbol is not None:
                symbol.restype, symbol.argtypes = restype, list(argtypes)
                return symbol
    return None


@functools.lru_cache(maxsize=1)
def openblas_thread_functions():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy has loaded, or None where there is none
    to reach. Looked up once: a training step pins the threads on every call."""
    path = openblas_library()
    try:
        library = ctypes.CDLL(path) if path else None   # already loaded: the same library
    except OSError:
        library = None
    set_threads = openblas_function(library, "set_num_threads", None, [ctypes.c_int]) if library else None
    get_threads = openblas_function(library, "get_num_threads", ctypes.c_int) if library else None
    return None if set_threads is None or get_threads is None else (set_threads, get_threads)


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with OpenBLAS on one thread, then restore its thread count.

    Small matrices gain nothing from several BLAS threads, and on a machine shared with other work those
    threads wait for cores and make timings erratic. The usual switch, OPENBLAS_NUM_THREADS=1, must be
    set before NumPy is imported, which a notebook has already done; so this calls OpenBLAS's own setter
    on the library NumPy has loaded (as threadpoolctl does, without the dependency). Yields True when
    the thread count was set, False when NumPy's BLAS is not an OpenBLAS it can reach."""
    functions = openblas_thread_functions()
    if functions is None:
        yield False
        return
    set_threads, get_threads = functions
    before = get_threads()
    set_threads(1)
    try:
        yield True
    finally:
        set_threads(before)


def openblas_runtime(path: str | None) -> dict | None:
    """What the loaded OpenBLAS says about itself: its kernel (corename), build config and threads; None
    when there is no OpenBLAS to ask."""
    if path is None:
        return None
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None

    facts = {"library": path}
    for key, name, restype in (("corename", "get_corename", ctypes.c_char_p),
                               ("config", "get_config", ctypes.c_char_p),
                               ("threads", "get_num_threads", ctypes.c_int)):
        query = openblas_function(library, name, restype)
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


def usable_cores() -> int:
    """The cores this process may run on: its affinity where the system has one (a container or
    ``taskset`` may allow fewer than the machine has), else every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_report(cpuinfo: str | None = None) -> dict:
    """The CPU: its name as the system gives it, family and model numbers, widest vector instructions,
    and how many cores this process may use. From ``cpuinfo`` (the text of Linux's /proc/cpuinfo) if
    given, else from this machine; elsewhere than Linux only the name (``platform.processor()``).

    One name covers several designs ("AMD EPYC" is any of its generations): the family and model numbers
    tell them apart (AMD family 25, model 1 is Zen 3), and the vector width decides how fast NumPy's
    element-wise loops and OpenBLAS's kernels can be."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():               # "key : value", repeated per processor: keep the first
        key, colon, value = line.partition(":")
        if colon and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {"name": fields.get("model name") or platform.processor() or "unknown",
            "family": fields.get("cpu family"), "model": fields.get("model"),
            "vector": "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None,
            "cores": usable_cores()}


def describe_cpu(cpu: dict) -> str:
    """One line for a ``cpu_report``: "CPU: AMD EPYC (family 25, model 1), AVX2; 2 cores for this process"."""
    numbers = f" (family {cpu['family']}, model {cpu['model']})" if cpu.get("family") else ""
    vector = f", {cpu['vector']}" if cpu.get("vector") else ""
    n = cpu.get("cores")
    cores = f"; {n} core{'' if n == 1 else 's'} for this process" if n else ""
    return f"CPU: {cpu.get('name', 'unknown')}{numbers}{vector}{cores}"


def blas_report(environ=None) -> dict:
    """Everything ``describe_blas`` needs: the CPU, NumPy's BLAS, the loaded library, the environment."""
    environ = os.environ if environ is None else environ
    forced = kernel_forcing(environ)
    runtime = openblas_runtime(openblas_library())
    return {
        "cpu": cpu_report(),
        "blas": numpy_blas_config(),
        "runtime": runtime,
        "forced": forced,
        "native_corename": native_corename(environ) if forced and runtime else None,
        "threads_env": {name: environ[name] for name in THREAD_VARIABLES if environ.get(name)},
    }


def describe_blas(report: dict, command: str = "python scripts/bench.py") -> tuple[list, list]:
    """(lines, warnings) to print for a ``blas_report``: the CPU, which BLAS and kernel, and what forced it."""
    blas, runtime, forced = report.get("blas") or {}, report.get("runtime"), report.get("forced") or {}
    name = blas.get("name", "unknown BLAS")
    version = f" {blas['version']}" if blas.get("version") else ""
    lines = [describe_cpu(report["cpu"])] if report.get("cpu") else []
    lines.append(f"NumPy's BLAS: {name}{version}")
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
    facts = {"cupy": cupy.__version__, "wheels": installed_cupy_wheels(),
             "tf32": os.environ.get("CUPY_TF32", "0") == "1"}
    driver, runtime = cupy_versions(cupy)
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


# --- which CuPy wheel fits this machine -------------------------------------------------------------------

def _version_pair(encoded):
    """CUDA's integer version (12080 for 12.8, 13000 for 13.0) -> (12, 8); 0 (no driver) -> None."""
    return (encoded // 1000, encoded % 1000 // 10) if encoded else None


def cupy_versions(cupy):
    """(driver, runtime) CUDA versions as CuPy sees them; each None where it cannot tell."""
    versions = []
    for query in ("driverGetVersion", "runtimeGetVersion"):
        try:
            versions.append(_version_pair(int(getattr(cupy.cuda.runtime, query)())))
        except Exception:  # no driver library at all
            versions.append(None)
    return tuple(versions)


def parse_nvidia_smi(text: str):
    """The driver's CUDA version from ``nvidia-smi``'s banner ("... CUDA Version: 13.0 ..."), or None."""
    found = re.search(r"CUDA Version\s*:\s*(\d+)\.(\d+)", text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def driver_cuda_version():
    """The highest CUDA version the NVIDIA driver supports, from ``nvidia-smi``; None without a driver."""
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):  # no nvidia-smi: no NVIDIA driver installed
        return None
    return parse_nvidia_smi(out)


def installed_cupy_wheels() -> list:
    """The CuPy distributions pip has installed (normally one, e.g. ["cupy-cuda12x"])."""
    from importlib import metadata
    names = {dist.metadata["Name"] for dist in metadata.distributions()}
    return sorted(n for n in names if n and n.lower().startswith("cupy"))


def cupy_install_hint(driver=None, installed=(), runtime=None) -> str:
    """What to install (or uninstall) to get CuPy working, for a driver supporting CUDA ``driver``.

    ``driver`` and ``runtime`` are (major, minor) or None where unknown; ``installed`` lists the CuPy
    wheels present. Pure, so that every case is tested without a GPU (tests/test_backend.py).
    """
    installed = list(installed)
    if len(installed) > 1:
        return (f"Several CuPy wheels are installed ({', '.join(installed)}); they overwrite each other. "
                f"Uninstall all of them (`pip uninstall {' '.join(installed)}`), then install the one for "
                "your driver." + ("" if driver is None else " " + cupy_install_hint(driver)))
    if driver is None:
        listed = ", ".join(f"`pip install {wheel}` for CUDA {major}.x" for major, wheel in
                           sorted(CUPY_WHEELS.items(), reverse=True))
        return ("No NVIDIA driver was found (`nvidia-smi` did not run): the 'cupy' backend needs an NVIDIA "
                "GPU and its driver; use the 'numpy' backend on this machine. With a driver, `nvidia-smi` "
                f"shows its CUDA version; install the CuPy wheel for it: {listed}.")
    major, minor = driver
    built_for = min(major, max(CUPY_WHEELS))  # a driver newer than every wheel runs the newest one
    if built_for not in CUPY_WHEELS:
        return (f"Your NVIDIA driver supports CUDA {major}.{minor}, older than any CuPy wheel this "
                f"project knows ({', '.join(CUPY_WHEELS.values())}): update the driver.")
    wheel, extra = CUPY_WHEELS[built_for], CUPY_EXTRAS.get(built_for)
    how = (f"`pip install {CUPY_WITH_LIBRARIES.get(built_for, wheel)}`"
           + (f' (or `pip install -e ".[{extra}]"`)' if extra else ""))
    if installed and installed[0] != wheel:
        needs = runtime[0] if runtime else next((m for m, w in CUPY_WHEELS.items() if w == installed[0]), None)
        why = (f"it needs a driver for CUDA {needs}" if needs and needs > major
               else "it is not the wheel built for this driver")
        return (f"Your NVIDIA driver supports CUDA {major}.{minor} and {installed[0]} is installed: {why}. "
                f"Replace it: `pip uninstall {installed[0]}`, then {how}.")
    if installed:
        return (f"Your NVIDIA driver supports CUDA {major}.{minor} and the matching wheel, {wheel}, is "
                "installed; check the GPU with `nvidia-smi`, and that CUDA's libraries are found "
                f"(`python -c \"import cupy; cupy.show_config()\"`; {how} brings them from PyPI).")
    return f"Your NVIDIA driver supports CUDA {major}.{minor}: install {how}."


# --- the host allocator ----------------------------------------------------------------------------------

def reuse_freed_memory(max_array_bytes: int = 32 * 2**20) -> bool:
    """Ask the C library's malloc to keep freed memory and hand it out again (glibc on Linux only).

    A training step allocates and frees the same large activation arrays every time. glibc serves an
    allocation above its mmap threshold with a fresh ``mmap`` and returns it to the kernel on ``free``;
    the next step's array then costs a page fault per 4 kB page, each page zeroed by the kernel. The
    threshold starts at 128 kB and rises by itself once a large block has been freed, so whether a
    process pays this depends on its history: the benchmark process did (about 4,900 faults and 5 ms
    of a 57 ms cpu-preset step), a training run that had just loaded the corpus did not. Setting the
    mmap and trim thresholds makes every process keep arrays up to ``max_array_bytes`` in the heap,
    where freed blocks are reused. It changes no result, only where memory comes from; resident memory
    stays near the step's peak between steps instead of dropping back.

    It also keeps one heap (arena) for all threads. By default glibc gives each thread that allocates an
    arena of its own, and what one arena frees the others do not reuse: the workers that share a step
    (training/step.py) then kept their arrays apart, each in its own arena. A step at T = 1024
    (``bench.py --block-size 1024``, two workers) added 575 MB to the resident memory that way, 517 to
    527 MB with one arena, in the same time (the threads now take turns at the arena's lock, once per
    array allocated or freed).

    Process-wide, so the scripts call it, not the library. Returns whether the setting took (False on
    other C libraries). Larger arrays (the gpu preset's on the CPU) still get their own mmap.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # from glibc's <malloc.h>
    mmap_ok = mallopt(M_MMAP_THRESHOLD, max_array_bytes)   # mallopt returns 1 on success, 0 on error
    trim_ok = mallopt(M_TRIM_THRESHOLD, 4 * max_array_bytes)
    arena_ok = mallopt(M_ARENA_MAX, 1)
    return bool(mmap_ok and trim_ok and arena_ok)
