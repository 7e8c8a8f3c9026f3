"""What the two demo training scripts share: the command-line flags, choosing the device, printing.

Only plumbing lives here; the data, the model and the training loop are in each script, where a reader
looks for them.
"""
from __future__ import annotations

import argparse
import json
import sys

from tinytransformer import backend

DEVICES = {
    "cpu": "numpy",        # NumPy on the CPU
    "gpu": "cupy",         # CuPy on an NVIDIA GPU
    "standin": "standin",  # NumPy dressed up as CuPy: runs the GPU code path on a machine without a GPU
}


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def make_parser(description: str, **defaults) -> argparse.ArgumentParser:
    """The flags both scripts have; ``defaults`` sets each script's own default values."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--iters", type=positive_int, help="number of training iterations (one batch each)")
    p.add_argument("--batch-size", type=positive_int, help="examples per training batch")
    p.add_argument("--n-layer", type=positive_int,
                   help="number of Transformer blocks (Seq2Seq: in the encoder and in the decoder)")
    p.add_argument("--n-embd", type=positive_int, help="width of the residual stream (d_model)")
    p.add_argument("--n-head", type=positive_int,
                   help="attention heads per attention layer (must divide n-embd)")
    p.add_argument("--dropout", type=float, help="dropout probability (0 turns dropout off)")
    p.add_argument("--lr", type=float, help="peak learning rate of the cosine schedule")
    p.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine decay")
    p.add_argument("--warmup-iters", type=int, help="iterations of linear learning-rate warmup")
    p.add_argument("--beta2", type=float,
                   help="AdamW's beta2, the decay of its running mean of squared gradients")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (weight matrices only)")
    p.add_argument("--grad-clip", type=float, help="clip the global gradient norm to this value")
    p.add_argument("--n-train", type=positive_int, help="number of distinct training examples")
    p.add_argument("--n-test", type=positive_int,
                   help="number of held-out test examples (none seen in training)")
    p.add_argument("--log-interval", type=positive_int,
                   help="print the training loss every this many iterations")
    p.add_argument("--eval-interval", type=positive_int,
                   help="print the held-out loss every this many iterations")
    p.add_argument("--seed", type=int, help="seeds the data, the initial weights and the batch order")
    p.add_argument("--device", choices=sorted(DEVICES),
                   help="cpu (NumPy), gpu (CuPy), or standin (the GPU code path on the CPU, for tests)")
    p.add_argument("--out-dir", help="directory for the files the run writes")
    p.set_defaults(**defaults)
    return p


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, and refuse settings the model cannot be built with."""
    args = parser.parse_args()
    if args.n_embd % args.n_head:
        parser.error(f"--n-head {args.n_head} must divide --n-embd {args.n_embd}: each head gets "
                     "n_embd / n_head features")
    if not 0 <= args.min_lr <= args.lr:
        parser.error(f"--min-lr {args.min_lr} must be between 0 and --lr {args.lr}")
    return args


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
    """The last line of every run: one JSON object, for scripts and tests to read."""
    log(json.dumps(summary))
