#!/usr/bin/env python3
"""Generate text from a trained checkpoint (from scripts/train_shakespeare.py, CPU- or GPU-trained), with
the tokenizer the run saved in it (characters, a BPE, or GPT-2's).

    python scripts/sample.py --out-dir out/shakespeare --prompt "ROMEO:" --num-samples 2
    python scripts/sample.py --which last          # the latest state instead of the best model

Same seed, same text.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from _generation_common import add_sampling_flags, sampling_problems  # noqa: E402
from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import generate  # noqa: E402
from tinytransformer.models.gpt import GPT  # noqa: E402
from tinytransformer.tokenizers import tokenizer_from_dict  # noqa: E402
from tinytransformer.training import (CHECKPOINT_NAME, DEVICES, LATEST_NAME, CheckpointError,  # noqa: E402
                                      gpt_config_of, load_checkpoint, restore)

CHECKPOINTS = {"best": CHECKPOINT_NAME, "last": LATEST_NAME}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="out/shakespeare",
                        help="folder of the training run (default: out/shakespeare)")
    parser.add_argument("--which", choices=sorted(CHECKPOINTS), default="best",
                        help="best: ckpt.npz, the model with the lowest val loss; last: last.npz, the latest "
                             "state (default: best)")
    add_sampling_flags(parser, prompt="\n", max_new_tokens=500, top_k=None, dtype=False)  # the checkpoint's dtype
    parser.add_argument("--num-samples", type=int, default=1, help="how many samples, >= 1 (default: 1)")
    args = parser.parse_args(argv)
    problems = sampling_problems(args)
    if args.num_samples < 1:
        problems.append(f"--num-samples {args.num_samples}: must be at least 1")
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    path = Path(args.out_dir) / CHECKPOINTS[args.which]
    try:
        backend.use(DEVICES[args.device])
        checkpoint = load_checkpoint(path)
        if not isinstance(checkpoint.tokenizer, dict) or checkpoint.tokenizer.get("kind") not in ("char", "bpe"):
            raise CheckpointError(f"{path} does not hold a GPT with its tokenizer (as "
                                  "scripts/train_shakespeare.py saves): sample.py cannot sample from it.")
        config = gpt_config_of(checkpoint, path)   # checked against the file's arrays before building
        tokenizer = tokenizer_from_dict(checkpoint.tokenizer, source=str(path))  # the run's own
        prompt_ids = tokenizer.encode(args.prompt)
        if len(prompt_ids) == 0:
            raise ValueError("The prompt is empty: give at least one character, e.g. --prompt $'\\n'.")
        model = GPT(config)
        restore(checkpoint, model)
    except (CheckpointError, ValueError, TypeError, backend.BackendError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    idx = backend.asarray(prompt_ids[None, :].repeat(args.num_samples, axis=0))      # [num_samples, T]
    try:
        out = generate(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                       seed=args.seed, use_cache=not args.no_cache, vocab_size=tokenizer.vocab_size)
        if hasattr(sys.stdout, "reconfigure"):   # a terminal that cannot show a character shows "?", not a crash
            sys.stdout.reconfigure(errors="replace")
        for row in out:
            print(tokenizer.decode(row))
            print("-" * 40)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
