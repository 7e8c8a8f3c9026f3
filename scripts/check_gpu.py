#!/usr/bin/env python3
"""Check a GPU in one command: the real-CuPy tests, every model's training step against NumPy, the gpu
preset's speed against PyTorch, and a time-boxed training run.

    python scripts/check_gpu.py                  # minutes: the time-boxed training alone takes 150 s
    python scripts/check_gpu.py --quick          # tiny models and runs: seconds
    python scripts/check_gpu.py --full           # also the profile, fused and not, and the whole gpu-preset run
    python scripts/check_gpu.py --full --only fusion_profile,full_training   # just those two
    python scripts/check_gpu.py --backend standin --quick   # the check itself, on the CPU (the tests run this)

It prints one verdict line (check_gpu: PASS ... or FAIL ...) and, last, a JSON summary; the exit status is
0 on PASS and 1 on FAIL.

``run_checks`` runs four steps in order:

1. ``cupy_tests``    the real-CuPy tests (tests/test_cupy.py) in a pytest process of their own;
2. ``model_steps``   one training step (forward, backward, clip, AdamW) of GPT, EncoderClassifier and
                     Seq2Seq on the device and on NumPy from the same weights and batch, compared;
3. ``benchmark``     scripts/bench.py's training step of the gpu preset, against the PyTorch twin on CUDA
                     when PyTorch with CUDA is installed (the benchmark's own machinery, fresh processes);
4. ``training``      the gpu preset trained by the library's trainer until a time limit stops it: the
                     iteration and validation loss it reached;

and with ``full=True``: ``fusion_profile`` (GPU time per layer type with the fused kernels and with
fusion off) and ``full_training`` (the gpu preset's whole run, 5000 iterations, against nanoGPT's
1.48; with ``quick`` a run of 30 iterations).

Each step returns a dict with ``status`` "pass", "fail" or "skip" and what it measured; a step that
raises is recorded as failed and the next step still runs. ``quick=True`` shrinks every model and run
so that the whole check takes seconds; ``backend="standin"`` runs it on the CPU stand-in for CuPy, which
is how the test suite keeps this module working on machines without a GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer import backend  # noqa: E402
from tinytransformer.machine import gpu_report, reuse_freed_memory  # noqa: E402
from tinytransformer.models import GPT, EncoderClassifier, EncoderConfig, GPTConfig, Seq2Seq, Seq2SeqConfig  # noqa: E402
from tinytransformer.module import Parameter  # noqa: E402
from tinytransformer.optim import AdamW, clip_grad_norm  # noqa: E402
from tinytransformer.training import PRESETS, TrainConfig, train  # noqa: E402

# float32 keeps 24 bits (unit roundoff 6e-8). A GPU adds in another order than NumPy (cuBLAS tiles its
# products, reductions run as trees) and contracts a·b + c into one rounding (FMA), so each operation
# differs by a few roundoffs, and a length-K sum by about √K of them: with K ≤ 1536 and a dozen layers
# forward and back, a correct step differs from NumPy's by about 1e-6 (relative, per tensor; the layer
# tests in tests/test_cupy.py allow 1e-4 per element). A wrong kernel moves the gradients by more than
# 1e-4: a GELU constant 1% off gives 7e-4 to 1.4e-3 on the quick models (tests/test_gpucheck.py), a
# missing scale or term far more. Each gradient is compared as ‖a − b‖ / (‖a‖ + ‖b‖ + floor), where
# floor is 1e-6 of the whole model's gradient norm: a gradient that is zero in exact arithmetic (the key
# projection's bias; softmax ignores a constant added to a row of scores) is rounding noise of ~1e-13 on
# both sides, different noise, and must not count as a 100% error.
LOSS_TOL = 1e-5        # the scalar loss, relative
GRAD_TOL = 1e-4        # every parameter's gradient, as above
GRAD_FLOOR = 1e-6      # of the global gradient norm
# The parameter updates are checked apart from the gradients: NumPy's AdamW is given the device's own
# gradients and must make the device's step. (From its own gradients it could not: AdamW's first step
# is about lr·sign(g), so a coordinate whose gradient is within rounding of 0 moves the other way.) What
# remains is the update's own rounding, ~1e-6 of lr; an update formula that is wrong (no bias
# correction, eps in the wrong place, weight decay on the wrong tensors) is off by a fraction of lr.
UPDATE_TOL = 1e-4      # RMS difference of every parameter's change, in units of lr


@dataclass
class CheckOptions:
    backend: str = "cupy"             # "cupy", or "standin" to run the check itself on the CPU
    quick: bool = False               # tiny models and runs: seconds instead of minutes
    train_seconds: float = 150.0      # the time-boxed training of the gpu preset
    full: bool = False                # also train the gpu preset completely (5000 iterations)
    data: str | None = None           # the training text (default: Tiny Shakespeare, found or downloaded)
    out_dir: str = "out/check_gpu"
    repo: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent)  # the checkout
    log: object = print
    only: tuple = ()                  # run only these steps (by name), e.g. to split the check in two


def _subprocess_env(repo: Path) -> dict:
    """This environment, with the checkout importable (the package need not be installed)."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), environ.get("PYTHONPATH")]))
    return environ


# --- 1. the real-CuPy tests ------------------------------------------------------------------------------

def junit_counts(xml_text: str) -> dict:
    """tests, failures, errors and skipped from a pytest --junitxml report."""
    root = ElementTree.fromstring(xml_text)
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}


def cupy_tests(options: CheckOptions) -> dict:
    """tests/test_cupy.py in a pytest process. On CuPy every test must run and pass (a skip means CuPy
    did not see the GPU); on the stand-in they skip, and only failures count."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
               "tests/test_cupy.py"]
        result = subprocess.run(cmd, cwd=options.repo, env=_subprocess_env(options.repo), capture_output=True,
                                text=True, timeout=600)
        if not report.exists():
            return {"status": "fail", "error": f"pytest did not run (exit {result.returncode}): "
                                               f"{(result.stdout + result.stderr)[-2000:]}"}
        counts = junit_counts(report.read_text())
    status = tests_status(counts, result.returncode, options.backend)
    if status == "fail":
        counts["output"] = result.stdout[-3000:]
    return {"status": status, **counts}


def tests_status(counts: dict, returncode: int, backend_name: str) -> str:
    """pass or fail for a pytest run of the real-CuPy tests."""
    if counts["failures"] or counts["errors"] or returncode != 0:
        return "fail"
    if backend_name == "cupy" and counts["skipped"]:
        return "fail"  # on a GPU, a skipped real-CuPy test is a test that did not run
    return "pass"


# --- 2. one training step of every model, device against NumPy ------------------------------------------

def model_specs(quick: bool) -> dict:
    """name -> (model class, config, batch maker). Dropout 0: the device draws its own dropout masks."""
    if quick:
        d, layers, heads, T, B = 32, 2, 2, 16, 4
    else:  # the gpu preset's width and context, fewer sequences: NumPy must take the step too
        d, layers, heads, T, B = 384, 6, 6, 256, 8

    def tokens(rng, high, shape, low=0):
        return rng.integers(low, high, shape)

    def gpt_batch(rng):
        ids = tokens(rng, 65, (B, T + 1))
        return (ids[:, :-1], ids[:, 1:])

    def encoder_batch(rng):
        ids = tokens(rng, 16, (B, T), low=1)
        ids[:, T - T // 4:] = 0                                                   # a padded tail
        return (ids, tokens(rng, 3, (B,)))

    def seq2seq_batch(rng):
        tgt = tokens(rng, 16, (B, T // 2 + 1), low=1)
        return (tokens(rng, 16, (B, T), low=1), tgt[:, :-1], tgt[:, 1:])

    return {
        "GPT": (GPT, GPTConfig(vocab_size=65, block_size=T, n_layer=layers, n_head=heads, n_embd=d,
                               bias=False, seed=0), gpt_batch),
        "EncoderClassifier": (EncoderClassifier, EncoderConfig(vocab_size=16, n_classes=3, block_size=T,
                                                               n_layer=layers, n_head=heads, n_embd=d,
                                                               seed=0), encoder_batch),
        "Seq2Seq": (Seq2Seq, Seq2SeqConfig(src_vocab_size=16, tgt_vocab_size=16, block_size=T,
                                           n_encoder_layer=layers, n_decoder_layer=layers, n_head=heads,
                                           n_embd=d, seed=0), seq2seq_batch),
    }


STEP_LR = 1e-3
ADAMW = dict(betas=(0.9, 0.99), weight_decay=0.1)


def training_step(model_class, config, host_batch, backend_name):
    """One step on a fresh model, everything copied to the host: the loss, the weights before the step,
    every gradient (after clipping) and every parameter's change."""
    with backend.using("float32", backend=backend_name):
        model = model_class(config)
        before = {name: backend.to_numpy(p.data).copy() for name, p in model.named_parameters()}
        optimizer = AdamW(model.named_parameters(), lr=STEP_LR, **ADAMW)
        model.zero_grad()
        _, loss = model(*[backend.asarray(a) for a in host_batch])
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        grads = {name: backend.to_numpy(p.grad).copy() for name, p in model.named_parameters()}
        optimizer.step()
        backend.synchronize()
        changes = {name: backend.to_numpy(p.data) - before[name] for name, p in model.named_parameters()}
        return {"loss": float(loss), "before": before, "grads": grads, "changes": changes}


def numpy_adamw_changes(before, grads):
    """The change NumPy's AdamW makes to weights ``before`` given gradients ``grads`` (its first step)."""
    with backend.using("float32", backend="numpy"):
        params = {name: Parameter(before[name].copy()) for name in before}
        for name, p in params.items():
            p.grad[...] = grads[name]
        AdamW(list(params.items()), lr=STEP_LR, **ADAMW).step()
        return {name: p.data - before[name] for name, p in params.items()}


def compare_steps(device, host) -> dict:
    """The largest differences between a device step and a NumPy step, and the tensors they are in."""
    loss_error = abs(device["loss"] - host["loss"]) / max(abs(host["loss"]), 1e-30)
    grads = host["grads"]
    floor = GRAD_FLOOR * math.sqrt(sum(float((g.astype(numpy.float64) ** 2).sum()) for g in grads.values()))

    def grad_error(a, b):
        a, b = a.astype(numpy.float64), b.astype(numpy.float64)
        return float(numpy.linalg.norm(a - b) / (numpy.linalg.norm(a) + numpy.linalg.norm(b) + floor))

    expected = numpy_adamw_changes(device["before"], device["grads"])  # from the device's own gradients

    def update_error(a, b):
        return float(numpy.sqrt(((a.astype(numpy.float64) - b) ** 2).mean()) / STEP_LR)

    grad_errors = {name: grad_error(device["grads"][name], grads[name]) for name in grads}
    update_errors = {name: update_error(device["changes"][name], expected[name]) for name in expected}
    worst_grad = max(grad_errors, key=grad_errors.get)
    worst_update = max(update_errors, key=update_errors.get)
    return {"loss_error": loss_error, "grad_error": grad_errors[worst_grad], "grad_worst": worst_grad,
            "update_error": update_errors[worst_update], "update_worst": worst_update,
            "ok": bool(loss_error <= LOSS_TOL and grad_errors[worst_grad] <= GRAD_TOL
                       and update_errors[worst_update] <= UPDATE_TOL)}


def model_steps(options: CheckOptions) -> dict:
    results = {}
    for name, (model_class, config, make_batch) in model_specs(options.quick).items():
        host_batch = make_batch(numpy.random.default_rng(0))
        device = training_step(model_class, config, host_batch, options.backend)
        host = training_step(model_class, config, host_batch, "numpy")
        results[name] = compare_steps(device, host)
        options.log(f"  {name}: loss {results[name]['loss_error']:.1e}, gradients "
                    f"{results[name]['grad_error']:.1e} ({results[name]['grad_worst']}), update "
                    f"{results[name]['update_error']:.1e} ({results[name]['update_worst']})")
    return {"status": "pass" if all(r["ok"] for r in results.values()) else "fail",
            "tolerances": {"loss": LOSS_TOL, "grad": GRAD_TOL, "update_in_lr": UPDATE_TOL}, "models": results}


# --- 3. the gpu preset's step against PyTorch -------------------------------------------------------------

def torch_has_cuda(repo: Path) -> bool:
    """Whether PyTorch with a usable CUDA device is installed (asked in a separate process, so that this
    one never holds a PyTorch CUDA context next to CuPy's)."""
    try:
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                             capture_output=True, text=True, timeout=300, env=_subprocess_env(repo)).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip().endswith("True")


TINY_BENCH = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "4"]


def bench_command(options: CheckOptions, with_torch: bool) -> list:
    """scripts/bench.py's command line for this check."""
    cmd = [sys.executable, str(options.repo / "scripts" / "bench.py"), "--preset", "gpu"]
    if options.backend != "cupy":
        cmd += ["--device", options.backend]
    if options.quick:
        cmd += [*TINY_BENCH, "--repeats", "1", "--steps", "3"]
    else:
        cmd += ["--repeats", "3", "--steps", "10"]
    return cmd if with_torch else cmd + ["--no-torch"]


def benchmark(options: CheckOptions) -> dict:
    with_torch = options.backend == "cupy" and torch_has_cuda(options.repo)
    cmd = bench_command(options, with_torch)
    result = subprocess.run(cmd, cwd=options.repo, env=_subprocess_env(options.repo), capture_output=True,
                            text=True, timeout=900)
    for line in result.stdout.strip().splitlines()[:-1]:
        options.log("  " + line)
    if result.returncode != 0:
        return {"status": "fail", "command": " ".join(cmd[1:]), "error": result.stderr[-3000:]}
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    out = {"status": "pass", "command": " ".join(cmd[1:]), "torch": "cuda" if with_torch else
           "not timed (PyTorch with CUDA is not installed)" if options.backend == "cupy" else
           "not timed (stand-in backend)"}
    for key in ("tt_ms", "torch_ms", "torch_unfused_ms", "ratio", "ratio_unfused", "gflops",
                "matmul_peak_gflops", "peak_fraction", "machine"):
        if key in summary:
            out[key] = summary[key]
    return out


def profile_rows(bench_stdout: str) -> dict:
    """{layer.method: ms per step} from the --profile table that scripts/bench.py prints (tinytransformer's;
    PyTorch's, printed after it on a CPU, is not read)."""
    rows, inside = {}, False
    for line in bench_stdout.splitlines():
        if line.startswith("Profile of one training step"):
            inside = True
            continue
        if line.startswith("PyTorch's profile"):
            break
        parts = line.split()
        if inside and len(parts) == 3 and parts[2].endswith("%"):
            try:
                rows[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return rows


def fusion_profile(options: CheckOptions) -> dict:
    """Where the gpu preset's step spends its GPU time per layer type, with the fused kernels and with
    fusion off (TINYTRANSFORMER_FUSE=0): what fusing gains, layer by layer."""
    cmd = bench_command(options, with_torch=False)
    cmd[cmd.index("--repeats") + 1] = "1"
    cmd += ["--profile"]
    out = {"status": "pass", "command": " ".join(cmd[1:])}
    for label, fuse in (("fused", "1"), ("unfused", "0")):
        environ = _subprocess_env(options.repo)
        environ["TINYTRANSFORMER_FUSE"] = fuse
        result = subprocess.run(cmd, cwd=options.repo, env=environ, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return {"status": "fail", "command": out["command"], "error": result.stderr[-3000:]}
        out[label] = profile_rows(result.stdout)
        options.log(f"  {label}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in
                                                 sorted(out[label].items(), key=lambda kv: -kv[1])[:6]))
    if not out["fused"] or not out["unfused"]:
        out["status"] = "fail"
        out["error"] = "bench.py printed no profile table"
    return out


# --- 4. the gpu preset, trained until a time limit -----------------------------------------------------------

def training_config(options: CheckOptions, seconds: float, out_dir: str):
    settings = dict(PRESETS["gpu"], device="gpu" if options.backend == "cupy" else options.backend,
                    out_dir=out_dir, data=options.data, max_seconds=seconds, log_interval=50,
                    overwrite=True)  # the check's own folder: each check trains afresh
    if options.quick:  # tiny; the time limit ends the time-boxed run, 30 iterations the "full" one
        settings.update(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=4, eval_iters=2,
                        eval_interval=25, log_interval=10, sample_chars=40, warmup_iters=5, lr_decay_iters=30,
                        max_iters=30 if seconds == 0 else 10**6)
    return TrainConfig(**settings)


def training(options: CheckOptions, seconds: float, out_dir: str, full: bool = False) -> dict:
    """Train the gpu preset with the library's trainer (time-boxed, or the whole run when ``full``)."""
    cfg = training_config(options, 0.0 if full else seconds, out_dir)
    summary = train(cfg, log=lambda msg: options.log("  " + msg))
    result = {key: summary[key] for key in ("iters", "best_val_loss", "ms_per_iter", "tokens_per_s", "wall_s",
                                            "time_limit_reached", "sample")}
    if backend.name() == "cupy":  # CuPy's pool keeps every block it got: its total is the run's peak
        import cupy
        result["gpu_pool_peak_gib"] = round(cupy.get_default_memory_pool().total_bytes() / 2**30, 3)
    result["max_seconds"], result["max_iters"] = cfg.max_seconds, cfg.max_iters
    finite = math.isfinite(result["best_val_loss"]) and result["iters"] > 0
    result["status"] = "pass" if finite else "fail"
    if full and not options.quick:  # nanoGPT reaches 1.4697 with this recipe
        result["target_val_loss"] = 1.48
        result["status"] = "pass" if finite and result["best_val_loss"] <= 1.48 else "fail"
    return result


# --- the whole check ------------------------------------------------------------------------------------------

def run_checks(options: CheckOptions) -> dict:
    """Run the steps in order; returns {"verdict": "PASS"/"FAIL", "steps": {...}, ...} for the summary."""
    start = time.perf_counter()
    steps = {}
    out_dir = Path(options.out_dir)
    plan = [("cupy_tests", "the real-CuPy tests (tests/test_cupy.py)", lambda: cupy_tests(options)),
            ("model_steps", "one training step of each model on the device against NumPy",
             lambda: model_steps(options)),
            ("benchmark", "the gpu preset's training step against PyTorch (scripts/bench.py)",
             lambda: benchmark(options)),
            ("training", f"the gpu preset trained for {options.train_seconds:g} s",
             lambda: training(options, options.train_seconds, str(out_dir / "timed")))]
    if options.full:
        plan.append(("fusion_profile", "GPU time per layer type, fused and unfused (bench.py --profile)",
                     lambda: fusion_profile(options)))
        plan.append(("full_training", "the gpu preset trained in full (5000 iterations, seed 1337)",
                     lambda: training(options, 0.0, str(out_dir / "full"), full=True)))
    if options.only:
        unknown = sorted(set(options.only) - {name for name, _, _ in plan})
        if unknown:
            raise ValueError(f"Unknown step(s) {unknown}; the steps are {[name for name, _, _ in plan]}.")
        plan = [step for step in plan if step[0] in options.only]
    for name, title, run in plan:
        options.log(f"[{len(steps) + 1}/{len(plan)}] {title}")
        t0 = time.perf_counter()
        try:
            result = run()
        except Exception as err:  # a crashed step is a failed step; the others still run
            result = {"status": "fail", "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc()[-3000:]}
        result["seconds"] = round(time.perf_counter() - t0, 1)
        steps[name] = result
        options.log(f"  -> {result['status']} ({result['seconds']} s)")
    failed = [name for name, result in steps.items() if result["status"] == "fail"]
    return {"verdict": "FAIL" if failed else "PASS", "failed": failed, "backend": options.backend,
            "quick": options.quick, "gpu": gpu_report() if options.backend == "cupy" else {},
            "wall_s": round(time.perf_counter() - start, 1), "steps": steps}


def verdict_line(summary: dict) -> str:
    """One line: PASS or FAIL, and the figures a reader wants first."""
    steps = summary["steps"]
    parts = [f"check_gpu: {summary['verdict']} on {summary['backend']}"]
    if summary.get("gpu", {}).get("device"):
        parts[0] += f" ({summary['gpu']['device']})"
    if summary["failed"]:
        parts.append("failed: " + ", ".join(summary["failed"]))
    bench = steps.get("benchmark", {})
    if "tt_ms" in bench:
        ratio = f", ratio {bench['ratio']:.2f} vs PyTorch" if "ratio" in bench else ""
        parts.append(f"step {bench['tt_ms']:.1f} ms{ratio}")
    for key in ("training", "full_training"):
        run = steps.get(key, {})
        if "iters" in run:
            parts.append(f"{'trained' if key == 'training' else 'full run'}: {run['iters']} iterations in "
                         f"{run['wall_s']:.0f} s, best val loss {run['best_val_loss']:.4f}")
    return "; ".join(parts)


# --- the command line -----------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["cupy", "standin"], default="cupy",
                        help="cupy (the GPU), or standin: the CPU stand-in, to check this script itself")
    parser.add_argument("--quick", action="store_true", help="tiny models and runs: seconds")
    parser.add_argument("--full", action="store_true",
                        help="also train the gpu preset in full (5000 iterations, seed 1337; ~10 min or more)")
    parser.add_argument("--train-seconds", type=float, default=None,
                        help="time limit of the time-boxed training (default 150, --quick 3)")
    parser.add_argument("--data", default=None, help="training text (default: Tiny Shakespeare)")
    parser.add_argument("--out-dir", default="out/check_gpu", help="checkpoints and logs of the training runs")
    parser.add_argument("--only", default="", help="comma-separated steps to run (cupy_tests, model_steps, "
                        "benchmark, training; with --full also fusion_profile, full_training)")
    args = parser.parse_args(argv)
    reuse_freed_memory()  # as train_shakespeare.py does
    seconds = args.train_seconds if args.train_seconds is not None else (3.0 if args.quick else 150.0)
    options = CheckOptions(backend=args.backend, quick=args.quick, train_seconds=seconds, full=args.full,
                           data=args.data, out_dir=args.out_dir, log=lambda msg: print(msg, flush=True),
                           only=tuple(filter(None, args.only.split(","))))
    try:
        summary = run_checks(options)
    except ValueError as err:  # an unknown --only step
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(verdict_line(summary))
    print(json.dumps(summary))
    return 0 if summary["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
