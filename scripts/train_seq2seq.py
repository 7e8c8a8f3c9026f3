"""Train an encoder-decoder Transformer (Seq2Seq) to reverse strings: "transformer" -> "remrofsnart".

    python scripts/train_seq2seq.py                  # NumPy on the CPU
    python scripts/train_seq2seq.py --device gpu     # CuPy on a GPU
    python scripts/train_seq2seq.py --help           # every flag

Why reversal: to write output character t the decoder must find source character L-1-t, and the only way
it can see the source is cross-attention. So the cross-attention weights should form an anti-diagonal,
and the heatmap saved at the end shows whether the model learned to look in the right place.

The data: random strings of 3 to 10 letters. The encoder reads ``x + [EOS]``; the decoder is trained
with teacher forcing, reading ``[BOS] + y`` and predicting ``y + [EOS]`` (y = reversed x), every position
at once. Padding (PAD = 0) is masked in attention and ignored by the loss. A held-out test set of strings
never seen in training is decoded greedily, token by token, and a prediction counts as correct only when
the whole output up to EOS equals the reversed string (exact match).

The task (its data and evaluation) is tinytransformer/tasks/reversal.py. The last line printed is a JSON
summary of the run.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import numpy as np  # noqa: E402

from _demo_common import (log, make_parser, parse_args, prepare_out_dir,  # noqa: E402
                          print_summary, run, use_device)
from tinytransformer import AdamW, backend, clip_grad_norm, cosine_lr  # noqa: E402
from tinytransformer.machine import one_blas_thread  # noqa: E402
from tinytransformer.optim import clip_bound  # noqa: E402
from tinytransformer.training import save_checkpoint  # noqa: E402
from tinytransformer.models import Seq2Seq, Seq2SeqConfig  # noqa: E402
from tinytransformer.tasks.reversal import (ITOS, LETTERS, PAD, encode, exact_match_accuracy,  # noqa: E402
                                           held_out_loss, plot_cross_attention, to_text, unique_random_strings)

# --- the vocabulary: one table for source and target (the model still has one embedding for each) ------
# --- the run --------------------------------------------------------------------------------------------

def main():
    import matplotlib
    matplotlib.use("Agg")  # write PNG files, open no window (works on a server without a display)
    parser = make_parser(
        __doc__.split("\n")[0],
        iters=1500, batch_size=64, n_layer=2, n_embd=64, n_head=4, dropout=0.0, lr=2e-3, min_lr=2e-4,
        warmup_iters=100, beta2=0.95, weight_decay=0.01, grad_clip=1.0, n_train=40000, n_test=2000,
        log_interval=100, eval_interval=500, seed=1337, device="cpu", out_dir="out/seq2seq")
    parser.add_argument("--min-len", type=int, default=3, help="shortest source string")
    parser.add_argument("--max-len", type=int, default=10, help="longest source string")
    # Learned positions: each position's vector is free to become whatever makes "output t looks at
    # source L-1-t" easy to compute. With the fixed sinusoidal table the same run sits on a plateau
    # (loss ~2.8: the source ignored) for about 800 iterations and gets few strings right by the end.
    parser.add_argument("--positional", choices=["learned", "sinusoidal"], default="learned",
                        help="position encoding of both stacks")
    args = parse_args(parser)
    if not 1 <= args.min_len <= args.max_len:
        parser.error("need 1 <= --min-len <= --max-len")
    if args.n_train + args.n_test > sum(len(LETTERS) ** n for n in range(args.min_len, args.max_len + 1)):
        parser.error("there are fewer distinct strings of these lengths than --n-train + --n-test")
    prepare_out_dir(parser, args)
    use_device(args.device)
    t_start = time.time()

    # Data: distinct strings, split into a training set and a held-out test set.
    rng = np.random.default_rng(args.seed)
    strings = unique_random_strings(args.n_train + args.n_test, rng, args.min_len, args.max_len)
    rng.shuffle(strings)  # the last strings drawn are longer on average (short ones repeat and are skipped)
    train_strings, test_strings = strings[:args.n_train], strings[args.n_train:]
    assert not set(train_strings) & set(test_strings), "a test string is also in the training set"
    width = args.max_len + 1                                     # the longest x + [EOS]
    train, test = encode(train_strings, width), encode(test_strings, width)

    config = Seq2SeqConfig(src_vocab_size=len(ITOS), tgt_vocab_size=len(ITOS), block_size=width,
                           n_encoder_layer=args.n_layer, n_decoder_layer=args.n_layer, n_head=args.n_head,
                           n_embd=args.n_embd, dropout=args.dropout, positional=args.positional,
                           pad_id=PAD, seed=args.seed)
    model = Seq2Seq(config)
    optimizer = AdamW(model.named_parameters(), lr=args.lr, betas=(0.9, args.beta2),
                      weight_decay=args.weight_decay)
    log(f"reversing strings of {args.min_len}-{args.max_len} letters: {len(train_strings)} train, "
        f"{len(test_strings)} test; {model.num_parameters():,} parameters; device {args.device}")

    t_last, it_last = time.time(), 0
    for it in range(args.iters):
        # A random batch of training examples, copied to the device (as nanoGPT's get_batch does).
        ix = rng.integers(len(train_strings), size=args.batch_size)
        src, tgt_in, targets = (backend.asarray(a[ix]) for a in train)

        lr = cosine_lr(it, lr=args.lr, min_lr=args.min_lr, warmup_iters=args.warmup_iters,
                       lr_decay_iters=args.iters)
        logits, loss = model(src, tgt_in, targets)   # forward, and the loss of predicting every target
        model.zero_grad()                            # gradients accumulate, so clear last step's
        model.backward()                             # every layer's backward, from the loss back
        clip_grad_norm(model.parameters(), clip_bound(args.grad_clip))
        optimizer.step(lr=lr)

        last = it == args.iters - 1
        if it % args.log_interval == 0 or last:
            final_loss = float(loss)   # one copy to the host (on a GPU this also waits for the step)
            now = time.time()
            ms = 1000 * (now - t_last) / (it + 1 - it_last)   # per iteration, since the last line
            t_last, it_last = now, it + 1
            log(f"iter {it}: loss {final_loss:.4f}, lr {lr:.2e}, time {ms:.1f}ms")
        if (it > 0 and it % args.eval_interval == 0) or last:
            log(f"step {it}: test loss {held_out_loss(model, test):.4f}")

    accuracy, predictions = exact_match_accuracy(model, test_strings, test)
    log(f"held-out exact-match accuracy: {accuracy:.4f} ({round(accuracy * len(test_strings))}"
        f"/{len(test_strings)})")
    for s, pred in list(zip(test_strings, predictions))[:3]:
        log(f"  {s:>{args.max_len}} -> {to_text(pred):<{args.max_len}} "
            f"{'ok' if to_text(pred) == s[::-1] else 'wrong'}")

    os.makedirs(args.out_dir, exist_ok=True)
    checkpoint = os.path.join(args.out_dir, "ckpt.npz")   # the weights, to reload for experiments
    save_checkpoint(checkpoint, model=model, config=config, tokenizer={"itos": ITOS}, iteration=args.iters,
                    extra={"accuracy": accuracy})
    heatmap = os.path.join(args.out_dir, "cross_attention.png")
    example = max(test_strings[:100], key=len)                  # a long example shows the pattern best
    plot_cross_attention(model, example, predictions[test_strings.index(example)], heatmap)
    log(f"saved {checkpoint} and {heatmap}")

    print_summary({"task": "reverse", "accuracy": accuracy, "n_test": len(test_strings),
                   "n_train": len(train_strings), "final_loss": final_loss, "iters": args.iters,
                   "wall_s": round(time.time() - t_start, 2),
                   "device": args.device, "params": model.num_parameters(), "seed": args.seed,
                   "checkpoint": checkpoint, "heatmap": heatmap})


def main_on_one_blas_thread():
    """main() on one BLAS thread unless OPENBLAS_NUM_THREADS says otherwise. The matrices here are small,
    so more threads gain little, and on a machine whose cores are busy with other work, BLAS threads
    waiting for each other can make a run several times slower."""
    with contextlib.nullcontext() if "OPENBLAS_NUM_THREADS" in os.environ else one_blas_thread():
        main()


if __name__ == "__main__":
    run(main_on_one_blas_thread)
