"""tinytransformer/machine.py: which BLAS and kernel NumPy runs, and the warning when the environment
forces a kernel (the logic is checked on fixed reports; one test asks this machine's real OpenBLAS)."""
import os

import numpy
import pytest

from tinytransformer import machine

OPENBLAS = {"blas": {"name": "scipy-openblas", "version": "0.3.31"},
            "runtime": {"corename": "Haswell", "threads": 2, "config": "OpenBLAS 0.3.31 DYNAMIC_ARCH"},
            "forced": {}, "native_corename": None, "threads_env": {}}


def test_reports_the_blas_and_the_kernel_in_use():
    lines, warnings = machine.describe_blas(OPENBLAS)
    assert lines[0] == "NumPy's BLAS: scipy-openblas 0.3.31"
    assert lines[1].startswith("OpenBLAS kernel in use: Haswell, 2 threads")
    assert warnings == []


def test_warns_when_the_environment_forces_the_kernel_and_says_how_to_unset_it():
    report = dict(OPENBLAS, forced={"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"},
                  native_corename="SkylakeX")
    _, warnings = machine.describe_blas(report, "python scripts/bench.py --preset cpu")
    assert len(warnings) == 1
    warning = warnings[0]
    assert "OPENBLAS_CORETYPE=Haswell" in warning and "OPENBLAS_L2_SIZE=1048576" in warning
    assert "unset, OpenBLAS picks SkylakeX on this CPU" in warning
    assert "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python scripts/bench.py --preset cpu`" in warning


def test_a_blas_that_does_not_say_its_kernel_is_reported_as_such():
    lines, _ = machine.describe_blas({"blas": {"name": "accelerate"}, "runtime": None, "forced": {}})
    assert lines == ["NumPy's BLAS: accelerate", "kernel in use: not reported (not OpenBLAS, or its library "
                     "was not found)"]


# Two processors of a 2-core AMD EPYC (Zen 3), abridged: every processor repeats every line.
CPUINFO = "".join(f"""processor\t: {n}
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx fma avx2 bmi2

""" for n in range(2))


def test_the_cpu_is_named_with_its_family_model_and_vector_width():
    """"AMD EPYC" alone does not say which EPYC: the family and model numbers do, and the vector width."""
    cpu = machine.cpu_report(CPUINFO)
    assert (cpu["name"], cpu["family"], cpu["model"], cpu["vector"]) == ("AMD EPYC", "25", "1", "AVX2")
    assert machine.cpu_report(CPUINFO.replace("avx2", "avx2 avx512f"))["vector"] == "AVX-512"
    assert machine.cpu_report(CPUINFO.replace(" avx2", ""))["vector"] is None
    assert (machine.describe_cpu(dict(cpu, cores=2))
            == "CPU: AMD EPYC (family 25, model 1), AVX2; 2 cores for this process")


def test_the_cpu_comes_first_in_what_a_benchmark_prints():
    cpu = {"name": "Intel(R) Xeon(R) Processor", "family": "6", "model": "207", "vector": "AVX-512", "cores": 1}
    lines, _ = machine.describe_blas(dict(OPENBLAS, cpu=cpu))
    assert lines[0] == "CPU: Intel(R) Xeon(R) Processor (family 6, model 207), AVX-512; 1 core for this process"
    assert lines[1] == "NumPy's BLAS: scipy-openblas 0.3.31"


def test_this_machines_cpu_is_reported():
    cpu = machine.blas_report()["cpu"]
    assert cpu["cores"] >= 1 and cpu["name"]
    if os.path.exists("/proc/cpuinfo"):
        assert cpu["name"] != "unknown" and cpu["family"] is not None


def test_only_the_variables_that_choose_a_kernel_count_as_forcing():
    environ = {"OPENBLAS_CORETYPE": "Zen", "OPENBLAS_L2_SIZE": "", "OPENBLAS_NUM_THREADS": "1",
               "MKL_ENABLE_INSTRUCTIONS": "AVX2", "HOME": "/root"}
    assert machine.kernel_forcing(environ) == {"OPENBLAS_CORETYPE": "Zen", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def test_the_loaded_openblas_is_asked_and_the_environment_read_as_it_is():
    """The real library, in this process, with the environment as the machine set it (never changed here)."""
    report = machine.blas_report()
    if "openblas" not in report["blas"].get("name", "").lower():
        pytest.skip(f"NumPy's BLAS here is {report['blas'].get('name')}, not OpenBLAS")
    runtime = report["runtime"]
    assert runtime is not None, "NumPy uses OpenBLAS, but its library's kernel could not be read"
    assert runtime["corename"] and runtime["corename"] in runtime["config"]  # the build string names it too
    assert runtime["threads"] >= 1
    _, warnings = machine.describe_blas(report)
    forced = machine.kernel_forcing(os.environ)
    assert report["forced"] == forced and bool(warnings) == bool(forced)
    if forced and "OPENBLAS_CORETYPE" in forced:
        assert report["native_corename"]  # asked in a process without the variables


def test_one_blas_thread_pins_and_restores():
    import ctypes
    numpy.ones((64, 64)) @ numpy.ones((64, 64))      # make sure NumPy's BLAS is loaded
    path = machine.openblas_library()
    if path is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS (e.g. Accelerate or MKL)")
    get_threads = machine.openblas_function(ctypes.CDLL(path), "get_num_threads", ctypes.c_int)
    before = get_threads()
    with machine.one_blas_thread() as pinned:
        assert pinned and get_threads() == 1
    assert get_threads() == before
