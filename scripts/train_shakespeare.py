#!/usr/bin/env python3
"""Train a character-level GPT on Tiny Shakespeare (nanoGPT's recipe), on CPU (NumPy) or GPU (CuPy).

    python scripts/train_shakespeare.py                    # --preset cpu: 4 layers, 2000 iterations
    python scripts/train_shakespeare.py --preset gpu       # the 6-layer "baby GPT", on CuPy
    python scripts/train_shakespeare.py --max-iters 3000 --resume   # continue a run

Writes <out-dir>/ckpt.npz (whenever val loss improves, and on Ctrl-C), metrics.jsonl and loss.png.
The last line printed is a JSON summary.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer.backend import BackendError, reuse_freed_memory  # noqa: E402
from tinytransformer.checkpoint import CheckpointError  # noqa: E402
from tinytransformer.trainer import PRESETS, TrainConfig, TrainingDiverged, train  # noqa: E402

HELP = {
    "n_layer": "transformer blocks", "n_head": "attention heads", "n_embd": "model width (d_model)",
    "block_size": "context length in characters", "dropout": "dropout probability",
    "bias": "biases in the Linear layers", "batch_size": "sequences per batch",
    "max_iters": "training iterations", "lr": "peak learning rate", "min_lr": "final learning rate",
    "warmup_iters": "linear warmup iterations", "lr_decay_iters": "iteration where the cosine ends",
    "beta1": "AdamW beta1", "beta2": "AdamW beta2", "weight_decay": "AdamW weight decay (matrices)",
    "grad_clip": "clip the global gradient norm to this", "eval_interval": "evaluate every N iterations",
    "eval_iters": "batches per evaluation", "log_interval": "print every N iterations",
    "sample_chars": "characters sampled at the end", "device": "cpu (NumPy), gpu (CuPy), standin "
    "(CPU stand-in that checks the GPU code path)", "dtype": "float32 or float64",
    "seed": "random seed (weights, batches, dropout)", "out_dir": "folder for checkpoint and logs",
    "data": "a text file to train on (default: Tiny Shakespeare, found or downloaded)",
    "resume": "continue from <out-dir>/ckpt.npz",
}


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="starting settings (default cpu); any flag below overrides one of them")
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=HELP[field.name])
        else:
            base = str if field.name == "data" else kind
            choices = {"device": ["cpu", "gpu", "standin"], "dtype": ["float32", "float64"]}.get(field.name)
            parser.add_argument(flag, type=base, default=None, choices=choices,
                                help=f"{HELP[field.name]} (preset cpu: {field.default})")
    args = vars(parser.parse_args(argv))
    settings = dict(PRESETS[args.pop("preset")])
    settings.update({k: v for k, v in args.items() if v is not None})
    return TrainConfig(**settings)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    reuse_freed_memory()  # the same activation arrays every step: reuse their memory, no fresh pages
    try:
        summary = train(cfg, log=lambda msg: print(msg, flush=True))
    except TrainingDiverged as err:
        print(f"error: training diverged at {err}", file=sys.stderr)
        print(json.dumps({"error": "diverged", "message": str(err)}))
        return 1
    except (BackendError, CheckpointError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sample = summary.pop("sample")
    print("-" * 40 + "\n" + sample.strip("\n") + "\n" + "-" * 40)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
