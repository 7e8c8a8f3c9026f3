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

The last line printed is a JSON summary of the run.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# One BLAS thread unless OPENBLAS_NUM_THREADS says otherwise. The matrices here are small, so more threads
# gain little, and on a machine whose cores are busy with other work, BLAS threads waiting for each other
# can make a run several times slower. (This must happen before NumPy is imported.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import matplotlib  # noqa: E402
matplotlib.use("Agg")  # write PNG files, open no window (works on a server without a display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from _demo_common import (log, make_parser, parse_args, prepare_out_dir,  # noqa: E402
                          print_summary, run, use_device)
from tinytransformer import AdamW, backend, clip_grad_norm, cosine_lr  # noqa: E402
from tinytransformer.optim import clip_bound  # noqa: E402
from tinytransformer.checkpoint import save_checkpoint  # noqa: E402
from tinytransformer.generate import greedy_decode  # noqa: E402
from tinytransformer.models import Seq2Seq, Seq2SeqConfig  # noqa: E402

# --- the vocabulary: one table for source and target (the model still has one embedding for each) ------
PAD, BOS, EOS = 0, 1, 2
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ITOS = ["<pad>", "<bos>", "<eos>"] + list(LETTERS)      # id -> token
STOI = {token: i for i, token in enumerate(ITOS)}       # token -> id


# --- the data (host-side NumPy: it is built once and copied to the device batch by batch) --------------

def unique_random_strings(n, rng, min_len, max_len):
    """n distinct strings of random letters, lengths uniform in [min_len, max_len]."""
    strings = {}  # a dict keeps insertion order, so the result is deterministic under a seed
    while len(strings) < n:
        length = rng.integers(min_len, max_len + 1)
        strings["".join(rng.choice(list(LETTERS), size=length))] = None
    return list(strings)


def encode(strings, width):
    """strings -> (src, tgt_in, targets), each [N, width] int64, padded with PAD.

    src = x + [EOS]    tgt_in = [BOS] + y    targets = y + [EOS]    (y = x reversed)
    tgt_in is targets shifted right by one: at position t the decoder has seen y[:t] and predicts y[t].
    """
    src = np.full((len(strings), width), PAD, dtype=np.int64)
    tgt_in = np.full((len(strings), width), PAD, dtype=np.int64)
    targets = np.full((len(strings), width), PAD, dtype=np.int64)
    for i, s in enumerate(strings):
        x = [STOI[ch] for ch in s]
        y = x[::-1]
        src[i, :len(x) + 1] = x + [EOS]
        tgt_in[i, :len(y) + 1] = [BOS] + y
        targets[i, :len(y) + 1] = y + [EOS]
    return src, tgt_in, targets


def until_eos(ids):
    """The output proper: the ids before the first EOS (greedy_decode pads finished rows after it)."""
    return ids[:ids.index(EOS)] if EOS in ids else ids


def to_text(ids):
    return "".join(ITOS[i] for i in ids)


# --- evaluation -----------------------------------------------------------------------------------------

def held_out_loss(model, data, batch_size=500):
    """Mean teacher-forced loss over the test set (the same loss as training, on unseen strings)."""
    src, tgt_in, targets = data
    total, count = 0.0, 0
    model.eval()
    for i in range(0, len(src), batch_size):
        _, loss = model(*(backend.asarray(a[i:i + batch_size]) for a in (src, tgt_in, targets)))
        n = int((targets[i:i + batch_size] != PAD).sum())  # the loss is a mean over non-PAD targets
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / count


def exact_match_accuracy(model, strings, data, batch_size=500):
    """Fraction of test strings whose greedy decoding equals the reversed string exactly (up to EOS)."""
    src = data[0]
    predictions = []  # one list of token ids per test string
    for i in range(0, len(src), batch_size):
        out = greedy_decode(model, backend.asarray(src[i:i + batch_size]), BOS, EOS,
                            max_len=src.shape[1])                        # [B, <= width]
        predictions += [until_eos(row) for row in backend.to_numpy(out).tolist()]
    correct = sum(to_text(pred) == s[::-1] for pred, s in zip(predictions, strings))
    return correct / len(strings), predictions


def plot_cross_attention(model, string, prediction, path):
    """Heatmap of the last decoder block's cross-attention for one example: output rows, source columns.

    The decoder reads BOS and then the model's own output (``prediction``, the ids before EOS), as it did
    while decoding greedily, so row t shows where it looked to write output token t.
    """
    src, _, _ = encode([string], len(string) + 1)                                # [1, S]
    tgt_in = [BOS] + prediction[:model.config.block_size - 1]                     # at most block_size
    model.eval()
    logits, _ = model(backend.asarray(src), backend.asarray(np.array([tgt_in])))  # fills the weights
    model.train()
    weights = backend.to_numpy(model.decoder_blocks[-1].cross_attn.sublayer.weights)[0]  # [n_head, T, S]
    written = backend.to_numpy(logits.argmax(axis=-1))[0]                         # [T]: token per row
    src_labels = [ITOS[i] for i in src[0]]
    out_labels = [ITOS[i] for i in written]
    n_head = weights.shape[0]
    fig, axes = plt.subplots(1, n_head, figsize=(2.6 * n_head + 1, 3.2), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(weights[h], cmap="viridis", vmin=0.0, vmax=1.0)   # each row sums to 1 over the source
        ax.set_xticks(range(len(src_labels)), src_labels, fontsize=7, rotation=90)
        ax.set_yticks(range(len(out_labels)), out_labels, fontsize=7)
        ax.set_title(f"head {h}", fontsize=9)
        ax.set_xlabel("source")
    axes[0][0].set_ylabel("output")
    fig.suptitle(f"cross-attention of the last decoder block: {string} -> {to_text(prediction)}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # "tight": keep the rotated labels inside
    plt.close(fig)


# --- the run --------------------------------------------------------------------------------------------

def main():
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


if __name__ == "__main__":
    run(main)
