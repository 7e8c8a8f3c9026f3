#!/usr/bin/env python3
"""Train a GPT on Tiny Shakespeare (nanoGPT's recipe), on CPU (NumPy) or GPU (CuPy): characters by default,
sub-words with --tokenizer bpe, or fine-tune GPT-2 from its weights with --init gpt2.

    python scripts/train_shakespeare.py                    # --preset cpu: 4 layers, 2000 iterations
    python scripts/train_shakespeare.py --preset gpu       # the 6-layer "baby GPT", on CuPy
    python scripts/train_shakespeare.py --max-iters 3000 --resume   # continue a run
    python scripts/train_shakespeare.py --tokenizer bpe --vocab-size 1024   # sub-word tokens
    python scripts/train_shakespeare.py --init gpt2 --block-size 256 --batch-size 4 --grad-accum 8 \
        --lr 3e-5 --out-dir out/gpt2-shakespeare   # fine-tune GPT-2 small

Writes to <out-dir>: ckpt.npz (the best model: whenever val loss improves), last.npz (the latest state:
at every evaluation and on Ctrl-C), metrics.jsonl and loss.png. The last line printed is a JSON summary.

--resume reads the run's settings back from <out-dir>/last.npz: the model's shape, the corpus (checked
by its SHA-256) and the training settings. Flags given with --resume change only what can safely change
(e.g. --max-iters, --lr, --batch-size, --grad-accum, the intervals); the model's shape, --data, --seed,
--tokenizer, --vocab-size and --init are refused. A resumed run reads its tokenizer from the checkpoint
and never trains or downloads one again.
A run refuses an --out-dir that holds another run unless given --resume or --overwrite, and a folder
in use by a running run. Ctrl-C saves last.npz and exits with status 130.
"""
from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(*_):
    sys.stderr.write("\ninterrupted during start-up; nothing was written\n")
    raise SystemExit(130)


if __name__ == "__main__":  # run as a script: Ctrl-C during the imports below (they take a while) says so
    signal.signal(signal.SIGINT, _interrupted_while_starting)  # until main() takes over

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import typing  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer.backend import BackendError  # noqa: E402
from tinytransformer.files import to_json  # noqa: E402
from tinytransformer.machine import reuse_freed_memory  # noqa: E402
from tinytransformer.models import GPTConfig  # noqa: E402
from tinytransformer.training import (BPE_VOCAB_SIZE, DEVICES, PRESETS, TOKENIZERS, CheckpointError, FolderInUse,  # noqa: E402
                                      Interrupted, TrainConfig, TrainingDiverged, WorkerFailed, WriteFailed,
                                      new_run_config, resume_config, train)
from tinytransformer.training.settings import flag as settings_flag  # noqa: E402

HELP = {
    "n_layer": "transformer blocks", "n_head": "attention heads", "n_embd": "model width (d_model)",
    "block_size": "context length in tokens (with --init: at most the model's, which is the default)",
    "dropout": "dropout probability",
    "bias": "biases in the Linear layers", "batch_size": "sequences per micro-batch (per forward)",
    "grad_accum": "micro-batches per step (gradient accumulation): a step learns from grad_accum x "
                  "batch_size sequences with the memory of batch_size",
    "positional": "positions: learned (GPT-2), sinusoidal (2017), or rope (rotary, LLaMA)",
    "normalization": "layernorm (GPT-2) or rmsnorm (LLaMA)",
    "activation": "the feed-forward: gelu (GPT-2), relu, or swiglu (LLaMA's gated one)",
    "tie_weights": "the output layer reuses the token embedding (GPT-2; LLaMA: --no-tie-weights)",
    "n_kv_head": "key/value heads, dividing --n-head (grouped-query attention; 1: multi-query); "
                 "default: one per query head",
    "window": "local attention: each position sees only the last WINDOW positions; default: all",
    "ffn_hidden": "the feed-forward's width; default 4·n_embd, or LLaMA's 2/3·4·n_embd rounded up to 256 "
                  "with swiglu",
    "rope_theta": "RoPE's base (with --positional rope)",
    "max_iters": "training iterations", "lr": "peak learning rate", "min_lr": "final learning rate",
    "warmup_iters": "linear warmup iterations", "lr_decay_iters": "iteration where the cosine ends",
    "beta1": "AdamW beta1", "beta2": "AdamW beta2", "weight_decay": "AdamW weight decay (matrices)",
    "grad_clip": "clip the global gradient norm to this; 0: no clipping",
    "eval_interval": "evaluate every N iterations",
    "eval_iters": "batches per evaluation", "log_interval": "print every N iterations",
    "sample_chars": "tokens sampled at the end (characters with --tokenizer char)",
    "tokenizer": "char: the text's characters; bpe: a byte-level BPE trained on the training split (the "
                 "first 90%%, so validation text stays unseen); gpt2: GPT-2's vocabulary (vocab.json, "
                 "merges.txt; the default with --init gpt2..)",
    "bpe_vocab_size": f"--tokenizer bpe: the vocabulary size, >= 257 (default: {BPE_VOCAB_SIZE})",
    "init": "scratch: random weights of the shape the flags give; gpt2, gpt2-medium, gpt2-large, gpt2-xl: "
            "GPT-2's weights (downloaded on first use), or the path of a GPT-2 model.safetensors or "
            "save_pretrained folder: the model's shape and tokenizer come from it, --block-size may "
            "crop its context; gpt2-random: GPT-2 small's shape and size with random weights and "
            "(by default) a BPE trained on the corpus, to try fine-tuning without the download",
    "device": "cpu (NumPy), gpu (CuPy), standin (CPU stand-in that checks the GPU code path)",
    "dtype": "float32 or float64",
    "seed": "random seed (weights, batches, dropout)", "out_dir": "folder for checkpoints and logs",
    "data": "a text file to train on (default: Tiny Shakespeare, found or downloaded)",
    "resume": "continue the run in <out-dir> from last.npz, with the settings recorded there",
    "overwrite": "start afresh in an <out-dir> that holds another run, deleting its ckpt.npz, last.npz, "
                 "metrics.jsonl and loss.png",
    "max_seconds": "stop after this many seconds (evaluating and saving first); 0: no limit",
    "workers": "workers that share each batch's rows (processes on Linux, else threads), on the CPU without "
               "dropout (default: one per core, up to 4, while each share holds at least 32k numbers, rows x "
               "block size x n_embd; each count sums the gradients in its own order, so results differ in "
               "the last bits)",
}


def _default_text(name: str, preset: str) -> str:
    """'(default: 4 with --preset cpu; gpu: 6)': the chosen preset's value, and the others' where different."""
    def value(p):
        return {**dataclasses.asdict(TrainConfig()), **PRESETS[p]}[name]
    others = [f"{p}: {value(p)}" for p in sorted(PRESETS) if p != preset and value(p) != value(preset)]
    if value(preset) is None:
        return ""  # the help says what leaving it out means
    return f"(default: {value(preset)} with --preset {preset}" + ("; " + ", ".join(others) if others else "") + ")"


def parse_args(argv=None) -> tuple[str | None, dict]:
    """-> (the --preset given or None, the settings given explicitly on the command line)."""
    # The chosen preset first, so that --help shows its defaults: `--preset gpu --help`.
    chosen = argparse.ArgumentParser(add_help=False)
    chosen.add_argument("--preset", choices=sorted(PRESETS), default=None)
    preset_for_help = chosen.parse_known_args(argv)[0].preset or "cpu"

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="starting settings (default cpu); any flag below overrides one of them. "
                             "Not with --resume, which reads the run's own settings back")
    hints = typing.get_type_hints(TrainConfig)
    # Every default is None, so that a flag given explicitly can be told from one left out (--resume
    # keeps the recorded value of every flag left out); the help shows the preset's value.
    for field in dataclasses.fields(TrainConfig):
        flag = settings_flag(field.name)
        kind = hints[field.name]
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{HELP[field.name]} {_default_text(field.name, preset_for_help)}")
        else:
            base = str if field.name == "data" else kind
            base = {"tokenizer": str, "bpe_vocab_size": int, "n_kv_head": int, "window": int,
                    "ffn_hidden": int, "workers": int}.get(field.name, base)                   # (hints say "X | None")
            choices = {"device": list(DEVICES), "dtype": ["float32", "float64"], "tokenizer": list(TOKENIZERS),
                       **{name: list(values) for name, values in GPTConfig.CHOICES.items()}}.get(field.name)
            metavar = None if choices else flag[2:].replace("-", "_").upper()   # N_LAYER, VOCAB_SIZE
            parser.add_argument(flag, dest=field.name, metavar=metavar, type=base, default=None, choices=choices,
                                help=f"{HELP[field.name]} {_default_text(field.name, preset_for_help)}")
    args = vars(parser.parse_args(argv))
    preset = args.pop("preset")
    return preset, {name: value for name, value in args.items() if value is not None}


def settings_of(preset: str | None, given: dict) -> TrainConfig:
    """The run's settings: read back from its checkpoint with --resume, else the preset and the flags."""
    if given.get("resume"):
        if preset is not None:
            raise ValueError(f"--preset {preset} with --resume: a resumed run keeps the settings recorded in "
                             "its checkpoint; leave --preset out (flags such as --max-iters may still change)")
        given = {name: value for name, value in given.items() if name != "resume"}
        out_dir = given.pop("out_dir", TrainConfig.out_dir)
        return resume_config(out_dir, given)
    return new_run_config(given, preset)


def log(message: str) -> None:
    try:
        print(message, flush=True)
    except BrokenPipeError:
        # The reader has gone (e.g. `| head`): send what is left to /dev/null, so that neither this
        # print nor the interpreter's last flush fails again, and let the trainer save and stop.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise


def main(argv=None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C -> KeyboardInterrupt, handled below
    try:
        preset, given = parse_args(argv)
        cfg = settings_of(preset, given)
        reuse_freed_memory()  # the same activation arrays every step: reuse their memory, no fresh pages
        summary = train(cfg, log=log)
    except TrainingDiverged as err:
        print(f"error: training diverged at {err}", file=sys.stderr)
        log(to_json({"error": "diverged", "message": str(err)}))
        return 1
    except (BackendError, CheckpointError, FolderInUse, WriteFailed, WorkerFailed, FileNotFoundError,
            ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"{err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted during start-up; no training step was run", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 141  # the output was closed before training started; nothing to save
    sample = summary.pop("sample")
    try:
        if not summary["interrupted"]:
            log("-" * 40 + "\n" + sample.strip("\n") + "\n" + "-" * 40)
        log(to_json(summary))
    except BrokenPipeError:
        pass
    if summary["stop_reason"] == "output closed":
        print(f"the output was closed: saved iteration {summary['iters']} to {summary['latest']}; continue "
              "with --resume", file=sys.stderr)
        return 141  # 128 + SIGPIPE, as a program stopped by a closed pipe
    if summary["interrupted"]:
        print(f"interrupted: saved iteration {summary['iters']} to {summary['latest']}; continue with "
              "--resume", file=sys.stderr)
        return 130  # 128 + SIGINT, the conventional status after Ctrl-C
    return 0


if __name__ == "__main__":
    sys.exit(main())
