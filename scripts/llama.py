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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from _generation_common import add_sampling_flags, print_completion, sampling_problems  # noqa: E402
from tinytransformer import backend  # noqa: E402
from tinytransformer.generate import prompt_ids  # noqa: E402
from tinytransformer.pretrained import load_llama  # noqa: E402
from tinytransformer.tokenizers import tokenizer_from_hf_json  # noqa: E402
from tinytransformer.training import DEVICES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a save_pretrained folder: config.json, model.safetensors, "
                                                  "tokenizer.json")
    add_sampling_flags(parser, prompt="Once upon a time")
    args = parser.parse_args(argv)
    problems = sampling_problems(args)
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
    print_completion(args, model, tokenizer, idx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
