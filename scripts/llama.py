#!/usr/bin/env python3
"""Generate text with a Llama or Mistral model in NumPy (or CuPy): a Hugging Face folder in our GPT.

    python scripts/llama.py path/to/folder --prompt "Once upon a time"
    python scripts/llama.py path/to/folder --temperature 0 --max-new-tokens 40     # greedy

The folder is what ``save_pretrained`` (or ``tinytransformer.pretrained.save_llama``) writes: config.json,
model.safetensors and the tokenizer's tokenizer.json (byte-level BPE). Nothing is downloaded. Everything
is checked before the model is built (tinytransformer/pretrained/llama.py); generation uses the KV cache
and prints the speed of the prompt and of the new tokens, as scripts/gpt2.py does.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import generate_timed, prompt_ids, prompt_problem  # noqa: E402
from tinytransformer.pretrained import load_llama  # noqa: E402
from tinytransformer.tokenizers import tokenizer_from_hf_json  # noqa: E402
from tinytransformer.training import DEVICES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a save_pretrained folder: config.json, model.safetensors, "
                                                  "tokenizer.json")
    parser.add_argument("--prompt", default="Once upon a time", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=50, help="tokens to generate, >= 0 (default: 50)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="< 1 more predictable, > 1 more random, 0 always the most likely (default: 0.8)")
    parser.add_argument("--top-k", type=int, default=200,
                        help="sample only among the k most likely tokens, k >= 1 (default: 200)")
    parser.add_argument("--seed", type=int, default=1337, help="random seed, >= 0 (default: 1337)")
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="cpu (NumPy), gpu (CuPy) or standin (CPU stand-in for CuPy) (default: cpu)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default: float32)")
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    args = parser.parse_args(argv)
    problems = []
    if not (args.temperature == 0 or (math.isfinite(args.temperature) and args.temperature > 0)):
        problems.append(f"--temperature {args.temperature}: must be 0 (the most likely token) or a finite number > 0")
    if args.top_k < 1:
        problems.append(f"--top-k {args.top_k}: must be at least 1")
    if args.max_new_tokens < 0:
        problems.append(f"--max-new-tokens {args.max_new_tokens}: must be at least 0")
    if args.seed < 0:
        problems.append(f"--seed {args.seed}: must be at least 0")
    if (problem := prompt_problem(args.prompt)) is not None:
        problems.append(problem)
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)
    try:
        backend.use(DEVICES[args.device], dtype=args.dtype)
        tokenizer_file = args.folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise FileNotFoundError(f"{args.folder} has no tokenizer.json: give the folder the model was "
                                    "published in, with its tokenizer (save_pretrained writes it beside the weights "
                                    "when given the tokenizer too).")
        tokenizer = tokenizer_from_hf_json(tokenizer_file)
        model = load_llama(args.folder, dtype=args.dtype, log=log)
        log(f"{args.folder}: {model.num_parameters():,} parameters, {args.device}, {args.dtype}")
        idx = prompt_ids(tokenizer, args.prompt, model)                                   # [1, T]
    except (OSError, ValueError, TypeError, backend.BackendError) as err:   # OSError: FileNotFoundError too
        print(f"error: {err}", file=sys.stderr)
        return 2
    out, speed = generate_timed(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                seed=args.seed, use_cache=not args.no_cache)
    if hasattr(sys.stdout, "reconfigure"):   # a terminal that cannot show a character shows "?", not a crash
        sys.stdout.reconfigure(errors="replace")
    print(args.prompt + tokenizer.decode(backend.to_numpy(out[0, idx.shape[1]:])))
    for line in speed:
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
