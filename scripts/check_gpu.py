#!/usr/bin/env python3
"""Check a GPU in one command: the real-CuPy tests, every model's training step against NumPy, the gpu
preset's speed against PyTorch, and a time-boxed training run (tinytransformer/gpucheck.py does the work).

    python scripts/check_gpu.py                  # minutes: the time-boxed training alone takes 150 s
    python scripts/check_gpu.py --quick          # tiny models and runs: seconds
    python scripts/check_gpu.py --full           # also the profile, fused and not, and the whole gpu-preset run
    python scripts/check_gpu.py --full --only fusion_profile,full_training   # just those two
    python scripts/check_gpu.py --backend standin --quick   # the check itself, on the CPU (the tests run this)

It prints one verdict line (check_gpu: PASS ... or FAIL ...) and, last, a JSON summary; the exit status is
0 on PASS and 1 on FAIL.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer.backend import reuse_freed_memory  # noqa: E402
from tinytransformer.gpucheck import CheckOptions, run_checks, verdict_line  # noqa: E402


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
