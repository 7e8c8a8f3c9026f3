"""scripts/check_gpu.py: the one-command GPU check.

Without a GPU the check runs on the stand-in backend (tiny models), so that every step of it runs here
and cannot rot; the tests below also show that each kind of step can fail.
"""
import json
import subprocess
import sys
import time

import pytest

from helpers.scripts import ROOT, load_script
from tinytransformer import backend, optim
from tinytransformer.layers import activations

CHECK_SCRIPT = ROOT / "scripts" / "check_gpu.py"
check_gpu = load_script(CHECK_SCRIPT)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """A small training text: the check must not need the real corpus (or a download) in CI."""
    path = tmp_path_factory.mktemp("data") / "text.txt"
    lines = ["To be, or not to be, that is the question:", "Whether 'tis nobler in the mind to suffer",
             "The slings and arrows of outrageous fortune,", "Or to take arms against a sea of troubles"]
    path.write_text("\n".join(lines * 120) + "\n")
    return path


def test_the_whole_check_runs_on_the_standin_in_seconds(tmp_path, text_file):
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, str(CHECK_SCRIPT), "--backend", "standin", "--quick", "--data",
                             str(text_file), "--out-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    elapsed = time.perf_counter() - t0
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])                                    # the JSON summary comes last
    assert lines[-2].startswith("check_gpu: PASS on standin")          # after the verdict line
    assert list(summary["steps"]) == ["cupy_tests", "model_steps", "benchmark", "training"]  # in order
    steps = summary["steps"]
    assert all(step["status"] == "pass" for step in steps.values())
    assert steps["cupy_tests"]["tests"] >= 9 and steps["cupy_tests"]["failures"] == 0
    assert set(steps["model_steps"]["models"]) == {"GPT", "EncoderClassifier", "Seq2Seq"}
    assert steps["benchmark"]["tt_ms"] > 0 and "--device standin" in steps["benchmark"]["command"]
    training = steps["training"]
    assert training["time_limit_reached"] and training["iters"] > 0 and training["best_val_loss"] < 10
    assert elapsed < 60, f"the quick check took {elapsed:.0f} s"


def test_a_wrong_fused_gelu_fails_the_model_step_check(monkeypatch):
    """A GELU kernel with its constant 1% off: what a wrong GPU formula looks like to the check."""
    @backend.fuse
    def slightly_wrong_gelu(x):
        return x / (1.0 + backend.xp.exp(-1.01 * x * (activations.GELU.TWO_C + x * x * activations.GELU.TWO_CA)))

    monkeypatch.setattr(activations, "gelu_formula", slightly_wrong_gelu)
    result = check_gpu.model_steps(check_gpu.CheckOptions(backend="standin", quick=True, log=lambda msg: None))
    assert result["status"] == "fail"
    models = result["models"]
    for name in ("GPT", "EncoderClassifier"):                                  # both use GELU
        assert not models[name]["ok"] and models[name]["grad_error"] > check_gpu.GRAD_TOL
    assert models["Seq2Seq"]["ok"]                                             # ReLU: untouched


def test_a_wrong_fused_adamw_fails_the_update_check(monkeypatch):
    """AdamW's kernel without the bias correction of v: the gradients agree, the updates do not."""
    @backend.fuse
    def adamw_without_correction(g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps,
                                 step_size):
        m = m * beta1 + one_minus_beta1 * g
        v = v * beta2 + g * g * one_minus_beta2
        return m, v, m / (backend.xp.sqrt(v) + eps) * step_size

    monkeypatch.setattr(optim, "adamw_formula", adamw_without_correction)
    result = check_gpu.model_steps(check_gpu.CheckOptions(backend="standin", quick=True, log=lambda msg: None))
    assert result["status"] == "fail"
    for model in result["models"].values():
        assert model["grad_error"] == 0 and model["update_error"] > 100 * check_gpu.UPDATE_TOL


SOME_FAIL = """
import pytest
def test_passes():
    assert True
def test_fails():
    assert 1 == 2
@pytest.mark.skip(reason="no GPU")
def test_skipped():
    pass
"""


def test_the_cupy_test_step_runs_pytest_and_counts_what_it_reports(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_cupy.py").write_text(SOME_FAIL)
    result = check_gpu.cupy_tests(check_gpu.CheckOptions(backend="standin", repo=tmp_path))
    assert result["status"] == "fail"
    assert (result["tests"], result["failures"], result["errors"], result["skipped"]) == (3, 1, 0, 1)
    assert "assert 1 == 2" in result["output"]


@pytest.mark.parametrize("counts, returncode, backend_name, expected", [
    ({"failures": 0, "errors": 0, "skipped": 0}, 0, "cupy", "pass"),
    ({"failures": 0, "errors": 0, "skipped": 2}, 0, "cupy", "fail"),   # on a GPU a skip is a test not run
    ({"failures": 0, "errors": 0, "skipped": 9}, 0, "standin", "pass"),  # on the stand-in they skip
    ({"failures": 0, "errors": 1, "skipped": 0}, 1, "cupy", "fail"),
    ({"failures": 0, "errors": 0, "skipped": 0}, 2, "standin", "fail"),  # pytest itself failed
])
def test_the_cupy_test_step_passes_only_when_every_test_ran_and_passed(counts, returncode, backend_name,
                                                                        expected):
    assert check_gpu.tests_status(counts, returncode, backend_name) == expected


def test_a_step_that_crashes_is_a_failed_step_and_the_rest_still_run(monkeypatch, tmp_path):
    monkeypatch.setattr(check_gpu, "cupy_tests", lambda options: 1 / 0)
    monkeypatch.setattr(check_gpu, "model_steps", lambda options: {"status": "pass"})
    monkeypatch.setattr(check_gpu, "benchmark", lambda options: {"status": "pass", "tt_ms": 12.0, "ratio": 1.3})
    monkeypatch.setattr(check_gpu, "training", lambda options, seconds, out_dir, full=False:
                        {"status": "pass", "iters": 40, "wall_s": 3.0, "best_val_loss": 2.5})
    summary = check_gpu.run_checks(check_gpu.CheckOptions(backend="standin", quick=True, out_dir=str(tmp_path),
                                                        log=lambda msg: None))
    assert summary["verdict"] == "FAIL" and summary["failed"] == ["cupy_tests"]
    assert "ZeroDivisionError" in summary["steps"]["cupy_tests"]["error"]
    assert [s["status"] for s in summary["steps"].values()] == ["fail", "pass", "pass", "pass"]
    assert check_gpu.verdict_line(summary) == ("check_gpu: FAIL on standin; failed: cupy_tests; step 12.0 ms, "
                                              "ratio 1.30 vs PyTorch; trained: 40 iterations in 3 s, best val "
                                              "loss 2.5000")


def synthetic_steps(rng, grad_noise=1e-7, zero_grad_noise=1e-13):
    """A host step and a device step that differ the way a correct GPU's would: gradients by rounding
    (relative grad_noise), and a gradient that is zero in exact arithmetic by different tiny noise."""
    import numpy
    before = {"w": rng.standard_normal((64, 32)).astype(numpy.float32),
              "k_bias": numpy.zeros(32, numpy.float32)}
    host_grads = {"w": (1e-2 * rng.standard_normal((64, 32))).astype(numpy.float32),
                  "k_bias": (zero_grad_noise * rng.standard_normal(32)).astype(numpy.float32)}
    device_grads = {"w": host_grads["w"] * (1 + grad_noise * rng.standard_normal((64, 32))).astype(numpy.float32),
                    "k_bias": (zero_grad_noise * rng.standard_normal(32)).astype(numpy.float32)}

    def step(grads):
        return {"loss": 2.0, "before": before, "grads": grads,
                "changes": check_gpu.numpy_adamw_changes(before, grads)}
    return step(device_grads), step(host_grads)


def test_the_step_comparison_accepts_rounding_and_noise_in_gradients_that_are_zero():
    import numpy
    device, host = synthetic_steps(numpy.random.default_rng(0))
    result = check_gpu.compare_steps(device, host)
    # k_bias alone differs by ~100% of itself: measured against the model's gradient, it is noise
    assert result["ok"] and result["grad_error"] < check_gpu.GRAD_TOL / 10 and result["update_error"] == 0


def test_the_step_comparison_catches_a_gradient_off_by_a_thousandth():
    import numpy
    device, host = synthetic_steps(numpy.random.default_rng(0), grad_noise=1e-3)
    result = check_gpu.compare_steps(device, host)
    assert not result["ok"] and result["grad_worst"] == "w" and result["grad_error"] > check_gpu.GRAD_TOL


def test_the_full_steps_profile_fused_and_unfused_and_train_to_the_end(tmp_path, text_file):
    options = check_gpu.CheckOptions(backend="standin", quick=True, full=True, data=str(text_file),
                                    out_dir=str(tmp_path), log=lambda msg: None)
    profile = check_gpu.fusion_profile(options)
    assert profile["status"] == "pass" and "--profile" in profile["command"]
    for label in ("fused", "unfused"):
        assert profile[label]["GELU.forward"] > 0 and profile[label]["AdamW.step"] > 0
    run = check_gpu.training(options, 0.0, str(tmp_path / "full"), full=True)
    assert run["status"] == "pass" and run["iters"] == run["max_iters"] == 30 and not run["time_limit_reached"]


def test_the_profile_table_is_read_from_bench_output():
    stdout = ("one training step ...\n\nProfile of one training step (20.4 ms with the timers; self time per "
              "layer type):\n  layer.method                          ms/step   share\n"
              "  Linear.backward                          6.10   29.9%\n  GELU.forward                             0.64    3.1%\n"
              "  (unaccounted: zero_grad, Python)         1.00    4.9%\n\nPyTorch's profile of one training step "
              "(22.0 ms with the profiler; self time per operator):\n  aten::mm       8.00   36.4%\n"
              "{\"preset\": \"gpu\"}\n")
    assert check_gpu.profile_rows(stdout) == {"Linear.backward": 6.10, "GELU.forward": 0.64}


def test_only_runs_the_named_steps_and_refuses_unknown_ones(monkeypatch, tmp_path):
    monkeypatch.setattr(check_gpu, "model_steps", lambda options: {"status": "pass"})
    summary = check_gpu.run_checks(check_gpu.CheckOptions(backend="standin", only=("model_steps",),
                                                        out_dir=str(tmp_path), log=lambda msg: None))
    assert list(summary["steps"]) == ["model_steps"] and summary["verdict"] == "PASS"
    with pytest.raises(ValueError, match=r"Unknown step\(s\) \['full_training'\]"):  # needs --full
        check_gpu.run_checks(check_gpu.CheckOptions(backend="standin", only=("full_training",),
                                                  out_dir=str(tmp_path), log=lambda msg: None))


def test_the_training_step_trains_afresh_each_time_it_is_run(tmp_path, text_file):
    """The check trains in a folder of its own: a second check must not be refused as a second run."""
    options = check_gpu.CheckOptions(backend="standin", quick=True, data=str(text_file), log=lambda msg: None)
    for _ in range(2):
        result = check_gpu.training(options, 1.0, str(tmp_path / "timed"))
        assert result["status"] == "pass", result
