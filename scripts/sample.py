#!/usr/bin/env python3
"""Generate text from a trained checkpoint (from scripts/train_shakespeare.py, CPU- or GPU-trained).

    python scripts/sample.py --out-dir out/shakespeare --prompt "ROMEO:" --num-samples 2

Same seed, same text.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer import backend  # noqa: E402
from tinytransformer.checkpoint import CheckpointError, load_checkpoint, restore  # noqa: E402
from tinytransformer.data import CharTokenizer  # noqa: E402
from tinytransformer.generate import generate  # noqa: E402
from tinytransformer.models.gpt import GPT, GPTConfig  # noqa: E402
from tinytransformer.trainer import CHECKPOINT_NAME, DEVICES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="out/shakespeare", help="folder holding ckpt.npz")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max-new-tokens", type=int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="< 1 more predictable, > 1 more random, 0 always the most likely")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely")
    parser.add_argument("--num-samples", type=int, default=1, help="how many samples")
    parser.add_argument("--seed", type=int, default=1337, help="random seed")
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="cpu (NumPy), gpu (CuPy) or standin (CPU stand-in for CuPy)")
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        backend.use(DEVICES[args.device])
        checkpoint = load_checkpoint(Path(args.out_dir) / CHECKPOINT_NAME)
        tokenizer = CharTokenizer.from_dict(checkpoint.tokenizer)
        prompt_ids = tokenizer.encode(args.prompt)
        if len(prompt_ids) == 0:
            raise ValueError("The prompt is empty: give at least one character, e.g. --prompt $'\\n'.")
    except (CheckpointError, ValueError, backend.BackendError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = GPT(GPTConfig(**checkpoint.config["model"]))
    restore(checkpoint, model)
    idx = backend.asarray(prompt_ids[None, :].repeat(args.num_samples, axis=0))      # [num_samples, T]
    out = generate(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   seed=args.seed, use_cache=not args.no_cache)
    for row in out:
        print(tokenizer.decode(row))
        print("-" * 40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
