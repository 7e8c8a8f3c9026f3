#!/usr/bin/env python3
"""Time one full training step (forward, backward, clip, AdamW) of tinytransformer against PyTorch.

    python scripts/bench.py --preset cpu                 # the Shakespeare CPU recipe's shapes
    python scripts/bench.py --preset cpu --profile       # where each library's time goes
    python scripts/bench.py --scaling --plot scaling.png # step time against sequence length and width

Both run the same architecture (scripts/torch_gpt.py mirrors tinytransformer's GPT and loads its
weights) on identical shapes, dtype and thread count; the two steps are in scripts/_bench_steps.py.
Each timing round runs in a fresh process of its own, one library per process, as a user runs them:
in one shared process, the thread pools that one library leaves spinning after its last step slow the
other one's next steps (PyTorch timed 45 ms per step on the cpu preset right after tinytransformer's
steps, 29 ms on its own). Rounds alternate A, B, A, B, ... so that a drift in the machine's speed hits
both; figures are medians with min and max.
Achieved GFLOP/s counts model FLOPs as nanoGPT's estimate_mfu does (6·N per token for the matrices,
plus 12·L·d·T for attention), and is compared with the float32 matmul peak measured in the same run
on the model's own shapes.

The last line is a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from _bench_steps import (STEPS, TinyTransformerStep, TorchStep, make_step, time_steps,  # noqa: E402
                          torch_profile)


def parse_args(argv=None):
    from tinytransformer.training import PRESETS, SettingsError, TrainConfig, check_settings
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="shapes of this recipe")
    def preset_values(name):  # e.g. "cpu: 4, gpu: 6", for the help
        return ", ".join(f"{preset}: {getattr(TrainConfig(**settings), name)}"
                         for preset, settings in sorted(PRESETS.items()))

    for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                            help=f"override the preset's {name} (default: the preset's, {preset_values(name)})")
    parser.add_argument("--dropout", type=float, default=None,
                        help=f"override the preset's dropout (default: the preset's, {preset_values('dropout')})")
    parser.add_argument("--device", choices=["cpu", "gpu", "standin"], default=None,
                        help=f"default: the preset's ({preset_values('device')}; standin: the CPU stand-in "
                             "for CuPy, to test the script)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both (default: what each library picks, all cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="tinytransformer's workers, which share each batch's rows (default: --threads "
                             "if given, else one per core up to 4, as train_shakespeare.py)")
    parser.add_argument("--repeats", type=int, default=7, help="alternating timing rounds")
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--profile", action="store_true",
                        help="print tinytransformer's time per layer type (one worker) and PyTorch's per "
                             "operator; with --threads 1 both run on one thread")
    parser.add_argument("--no-torch", action="store_true", help="time tinytransformer only")
    parser.add_argument("--scaling", action="store_true",
                        help="step time against sequence length (64..1024) and against n_embd")
    parser.add_argument("--plot", type=Path, default=None, help="with --scaling: save the plot here")
    parser.add_argument("--memory-of", choices=["tt", "torch"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--time-of", choices=sorted(STEPS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-of", choices=["torch"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1 or args.threads is not None and args.threads < 1:
        parser.error("--workers and --threads must be integers >= 1")
    settings = dict(PRESETS[args.preset])
    for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "dropout", "device"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    # --threads is also the workers' count on the CPU; None: train_shakespeare.py's default
    settings["workers"] = args.workers or (args.threads if settings.get("device", "cpu") == "cpu" else None)
    cfg = TrainConfig(**settings)
    try:
        check_settings(cfg)   # e.g. --workers 2 with --dropout 0.1, or --n-head that does not divide --n-embd
    except SettingsError as err:
        parser.error(str(err))
    return args, cfg


def time_child(args, cfg):
    """In a fresh process (see --time-of): warm up, then print the mean ms per step of --steps steps.
    With --profile-of torch: print PyTorch's profile of its step instead."""
    which = args.time_of or args.profile_of
    if args.threads and which != "tt":
        import torch
        torch.set_num_threads(args.threads)
    step = make_step(which, cfg, args.dtype)
    if args.profile_of:
        return torch_profile(step)
    step()  # warm-up: first-call allocations, thread pools starting
    step()
    print(json.dumps({"ms": time_steps(step, args.steps) * 1000}))


def time_in_fresh_process(which, argv, extra=()):
    """ms per step of one library, timed by a child process that runs nothing else."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, *extra, "--time-of", which]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms"]


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --- FLOPs and the machine's matmul peak ----------------------------------------------------------------

def model_flops_per_step(cfg, n_params_without_positions):
    """nanoGPT's estimate: 6N per token (forward 2N + backward 4N) plus 12·L·d·T for attention."""
    per_token = 6 * n_params_without_positions + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    return per_token * cfg.block_size * cfg.batch_size


def matmul_peak_gflops(cfg, dtype, repeats=20):
    """Best float32 GEMM rate over the model's own matrix shapes (N = batch·block rows)."""
    from tinytransformer import backend
    n, d = cfg.batch_size * cfg.block_size, cfg.n_embd
    best = 0.0
    for k, m in ((d, d), (d, 4 * d), (4 * d, d), (d, 3 * d)):
        a = backend.randn((n, k), dtype=dtype)
        b = backend.randn((k, m), dtype=dtype)
        a @ b
        backend.synchronize()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            backend.synchronize()
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n * k * m / statistics.median(times) / 1e9)
    return best


# --- profile: time per layer type --------------------------------------------------------------------------

def profile(step, n_steps=10):
    """Self time of forward and backward per layer class (time inside children is not counted twice),
    in a step on one worker (the timers cannot tell workers' threads apart).

    On a GPU each timed call waits for its kernels (synchronize), which removes the overlap of Python
    and GPU work: the total is longer than a step, the shares are what each layer costs the GPU.
    Run it with TINYTRANSFORMER_FUSE=0 to see the layers without fused kernels."""
    totals = defaultdict(float)
    stack = []

    def wrap(module, kind):
        original = getattr(module, kind)
        label = f"{type(module).__name__}.{kind}"

        def timed(*args, **kwargs):
            stack.append(0.0)  # time spent in children, filled in by them
            step.sync()        # on a GPU: time the layer's kernels, not only their launch
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            step.sync()
            elapsed = time.perf_counter() - t0
            children = stack.pop()
            totals[label] += elapsed - children
            if stack:
                stack[-1] += elapsed
            return out
        setattr(module, kind, timed)

    for _, module in step.model.named_modules():
        wrap(module, "forward")
        wrap(module, "backward")
    from tinytransformer.optim import clip_grad_norm
    optimizer_time = clip_time = 0.0
    step()
    totals.clear()
    t_start = time.perf_counter()
    for _ in range(n_steps):
        step.model.zero_grad()
        _, loss = step.model.forward(step.x, step.y)
        step.model.backward()
        step.sync()
        t0 = time.perf_counter()
        clip_grad_norm(step.model.parameters(), step.cfg.grad_clip)
        t1 = time.perf_counter()
        step.optimizer.step(step.cfg.lr)
        float(loss)
        step.sync()
        t2 = time.perf_counter()
        clip_time += t1 - t0
        optimizer_time += t2 - t1
    wall = (time.perf_counter() - t_start) / n_steps * 1000
    rows = [(label, total / n_steps * 1000) for label, total in totals.items()]
    rows += [("clip_grad_norm", clip_time / n_steps * 1000), ("AdamW.step", optimizer_time / n_steps * 1000)]
    rows.sort(key=lambda row: -row[1])
    print(f"\nProfile of one training step ({wall:.1f} ms with the timers; self time per layer type):")
    print(f"  {'layer.method':<36} {'ms/step':>8} {'share':>7}")
    for label, ms in rows:
        print(f"  {label:<36} {ms:8.2f} {ms / wall:7.1%}")
    accounted = sum(ms for _, ms in rows)
    print(f"  {'(unaccounted: zero_grad, Python)':<36} {wall - accounted:8.2f} {(wall - accounted) / wall:7.1%}")


# --- peak memory --------------------------------------------------------------------------------------------

def peak_memory_mb(which, argv):
    """Peak resident memory a training step adds, measured in a fresh process (see --memory-of)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--memory-of", which]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_step_mb"]


def memory_child(args, cfg):
    """Build the model, then sample this process's resident memory every millisecond over 3 steps, and its
    worker processes' with it.

    The figure is the peak minus the resident memory before the first step: what the step's activations,
    gradients and optimizer state add. (A high-water mark like ru_maxrss would also count the import.)
    The workers' memories are added up, which counts the pages they share (the parameters) in each: an
    upper bound.
    """
    import threading
    page = os.sysconf("SC_PAGE_SIZE")
    step = (TinyTransformerStep(cfg, args.dtype) if args.memory_of == "tt" else TorchStep(cfg, args.dtype))
    pids = ["self"] + [str(worker.pid) for worker in getattr(getattr(step, "parallel", None), "processes", [])]

    def rss():
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        return total

    baseline = rss()
    peak, running = [baseline], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(3):
        step()
    running[0] = False
    sampler.join()
    print(json.dumps({"peak_step_mb": (max(peak[0], rss()) - baseline) / 2**20}))


# --- scaling ----------------------------------------------------------------------------------------------

def scaling(args, cfg):
    have_torch = _torch_available() and not args.no_torch
    results = {"seq": [], "width": []}
    seq_lengths = [64, 128, 256, 512, 1024]
    widths = [64, 128, 256, 512]
    print("step time (ms) against sequence length, n_embd %d, batch %d:" % (cfg.n_embd, cfg.batch_size))
    for T in seq_lengths:
        results["seq"].append((T, *_pair_times(args, have_torch, ["--block-size", str(T)])))
        print("  T=%5d  tinytransformer %8.1f  torch %8.1f" % results["seq"][-1])
    print("step time (ms) against n_embd, block %d:" % cfg.block_size)
    for d in widths:
        results["width"].append((d, *_pair_times(args, have_torch, ["--n-embd", str(d)])))
        print("  d=%5d  tinytransformer %8.1f  torch %8.1f" % results["width"][-1])
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key, label in ((axes[0], "seq", "sequence length T"), (axes[1], "width", "n_embd")):
            xs = [r[0] for r in results[key]]
            ax.loglog(xs, [r[1] for r in results[key]], "o-", label="tinytransformer (NumPy)")
            if have_torch:
                ax.loglog(xs, [r[2] for r in results[key]], "s-", label="PyTorch eager")
            ax.set_xlabel(label)
            ax.set_ylabel("ms per training step")
            ax.grid(alpha=0.3, which="both")
            ax.legend()
        axes[0].set_title("attention's T² term bends the curve up")
        axes[1].set_title("cost grows ~d² (the matrices)")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"plot: {args.plot}")
    return results


def _pair_times(args, have_torch, overrides, rounds=3):
    """Median ms per step of tinytransformer and PyTorch (fused SDPA), each round in fresh processes."""
    argv = args.argv + overrides  # the child ignores --scaling and --plot: --time-of comes first
    a, b = [], []
    for _ in range(rounds):
        a.append(time_in_fresh_process("tt", argv, ["--steps", "2"]))
        if have_torch:
            b.append(time_in_fresh_process("torch", argv, ["--steps", "2"]))
    return statistics.median(a), statistics.median(b) if b else float("nan")


def _torch_available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


# --- what the figures ran on ---------------------------------------------------------------------------------

def report_machine(cfg, have_torch, command):
    """Print the CPU, NumPy's BLAS and kernel (warning when the environment forces one), and on a GPU
    the device, CUDA, CuPy and whether TF32 is on for each library. Returns the same facts for the JSON
    summary."""
    from tinytransformer.machine import blas_report, describe_blas, gpu_report
    report = blas_report()
    lines, warnings = describe_blas(report, command.strip())
    for line in lines + warnings:
        print(line)
    runtime = report["runtime"] or {}
    facts = {"cpu": report["cpu"], "blas": report["blas"].get("name"),
             "blas_version": report["blas"].get("version"), "blas_kernel": runtime.get("corename"),
             "blas_kernel_forced": report["forced"]}
    if cfg.device == "gpu":
        gpu = gpu_report()
        facts["gpu"] = gpu
        torch_tf32 = None
        if have_torch:
            import torch
            torch_tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
            facts["torch_cuda"] = torch.version.cuda
        facts["torch_tf32"] = torch_tf32
        print(f"GPU: {gpu.get('device')}, {gpu.get('memory_gib')} GiB; CUDA driver {gpu.get('driver_cuda')}, "
              f"runtime {gpu.get('runtime_cuda')}; CuPy {gpu.get('cupy')} ({', '.join(gpu.get('wheels', []))}); "
              f"TF32: CuPy {'on' if gpu.get('tf32') else 'off'} (CUPY_TF32), PyTorch "
              f"{'n/a' if torch_tf32 is None else ('on' if torch_tf32 else 'off')} "
              "(torch.backends.cuda.matmul.allow_tf32)")
    return facts


# --- main --------------------------------------------------------------------------------------------------

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--threads" in argv:  # BLAS reads its thread count when NumPy is first imported: set it before
        threads = argv[argv.index("--threads") + 1]
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = threads
    args, cfg = parse_args(argv)
    args.argv = argv
    from tinytransformer.machine import reuse_freed_memory
    reuse_freed_memory()  # as train_shakespeare.py does; every process this script starts calls it
    if args.memory_of:
        return memory_child(args, cfg)
    if args.time_of or args.profile_of:
        return time_child(args, cfg)
    if args.scaling:
        scaling(args, cfg)
        return 0

    tt = TinyTransformerStep(cfg, args.dtype)  # in this process: the parameter count and --profile
    have_torch = _torch_available() and not args.no_torch
    if not have_torch and not args.no_torch:
        print("PyTorch is not installed: timing tinytransformer only (pip install -e .[oracle]).")
    names = ["tt", "torch", "torch_unfused"] if have_torch else ["tt"]
    import numpy
    versions = f"numpy {numpy.__version__}"
    if have_torch:
        import torch
        versions += f", torch {torch.__version__}"
    print(f"preset {args.preset}: n_layer {cfg.n_layer}, n_head {cfg.n_head}, n_embd {cfg.n_embd}, block "
          f"{cfg.block_size}, batch {cfg.batch_size}, dropout {cfg.dropout}, {args.dtype}, device {cfg.device}; "
          f"{versions}; threads: {args.threads or 'each library picks (all cores)'}")
    machine = report_machine(cfg, have_torch, "python scripts/bench.py " + " ".join(argv))
    from tinytransformer.training import ProcessDataParallel
    from tinytransformer.training.step import shares
    split = [part.stop - part.start for part in shares(cfg.batch_size, tt.parallel.workers)]
    kind = "processes" if isinstance(tt.parallel, ProcessDataParallel) else "threads"
    print(f"tinytransformer: {len(split)} workers ({kind}), rows per worker {' + '.join(map(str, split))}, BLAS on "
          "one thread in each" if len(split) > 1 else f"tinytransformer: one worker, all {split[0]} rows")

    times = {name: [] for name in names}
    for _ in range(args.repeats):  # A, B, C, A, B, C, ...: each a fresh process
        for name in names:
            times[name].append(time_in_fresh_process(name, argv))
    tt_ms = summarize(times["tt"])
    n_params = tt.model.num_parameters() - tt.model.wpe.weight.data.size
    flops = model_flops_per_step(cfg, n_params)
    peak = matmul_peak_gflops(cfg, args.dtype)
    tokens = cfg.batch_size * cfg.block_size

    def row(name, t):
        print(f"  {name:<28} {t['median']:8.2f} ms  (min {t['min']:.2f}, max {t['max']:.2f})  "
              f"{tokens / t['median'] * 1000:10,.0f} tok/s  {flops / t['median'] / 1e6:6.1f} GFLOP/s")

    print(f"\none training step (forward, backward, clip, AdamW), median of {args.repeats} rounds of "
          f"{args.steps} steps, each round in a fresh process:")
    row({"cpu": STEPS["tt"], "gpu": "tinytransformer (CuPy)"}.get(cfg.device, "tinytransformer (stand-in)"), tt_ms)
    summary = {"preset": args.preset, "device": cfg.device, "dtype": args.dtype, "tt_ms": tt_ms["median"],
               "tt_ms_min": tt_ms["min"], "tt_ms_max": tt_ms["max"],
               "gflops": flops / tt_ms["median"] / 1e6, "matmul_peak_gflops": peak,
               "peak_fraction": flops / tt_ms["median"] / 1e6 / peak, "model_gflop_per_step": flops / 1e9}
    if have_torch:
        t = summarize(times["torch"])
        u = summarize(times["torch_unfused"])
        row(STEPS["torch"], t)
        row(STEPS["torch_unfused"], u)
        ratios = [a / b for a, b in zip(times["tt"], times["torch"])]   # round by round: A, B side by side
        summary.update(torch_ms=t["median"], torch_unfused_ms=u["median"],
                       ratio=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                       ratio_of_medians=tt_ms["median"] / t["median"],
                       ratio_unfused=statistics.median(a / b for a, b in zip(times["tt"], times["torch_unfused"])),
                       torch_gflops=flops / t["median"] / 1e6)
        print(f"  ratio tinytransformer / PyTorch: {summary['ratio']:.3f}, the median of the rounds' ratios (min "
              f"{summary['ratio_min']:.3f}, max {summary['ratio_max']:.3f}); of the medians "
              f"{summary['ratio_of_medians']:.3f}; vs unfused {summary['ratio_unfused']:.3f}")
    print(f"  model FLOPs per step {flops / 1e9:.2f} GFLOP; float32 matmul peak on these shapes "
          f"{peak:.0f} GFLOP/s; tinytransformer reaches {summary['peak_fraction']:.0%} of it")
    if cfg.device == "cpu":
        summary["tt_peak_step_mb"] = peak_memory_mb("tt", argv)
        if have_torch:
            summary["torch_peak_step_mb"] = peak_memory_mb("torch", argv)
        print(f"  peak memory a training step adds (resident memory sampled every 1 ms over 3 steps in a "
              f"fresh process, minus the memory before them): "
              f"tinytransformer {summary['tt_peak_step_mb']:.0f} MB" +
              (f", PyTorch {summary['torch_peak_step_mb']:.0f} MB" if have_torch else ""))
    summary["machine"] = machine
    summary["workers"] = split
    if args.profile:
        profile(TinyTransformerStep(cfg, args.dtype, workers=1))
        if have_torch and cfg.device == "cpu":   # in a fresh process, as its timing rounds
            sys.stdout.flush()
            # its stderr only if it fails: torch.profiler logs its start and stop there
            child = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--profile-of", "torch"],
                                   stderr=subprocess.PIPE, text=True)
            if child.returncode != 0:
                sys.exit(f"PyTorch's profile failed:\n{child.stderr}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
