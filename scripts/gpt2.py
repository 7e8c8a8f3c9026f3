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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from _generation_common import add_sampling_flags, print_completion, sampling_problems  # noqa: E402
from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import prompt_ids  # noqa: E402
from tinytransformer.models.gpt import GPT  # noqa: E402
from tinytransformer.pretrained import SIZES, gpt2_config, load_gpt2  # noqa: E402
from tinytransformer.pretrained.gpt2 import is_published  # noqa: E402
from tinytransformer.tokenizers import BPETokenizer, gpt2_vocab_paths  # noqa: E402
from tinytransformer.tokenizers.gpt2 import download_gpt2_vocab, gpt2_file  # noqa: E402
from tinytransformer.training import DEVICES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sampling_flags(parser, prompt="Hello, I'm a language model,")
    parser.add_argument("--model", default="gpt2",
                        help=f"{', '.join(SIZES)}, or the path of a GPT-2 folder or .safetensors file "
                             "(default: gpt2)")
    parser.add_argument("--random", action="store_true",
                        help="randomly initialised weights of the --model size instead of the published ones "
                             "(no download; for measuring speed)")
    parser.add_argument("--config-override", default=None, help=argparse.SUPPRESS)  # tests: a tiny --random model
    args = parser.parse_args(argv)
    problems = sampling_problems(args)
    if args.random and args.model not in SIZES:
        problems.append(f"--random needs a size for --model ({', '.join(SIZES)}), not {args.model!r}")
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

    print_completion(args, model, tokenizer, idx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
