"""What the generation scripts (sample.py, gpt2.py, llama.py) share: the sampling flags and their
checks; and for gpt2.py and llama.py, the output.

Only plumbing lives here; reading the model and its tokenizer is in each script, and generating is the
library's (tinytransformer/generate.py).
"""
from __future__ import annotations

import argparse
import math
import sys

from tinytransformer import backend
from tinytransformer.generate import generate_timed, prompt_problem
from tinytransformer.training import DEVICES

MIN_TEMPERATURE = 1e-3  # below it sampling is greedy in all but name: 0 asks for the most likely directly


def add_sampling_flags(parser: argparse.ArgumentParser, prompt: str, max_new_tokens: int = 50,
                       top_k: int | None = 200, dtype: bool = True) -> None:
    """--prompt, --max-new-tokens, --temperature, --top-k (defaults: the arguments; top_k None: all tokens),
    --seed, --device, --no-cache, and --dtype unless ``dtype`` is False (sample.py: the checkpoint's)."""
    parser.add_argument("--prompt", default=prompt, help=f"text to continue (default: {prompt!r})")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                        help=f"tokens to generate, >= 0 (default: {max_new_tokens})")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help=f"< 1 more predictable, > 1 more random, 0 always the most likely; 0 or a finite "
                             f"number >= {MIN_TEMPERATURE:g} (default: 0.8)")
    parser.add_argument("--top-k", type=int, default=top_k,
                        help=f"sample only among the k most likely tokens, k >= 1 (default: {top_k or 'all'})")
    parser.add_argument("--seed", type=int, default=1337, help="random seed, >= 0 (default: 1337)")
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu",
                        help="cpu (NumPy), gpu (CuPy) or standin (CPU stand-in for CuPy) (default: cpu)")
    if dtype:
        parser.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default: float32)")
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")


def sampling_problems(args) -> list:
    """What is wrong with the flags of add_sampling_flags, one line each naming the flag and the value."""
    problems = []
    if not (args.temperature == 0 or (math.isfinite(args.temperature) and args.temperature >= MIN_TEMPERATURE)):
        problems.append(f"--temperature {args.temperature}: must be 0 (the most likely token) or a finite "
                        f"number >= {MIN_TEMPERATURE:g}")
    if args.top_k is not None and args.top_k < 1:
        problems.append(f"--top-k {args.top_k}: must be at least 1")
    if args.max_new_tokens < 0:
        problems.append(f"--max-new-tokens {args.max_new_tokens}: must be at least 0")
    if args.seed < 0:
        problems.append(f"--seed {args.seed}: must be at least 0")
    if (problem := prompt_problem(args.prompt)) is not None:
        problems.append(problem)
    return problems


def print_completion(args, model, tokenizer, idx) -> None:
    """Generate from the prompt ids idx [1, T]; print the prompt and its continuation, and the speed on stderr."""
    out, speed = generate_timed(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                seed=args.seed, use_cache=not args.no_cache)
    if hasattr(sys.stdout, "reconfigure"):   # a terminal that cannot show a character shows "?", not a crash
        sys.stdout.reconfigure(errors="replace")
    print(args.prompt + tokenizer.decode(backend.to_numpy(out[0, idx.shape[1]:])))
    for line in speed:
        print(line, file=sys.stderr)
