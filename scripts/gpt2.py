#!/usr/bin/env python3
"""Generate text with GPT-2 in NumPy (or CuPy): OpenAI's weights in tinytransformer's GPT.

    python scripts/gpt2.py --prompt "Hello, I'm a language model,"           # GPT-2 small (124M)
    python scripts/gpt2.py --model gpt2-medium --top-k 40 --seed 1
    python scripts/gpt2.py --model path/to/folder                            # save_pretrained / save_gpt2
    python scripts/gpt2.py --random --max-new-tokens 20                      # no download: random weights

The weights (model.safetensors) and the tokenizer's files (vocab.json, merges.txt) are downloaded from
huggingface.co/openai-community on first use and cached (see README, "GPT-2 in NumPy"). Generation uses
the KV cache; the tokens/s of the prompt and of the new tokens are printed separately.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import generate_timed, prompt_ids, prompt_problem  # noqa: E402
from tinytransformer.models.gpt import GPT  # noqa: E402
from tinytransformer.pretrained import SIZES, gpt2_config, load_gpt2  # noqa: E402
from tinytransformer.pretrained.gpt2 import is_published  # noqa: E402
from tinytransformer.tokenizers import BPETokenizer, gpt2_vocab_paths  # noqa: E402
from tinytransformer.tokenizers.gpt2 import download_gpt2_vocab, gpt2_file  # noqa: E402
from tinytransformer.training import DEVICES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", default="Hello, I'm a language model,", help="text to continue")
    parser.add_argument("--model", default="gpt2",
                        help=f"{', '.join(SIZES)}, or the path of a GPT-2 folder or .safetensors file "
                             "(default: gpt2)")
    parser.add_argument("--random", action="store_true",
                        help="randomly initialised weights of the --model size instead of the published ones "
                             "(no download; for measuring speed)")
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
    parser.add_argument("--config-override", default=None, help=argparse.SUPPRESS)  # tests: a tiny --random model
    args = parser.parse_args(argv)
    problems = []
    if not (args.temperature == 0 or (math.isfinite(args.temperature) and args.temperature > 0)):
        problems.append(f"--temperature {args.temperature}: must be 0 (the most likely token) or a finite number > 0")
    if args.top_k is not None and args.top_k < 1:
        problems.append(f"--top-k {args.top_k}: must be at least 1")
    if args.max_new_tokens < 0:
        problems.append(f"--max-new-tokens {args.max_new_tokens}: must be at least 0")
    if args.seed < 0:
        problems.append(f"--seed {args.seed}: must be at least 0")
    if args.random and args.model not in SIZES:
        problems.append(f"--random needs a size for --model ({', '.join(SIZES)}), not {args.model!r}")
    if (problem := prompt_problem(args.prompt)) is not None:
        problems.append(problem)
    if problems:
        parser.error("; ".join(problems))
    return args


class ByteTokenizer:
    """The stand-in when a random model has no GPT-2 vocabulary: ids 0..255 are the bytes of UTF-8 text."""

    vocab_size = 256

    def encode(self, text: str):
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        # A random model picks ids beyond 255 as well: shown as [id], since no text stands behind them.
        return "".join(bytes([i]).decode("latin-1") if i < 256 else f"[{i}]" for i in map(int, ids))


def fetch_files(args, log) -> None:
    """The published model: download what is missing of its files; every file that cannot be had, in one
    error. (A --random model downloads nothing: it uses GPT-2's vocabulary only if it is there.)"""
    if args.random:
        return
    fetches = [lambda: download_gpt2_vocab(log=log)]
    if is_published(args.model):                       # (a folder ./gpt2 is loaded instead: see load_gpt2)
        fetches.append(lambda: gpt2_file(args.model, "model.safetensors", log=log))
    problems = []
    for fetch in fetches:
        try:
            fetch()
        except FileNotFoundError as err:
            problems.append(str(err))
    if problems:
        raise FileNotFoundError("\n".join(problems))


def find_tokenizer(args, log):
    """GPT-2's tokenizer from its files, or, for a random model without them, bytes."""
    vocab_json, merges_txt = gpt2_vocab_paths()
    if vocab_json.is_file() and merges_txt.is_file():
        return BPETokenizer.from_gpt2_files(vocab_json, merges_txt)
    log(f"GPT-2's vocabulary files are not at {vocab_json.parent}: the prompt is encoded as bytes (ids "
        "0..255) and generated ids above 255 are shown as [id].")
    return ByteTokenizer()


def build_model(args, log) -> GPT:
    if not args.random:
        return load_gpt2(args.model, dtype=args.dtype, log=log)
    overrides = json.loads(args.config_override) if args.config_override else {}
    with backend.using(dtype=args.dtype):
        return GPT(gpt2_config(args.model, **overrides))


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)
    try:
        backend.use(DEVICES[args.device], dtype=args.dtype)
        fetch_files(args, log)
        tokenizer = find_tokenizer(args, log)
        started = time.perf_counter()
        model = build_model(args, log)
        kind = ("random, configuration overridden, " if args.config_override else "random ") if args.random else ""
        log(f"{kind}{args.model}: {model.num_parameters():,} parameters, "
            f"{args.device}, {args.dtype} (built in {time.perf_counter() - started:.1f} s)")
        if not isinstance(tokenizer, ByteTokenizer) and tokenizer.vocab_size != model.config.vocab_size:
            raise ValueError(f"GPT-2's tokenizer has {tokenizer.vocab_size:,} tokens but the model "
                             f"{model.config.vocab_size:,}: the two must be the same vocabulary.")
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
