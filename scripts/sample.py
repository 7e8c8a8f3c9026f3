#!/usr/bin/env python3
"""Generate text from a trained checkpoint (from scripts/train_shakespeare.py, CPU- or GPU-trained), with
the tokenizer the run saved in it (characters, a BPE, or GPT-2's).

    python scripts/sample.py --out-dir out/shakespeare --prompt "ROMEO:" --num-samples 2
    python scripts/sample.py --which last          # the latest state instead of the best model

Same seed, same text.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import generate  # noqa: E402
from tinytransformer.models.gpt import GPT  # noqa: E402
from tinytransformer.tokenizers import tokenizer_from_dict  # noqa: E402
from tinytransformer.training import (CHECKPOINT_NAME, DEVICES, LATEST_NAME, CheckpointError,  # noqa: E402
                                      gpt_config_of, load_checkpoint, restore)

CHECKPOINTS = {"best": CHECKPOINT_NAME, "last": LATEST_NAME}
MIN_TEMPERATURE = 1e-3  # below it sampling is greedy in all but name: 0 asks for the most likely directly


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="out/shakespeare",
                        help="folder of the training run (default: out/shakespeare)")
    parser.add_argument("--which", choices=sorted(CHECKPOINTS), default="best",
                        help="best: ckpt.npz, the model with the lowest val loss; last: last.npz, the latest "
                             "state (default: best)")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max-new-tokens", type=int, default=500,
                        help="tokens to generate (characters with a char tokenizer), >= 0 (default: 500)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help=f"< 1 more predictable, > 1 more random, 0 always the most likely; 0 or a "
                             f"finite number >= {MIN_TEMPERATURE:g} (default: 0.8)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="sample only among the k most likely, k >= 1 (default: all)")
    parser.add_argument("--num-samples", type=int, default=1, help="how many samples, >= 1 (default: 1)")
    parser.add_argument("--seed", type=int, default=1337, help="random seed, >= 0 (default: 1337)")
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="cpu (NumPy), gpu (CuPy) or standin (CPU stand-in for CuPy) (default: cpu)")
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    args = parser.parse_args(argv)
    problems = []
    if not (args.temperature == 0 or (math.isfinite(args.temperature) and args.temperature >= MIN_TEMPERATURE)):
        problems.append(f"--temperature {args.temperature}: must be 0 (the most likely character) or a finite "
                        f"number >= {MIN_TEMPERATURE:g}")
    if args.top_k is not None and args.top_k < 1:
        problems.append(f"--top-k {args.top_k}: must be at least 1 (leave it out to sample among all)")
    if args.num_samples < 1:
        problems.append(f"--num-samples {args.num_samples}: must be at least 1")
    if args.max_new_tokens < 0:
        problems.append(f"--max-new-tokens {args.max_new_tokens}: must be at least 0")
    if args.seed < 0:
        problems.append(f"--seed {args.seed}: must be at least 0")
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
