#!/usr/bin/env python3
"""How fast BPETokenizer encodes: train a byte-level BPE on a corpus, then encode the whole corpus, and
1 MB of one repeated character.

    python scripts/bench_tokenizer.py                      # Tiny Shakespeare, 1024 tokens, 5 repeats
    python scripts/bench_tokenizer.py --vocab-size 2048 --repeats 9
    python scripts/bench_tokenizer.py --repeat-mb 0        # the corpus only

Each repeat encodes the corpus from a cold cache (every pre-token is merged afresh, as in a first
encode); the warm figure is the same text again with the cache full. Then --repeat-mb megabytes of
--repeat-char ("eeee...": one pre-token, the worst case of a merge loop that rescans after every merge)
are encoded from a cold cache. With tiktoken installed (the oracle extra), tiktoken encodes the same
texts with the same ranks and split pattern: the ids must be equal, and the ratio ours / tiktoken is
printed. Figures are medians over the repeats. The last line is a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from tinytransformer.data import find_shakespeare, read_text  # noqa: E402
from tinytransformer.tokenizers import BPETokenizer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="text file (default: Tiny Shakespeare, found as for training)")
    parser.add_argument("--vocab-size", type=int, default=1024, help="tokens, <|endoftext|> included (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="timed encodes of the corpus (default 5)")
    parser.add_argument("--repeat-mb", type=float, default=1.0,
                        help="megabytes of one repeated character to encode as well (default 1; 0: skip)")
    parser.add_argument("--repeat-char", default="e", help="the repeated character (default e)")
    parser.add_argument("--no-tiktoken", action="store_true", help="do not compare with tiktoken")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.repeat_mb < 0:
        parser.error("--repeat-mb must be 0 (skip) or more")
    if len(args.repeat_char) != 1:
        parser.error(f"--repeat-char must be one character, not {args.repeat_char!r}")
    return args


def median_seconds(fn, repeats: int, before=lambda: None) -> float:
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    args = parse_args(argv)
    path = find_shakespeare(args.data)
    text = read_text(path)
    megabytes = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {path} ({megabytes:.3f} MB, {len(text):,} characters)")

    start = time.perf_counter()
    tokenizer = BPETokenizer.train(text, args.vocab_size)
    train_s = time.perf_counter() - start
    print(f"train: vocab_size {tokenizer.vocab_size} ({len(tokenizer.ranks) - 256} merges) in {train_s:.2f} s")

    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text, "the corpus does not round-trip"
    cold_s = median_seconds(lambda: tokenizer.encode(text), args.repeats, before=tokenizer.clear_cache)
    warm_s = median_seconds(lambda: tokenizer.encode(text), args.repeats)
    print(f"encode: {len(ids):,} tokens, {megabytes * 1e6 / len(ids):.2f} bytes per token")
    print(f"  cold cache: {cold_s:.3f} s  {megabytes / cold_s:.2f} MB/s   (median of {args.repeats})")
    print(f"  warm cache: {warm_s:.3f} s  {megabytes / warm_s:.2f} MB/s")
    summary = {"megabytes": megabytes, "vocab_size": tokenizer.vocab_size, "tokens": len(ids),
               "train_s": train_s, "encode_cold_s": cold_s, "encode_warm_s": warm_s,
               "cold_mb_per_s": megabytes / cold_s}

    encoding = None if args.no_tiktoken else tiktoken_encoding(tokenizer)
    if encoding is not None:
        import tiktoken
        same = encoding.encode_ordinary(text) == ids.tolist()
        tiktoken_s = median_seconds(lambda: encoding.encode_ordinary(text), args.repeats)
        print(f"tiktoken {tiktoken.__version__}: {tiktoken_s:.3f} s  {megabytes / tiktoken_s:.2f} MB/s, "
              f"same ids: {same}; ours (cold) / tiktoken = {cold_s / tiktoken_s:.1f}")
        summary.update(tiktoken_s=tiktoken_s, tiktoken_mb_per_s=megabytes / tiktoken_s, same_ids_as_tiktoken=same,
                       ratio_to_tiktoken=cold_s / tiktoken_s)

    if args.repeat_mb > 0:
        summary.update(repeated_text(tokenizer, encoding, args))
    print(json.dumps(summary))


def tiktoken_encoding(tokenizer):
    """tiktoken with our ranks and split pattern, or None where it is not installed."""
    try:
        import tiktoken
    except ImportError:
        print("tiktoken: not installed (pip install -e '.[oracle]'), no comparison")
        return None
    return tiktoken.Encoding(name="bench", pat_str=tokenizer.pattern, mergeable_ranks=tokenizer.ranks,
                             special_tokens=tokenizer.special_tokens)


def repeated_text(tokenizer, encoding, args) -> dict:
    """Encode --repeat-mb megabytes of one character from a cold cache: one long pre-token."""
    text = args.repeat_char * max(1, round(args.repeat_mb * 1e6 / len(args.repeat_char.encode("utf-8"))))
    megabytes = len(text.encode("utf-8")) / 1e6
    ids = tokenizer.encode_ordinary(text)
    assert tokenizer.decode(ids) == text, "the repeated text does not round-trip"
    seconds = median_seconds(lambda: tokenizer.encode_ordinary(text), args.repeats, before=tokenizer.clear_cache)
    print(f"{megabytes:.3f} MB of {args.repeat_char!r}: {len(ids):,} tokens, cold cache: {seconds:.3f} s  "
          f"{megabytes / seconds:.2f} MB/s")
    result = {"repeat_megabytes": megabytes, "repeat_tokens": len(ids), "repeat_cold_s": seconds,
              "repeat_mb_per_s": megabytes / seconds}
    if encoding is not None:
        same = encoding.encode_ordinary(text) == ids.tolist()
        tiktoken_s = median_seconds(lambda: encoding.encode_ordinary(text), args.repeats)
        print(f"  tiktoken: {tiktoken_s:.3f} s  {megabytes / tiktoken_s:.2f} MB/s, same ids: {same}; "
              f"ours / tiktoken = {seconds / tiktoken_s:.1f}")
        result.update(repeat_tiktoken_s=tiktoken_s, repeat_same_ids_as_tiktoken=same,
                      repeat_tiktoken_mb_per_s=megabytes / tiktoken_s)
    return result


if __name__ == "__main__":
    main()
