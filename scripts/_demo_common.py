"""What the two demo training scripts share: the command-line flags, choosing the device, printing.

Only plumbing lives here; the data, the model and the training loop are in each script, where a reader
looks for them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tinytransformer import backend
from tinytransformer.files import to_json
from tinytransformer.training.settings import DEVICES, setting_problems


def make_parser(description: str, **defaults) -> argparse.ArgumentParser:
    """The flags both scripts have; ``defaults`` sets each script's own default values."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--iters", type=int, help="number of training iterations (one batch each)")
    p.add_argument("--batch-size", type=int, help="examples per training batch")
    p.add_argument("--n-layer", type=int,
                   help="number of Transformer blocks (Seq2Seq: in the encoder and in the decoder)")
    p.add_argument("--n-embd", type=int, help="width of the residual stream (d_model)")
    p.add_argument("--n-head", type=int,
                   help="attention heads per attention layer (must divide n-embd)")
    p.add_argument("--dropout", type=float, help="dropout probability (0 turns dropout off)")
    p.add_argument("--lr", type=float, help="peak learning rate of the cosine schedule")
    p.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay")
    p.add_argument("--warmup-iters", type=int, help="iterations of linear learning-rate warmup")
    p.add_argument("--beta2", type=float,
                   help="AdamW's beta2, the decay of its running mean of squared gradients")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (weight matrices only)")
    p.add_argument("--grad-clip", type=float,
                   help="clip the global gradient norm to this value; 0: no clipping")
    p.add_argument("--n-train", type=int, help="number of distinct training examples")
    p.add_argument("--n-test", type=int,
                   help="number of held-out test examples (none seen in training)")
    p.add_argument("--log-interval", type=int,
                   help="print the training loss every this many iterations")
    p.add_argument("--eval-interval", type=int,
                   help="print the held-out loss every this many iterations")
    p.add_argument("--seed", type=int, help="seeds the data, the initial weights and the batch order")
    p.add_argument("--device", choices=sorted(DEVICES),
                   help="cpu (NumPy), gpu (CuPy), or standin (the GPU code path on the CPU, for tests)")
    p.add_argument("--out-dir", help="directory for the files the run writes")
    p.set_defaults(**defaults)
    return p


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse the command line, and refuse every setting out of its range, naming the flag, the value and
    the range, before any work is done (training.settings holds each setting's rule)."""
    args = parser.parse_args(argv)
    problems = setting_problems(vars(args))  # the same rule and message for each setting as the trainer's
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        problems.append(f"--out-dir {out_dir}: is a file, not a folder")
    if problems:
        parser.error("; ".join(problems))
    return args


def prepare_out_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Make --out-dir and check that it can be written, after the settings are checked and before
    training: found at the end, a folder that cannot be written would lose the run."""
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        parser.error(f"--out-dir {out_dir}: cannot write there ({err.strerror or err}); choose another folder")


def run(main) -> None:
    """Run a script's ``main``: Ctrl-C exits with status 130 and a one-line message, no traceback; a
    closed output pipe (e.g. `| head`) exits quietly."""
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted (Ctrl-C); the demos save their checkpoint only at the end, so nothing was "
              "saved", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


def use_device(device: str) -> None:
    """Point tinytransformer's ``xp`` at the chosen device's array module; exit with a clear message if it
    cannot be used here (no CuPy, or no GPU)."""
    try:
        backend.use(DEVICES[device])
    except backend.BackendError as err:
        sys.exit(f"--device {device} is not available here: {err}")


def log(line: str) -> None:
    """Print at once (flushed), so progress shows even when the output goes to a pipe or a file."""
    print(line, flush=True)


def print_summary(summary: dict) -> None:
    """The last line of every run: one JSON object (strict: NaN and infinity become null)."""
    log(to_json(summary))
