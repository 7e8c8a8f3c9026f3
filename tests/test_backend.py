"""The backend: choosing NumPy, CuPy or the stand-in, the default dtype, and the few operations
that NumPy and CuPy spell differently."""
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytransformer import backend, machine

REPO = Path(__file__).resolve().parents[1]


def test_numpy_and_float32_by_default():
    assert backend.name() == "numpy" and not backend.is_gpu()
    assert backend.default_dtype() == numpy.float32
    assert backend.randn((2, 2)).dtype == numpy.float32


def test_using_switches_for_a_block_and_switches_back_even_after_an_error():
    with pytest.raises(RuntimeError):
        with backend.using("float64", backend="standin"):
            assert backend.name() == "standin" and backend.is_gpu()
            assert backend.default_dtype() == numpy.float64
            assert isinstance(backend.xp.zeros(2), backend.xp.ndarray)  # xp follows the switch
            raise RuntimeError("leave the block")
    assert backend.name() == "numpy" and backend.default_dtype() == numpy.float32
    assert isinstance(backend.xp.zeros(2), numpy.ndarray)


def test_unknown_backend_name_is_explained():
    with pytest.raises(backend.BackendError, match=r"Unknown backend 'torch'; choose one of numpy, cupy, standin"):
        backend.use("torch")


def test_default_dtype_must_be_float32_or_float64():
    with pytest.raises(backend.BackendError, match="Default dtype must be float32 or float64, got float16"):
        backend.set_default_dtype("float16")


@pytest.mark.parametrize("driver, wheel", [((13, 0), "cupy-cuda13x"), ((12, 8), "cupy-cuda12x")])
def test_missing_cupy_names_the_wheel_for_the_driver(monkeypatch, driver, wheel):
    # Make `import cupy` fail even on a machine where CuPy is installed; pretend nvidia-smi said `driver`.
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(machine, "driver_cuda_version", lambda: driver)
    with pytest.raises(backend.BackendError, match=rf"needs CuPy, which is not installed.*supports CUDA "
                                                   rf'{driver[0]}\.{driver[1]}: install `pip install "{wheel}\[ctk\]"`'):
        backend.use("cupy")
    assert backend.name() == "numpy"  # a failed switch changes nothing


class _FakeRuntime:
    """cupy.cuda.runtime of a CuPy built for CUDA 13 on a machine whose driver supports CUDA 12.8."""
    @staticmethod
    def getDeviceCount():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    driverGetVersion = staticmethod(lambda: 12080)
    runtimeGetVersion = staticmethod(lambda: 13000)


def test_cupy_that_cannot_run_names_the_wheel_to_swap_to(monkeypatch):
    fake = type(sys)("cupy")
    fake.cuda = type(sys)("cupy.cuda")
    fake.cuda.runtime = _FakeRuntime
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(machine, "installed_cupy_wheels", lambda: ["cupy-cuda13x"])
    with pytest.raises(backend.BackendError) as caught:
        backend.use("cupy")
    message = str(caught.value)
    assert "cudaErrorInsufficientDriver" in message                         # CuPy's own words
    assert "supports CUDA 12.8 and cupy-cuda13x is installed: it needs a driver for CUDA 13" in message
    assert '`pip uninstall cupy-cuda13x`, then `pip install "cupy-cuda12x[ctk]"`' in message
    assert backend.name() == "numpy"


@pytest.mark.parametrize("driver, installed, runtime, expected", [
    (None, [], None, "No NVIDIA driver was found (`nvidia-smi` did not run)"),
    (None, [], None, "`pip install cupy-cuda13x` for CUDA 13.x, `pip install cupy-cuda12x` for CUDA 12.x"),
    ((13, 0), [], None, 'CUDA 13.0: install `pip install "cupy-cuda13x[ctk]"` (or `pip install -e ".[gpu-cuda13]"`)'),
    ((12, 4), [], None, 'CUDA 12.4: install `pip install "cupy-cuda12x[ctk]"` (or `pip install -e ".[gpu-cuda12]"`)'),
    ((11, 8), [], None, "CUDA 11.8: install `pip install cupy-cuda11x`."),
    ((14, 1), [], None, 'CUDA 14.1: install `pip install "cupy-cuda13x[ctk]"`'),  # newer drivers run older builds
    ((10, 2), [], None, "older than any CuPy wheel this project knows (cupy-cuda11x, cupy-cuda12x, "
                        "cupy-cuda13x): update the driver"),
    ((12, 8), ["cupy-cuda13x"], None, "cupy-cuda13x is installed: it needs a driver for CUDA 13. Replace it"),
    ((13, 0), ["cupy-cuda12x"], (12, 8), "cupy-cuda12x is installed: it is not the wheel built for this "
                                         "driver. Replace it: `pip uninstall cupy-cuda12x`, then `pip install "
                                         '"cupy-cuda13x[ctk]"`'),
    ((13, 0), ["cupy-cuda13x"], (13, 0), "the matching wheel, cupy-cuda13x, is installed; check the GPU"),
    ((13, 0), ["cupy-cuda12x", "cupy-cuda13x"], None,
     "Several CuPy wheels are installed (cupy-cuda12x, cupy-cuda13x); they overwrite each other. Uninstall all "
     "of them (`pip uninstall cupy-cuda12x cupy-cuda13x`), then install the one for your driver. Your NVIDIA "
     'driver supports CUDA 13.0: install `pip install "cupy-cuda13x[ctk]"`'),
], ids=["no_driver", "no_driver_lists_wheels", "cuda13", "cuda12", "cuda11", "newer_than_known", "too_old",
        "wheel_newer_than_driver", "older_wheel", "right_wheel", "two_wheels"])
def test_cupy_install_hint_names_the_wheel_that_fits_the_driver(driver, installed, runtime, expected):
    assert expected in machine.cupy_install_hint(driver, installed=installed, runtime=runtime)


NVIDIA_SMI_BANNER = """
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.65.06              Driver Version: 580.65.06      CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+
"""


def test_driver_cuda_version_is_read_from_nvidia_smi():
    assert machine.parse_nvidia_smi(NVIDIA_SMI_BANNER) == (13, 0)
    assert machine.parse_nvidia_smi(NVIDIA_SMI_BANNER.replace("13.0", "12.8")) == (12, 8)
    assert machine.parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the driver") is None


def test_fuse_on_numpy_is_the_formula_itself():
    calls = []

    def formula(x, y):
        calls.append((type(x), type(y)))
        return x * y + 1.0

    fused = backend.fuse(formula)
    assert fused.__name__ == "formula" and fused.__wrapped__ is formula
    x = numpy.arange(3.0)
    numpy.testing.assert_array_equal(fused(x, x), x * x + 1.0)
    assert calls == [(numpy.ndarray, numpy.ndarray)]  # called once, with the arrays as they are


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter (the backend is chosen at import time) and return its stdout."""
    environment = {k: v for k, v in os.environ.items() if k != backend.ENV_VAR}
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=60)


def test_environment_variable_chooses_the_backend_at_import():
    code = "from tinytransformer import backend; print(backend.name())"
    assert run_python(code).stdout.strip() == "numpy"
    assert run_python(code, TINYTRANSFORMER_BACKEND="standin").stdout.strip() == "standin"
    failed = run_python(code, TINYTRANSFORMER_BACKEND="fortran")
    assert failed.returncode != 0 and "Unknown backend 'fortran'" in failed.stderr


@pytest.mark.parametrize("name", ["numpy", "standin"])
def test_scatter_add_accumulates_repeated_indices(name):
    with backend.using("float64", backend=name):
        target = backend.xp.zeros((4, 2))
        indices = backend.asarray([1, 3, 1, 1])
        values = backend.asarray([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
        backend.scatter_add(target, indices, values)
        result = backend.to_numpy(target)
    # index 1 appears three times: 1 + 5 + 7 and 2 + 6 + 8
    numpy.testing.assert_array_equal(result, [[0, 0], [13, 16], [0, 0], [3, 4]])


@settings(max_examples=50, deadline=None)
@given(n_rows=st.integers(1, 6), n=st.integers(0, 40), width=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_sorted_scatter_add_equals_numpy_add_at(n_rows, n, width, seed):
    rng = numpy.random.default_rng(seed)
    indices = rng.integers(0, n_rows, n)
    values = rng.standard_normal((n, width))
    start = rng.standard_normal((n_rows, width))
    expected, got = start.copy(), start.copy()
    numpy.add.at(expected, indices, values)
    backend.scatter_add_sorted(got, indices, values)
    numpy.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_plain_fancy_index_add_would_lose_repeats():
    """Why scatter_add exists: ``target[idx] += v`` applies one of the repeated updates only."""
    target = numpy.zeros(3)
    target[numpy.array([1, 1, 1])] += numpy.array([1.0, 2.0, 3.0])
    assert target[1] != 6.0


def test_randn_draws_the_same_numbers_on_every_backend():
    drawn = {}
    for name in ["numpy", "standin"]:
        with backend.using("float64", backend=name):
            drawn[name] = backend.to_numpy(backend.randn((3, 2), std=0.5, rng=backend.new_host_rng(7)))
    numpy.testing.assert_array_equal(drawn["numpy"], drawn["standin"])
    assert drawn["numpy"].std() > 0


def test_seed_makes_initial_weights_reproducible():
    backend.seed(123)
    first = backend.randn((4,))
    backend.seed(123)
    numpy.testing.assert_array_equal(backend.randn((4,)), first)


@pytest.mark.parametrize("name", ["numpy", "standin"])
def test_device_rng_is_seeded_and_keeps_its_dtype(name):
    with backend.using(backend=name):
        a = backend.DeviceRNG(5).random((6,), numpy.float32)
        b = backend.DeviceRNG(5).random((6,), numpy.float32)
        assert a.dtype == numpy.float32 and isinstance(a, backend.xp.ndarray)
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
        values = backend.to_numpy(a)
    assert ((values >= 0) & (values < 1)).all()


def test_device_rng_state_can_be_saved_and_restored():
    rng = backend.DeviceRNG(0)
    state = rng.get_state()
    first = rng.random((3,), numpy.float64)
    rng.set_state(state)
    numpy.testing.assert_array_equal(rng.random((3,), numpy.float64), first)


def test_to_numpy_and_asarray():
    host = numpy.arange(3.0)
    assert backend.to_numpy(host) is host
    assert backend.to_numpy(numpy.float64(2.5)) == 2.5
    assert backend.asarray([1, 2], dtype=numpy.float32).dtype == numpy.float32


_FAULTS_PER_STEP = """
import resource, statistics, sys
from tinytransformer import backend
from tinytransformer.machine import reuse_freed_memory
from tinytransformer.models.gpt import GPT, GPTConfig
reused = reuse_freed_memory() if sys.argv[1] == "reuse" else None
model = GPT(GPTConfig(block_size=64, n_layer=2, n_head=4, n_embd=128, bias=False))
rng = backend.new_host_rng(0)
x, y = (backend.asarray(rng.integers(0, 65, (12, 64))) for _ in range(2))
def step():
    model.zero_grad(); model(x, y); model.backward()
step(); step()
faults = []
for _ in range(9):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(reused, statistics.median(faults))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page-fault counts and mallopt: Linux only")
def test_reuse_freed_memory_stops_the_page_faults_of_every_step():
    def faults_per_step(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP, mode], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.split()
        return out[0], float(out[1])
    _, default = faults_per_step("default")
    reused, tuned = faults_per_step("reuse")
    if reused != "True":
        pytest.skip("this C library has no mallopt (not glibc)")
    # A step of this model allocates ~12 MB of arrays, fresh pages by default, reused ones when reused.
    # How many pages one fault maps depends on the kernel: one 4 kB page on some (~3,000 faults a step
    # by default), several on others (~350). With reuse most steps fault not at all, but now and then
    # one does when the heap grows (a few hundred faults), so the median step is compared, not the mean.
    assert default > 0, "the default allocator faulted in no fresh pages: nothing to compare with"
    assert tuned < default / 4, f"reuse_freed_memory: {tuned} faults in the median step vs {default} without"


_ARENAS_AFTER_TWO_WORKERS = """
import ctypes, sys, tempfile, threading
import numpy
from tinytransformer.machine import reuse_freed_memory
reused = reuse_freed_memory() if sys.argv[1] == "reuse" else None
start = threading.Barrier(2)
def work():
    start.wait()                                   # both threads allocate at the same time, as workers do
    for _ in range(50):
        a = numpy.ones(2**18)                      # 2 MB: below the mmap threshold, from a heap
        del a
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    stream = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))  # glibc's description of its heaps, as XML
    libc.fclose(ctypes.c_void_p(stream))
    print(reused, open(f.name).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_info and mallopt: glibc only")
def test_reuse_freed_memory_keeps_one_heap_for_all_threads():
    """Two threads that allocate at once get an arena each by default, and neither reuses what the other
    frees; after reuse_freed_memory they share one (what keeps a T = 1024 step's memory down with two
    workers: docs/performance.md)."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}   # glibc's own default

    def heaps(mode):
        out = subprocess.run([sys.executable, "-c", _ARENAS_AFTER_TWO_WORKERS, mode], capture_output=True,
                             text=True, check=True, cwd=REPO, env=env).stdout.split()
        return out[0], int(out[1])
    _, default = heaps("default")
    reused, shared = heaps("reuse")
    if reused != "True":
        pytest.skip("this C library has no mallopt (not glibc)")
    assert default >= 2, f"by default each thread should have had an arena of its own; heaps: {default}"
    assert shared == 1, f"reuse_freed_memory: {shared} heaps after two threads allocated, not one"


class _FakeCupy:
    """Just enough of CuPy for backend.fuse's dispatch: cupy.fuse, recording what it was given."""
    def __init__(self):
        self.fused = []

    def fuse(self, formula):
        self.fused.append(formula)
        return lambda *args: ("kernel", formula(*args))


@pytest.mark.parametrize("fusion", [True, False])
def test_fuse_under_cupy_compiles_the_formula_once_unless_fusion_is_off(monkeypatch, fusion):
    fake = _FakeCupy()
    monkeypatch.setattr(backend._state, "name", "cupy")
    monkeypatch.setattr(backend._state, "module", fake)
    monkeypatch.setattr(backend, "FUSION", fusion)

    def formula(x):
        return x * 2.0

    fused = backend.fuse(formula)
    results = [fused(numpy.arange(3.0)), fused(numpy.arange(3.0))]
    if fusion:
        assert fake.fused == [formula]                      # cupy.fuse made one kernel, used twice
        assert all(r[0] == "kernel" for r in results)
    else:                                                   # TINYTRANSFORMER_FUSE=0: operation by operation
        assert fake.fused == []
        numpy.testing.assert_array_equal(results[0], [0.0, 2.0, 4.0])
