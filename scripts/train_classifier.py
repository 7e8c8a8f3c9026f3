"""Train an encoder-only Transformer (EncoderClassifier) to tell balanced brackets from unbalanced ones.

    python scripts/train_classifier.py                  # NumPy on the CPU
    python scripts/train_classifier.py --device gpu     # CuPy on a GPU
    python scripts/train_classifier.py --help           # every flag

"([]{})" is balanced, "([)]" and "(]" are not. Deciding it needs the whole string at once: every
bracket must find its partner, which may be on either side of it, so the encoder's bidirectional
attention (every position sees every other) suits it. The model reads the string, averages its
hidden states over the real (non-padding) positions, and a linear head says balanced or not.

The data: half the strings are balanced; the other half are balanced strings spoiled on purpose, so that
nothing simple gives them away. Every string has an even length, so parity says nothing. Half of the
unbalanced strings have two brackets swapped (the same brackets, in the wrong order: counting each kind
cannot tell them from balanced ones); the other half have one bracket replaced by another. Strings are
padded with PAD = 0, which attention never looks at and the mean leaves out. The test set holds strings
that never occur in the training set.

The first 600 iterations draw the shorter strings first (--curriculum-iters): without that, the loss sits
at ln 2 until chance tips the model off it, early for some seeds and late for others, and the run that
starts late ends far lower (tinytransformer/tasks/brackets.py, shortest_first, says why).

The task (its data and evaluation) is tinytransformer/tasks/brackets.py. The last line printed is a JSON
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
from tinytransformer.models import EncoderClassifier, EncoderConfig  # noqa: E402
from tinytransformer.tasks.brackets import (ITOS, PAD, count_balanced, encode, evaluate, is_balanced,  # noqa: E402
                                           shortest_first, unbalanced_like, unique_balanced)

# --- the run --------------------------------------------------------------------------------------------

def main():
    # A lower peak learning rate than the seq2seq demo's: at 1e-3 this model often sat at loss ln 2 (the
    # same answer for every string) for a thousand iterations or more. beta2 = 0.95 is nanoGPT's.
    parser = make_parser(
        __doc__.split("\n")[0],
        iters=3000, batch_size=128, n_layer=2, n_embd=128, n_head=8, dropout=0.0, lr=7e-4, min_lr=7e-5,
        warmup_iters=100, beta2=0.95, weight_decay=0.01, grad_clip=1.0, n_train=40000, n_test=2000,
        log_interval=100, eval_interval=500, seed=1337, device="cpu", out_dir="out/classifier")
    parser.add_argument("--min-len", type=int, default=2, help="shortest string (even)")
    parser.add_argument("--max-len", type=int, default=12, help="longest string (even)")
    parser.add_argument("--curriculum-iters", type=int, default=600,
                        help="shortest strings first: the longest length a batch may draw grows from 4 to "
                             "--max-len over these iterations (0: every length from the start)")
    args = parse_args(parser)
    if args.min_len % 2 or args.max_len % 2 or not 2 <= args.min_len <= args.max_len:
        parser.error("need 2 <= --min-len <= --max-len, both even (an odd length is never balanced)")
    if args.curriculum_iters < 0:
        parser.error(f"--curriculum-iters {args.curriculum_iters}: must be an integer >= 0")
    if (args.n_train + args.n_test) // 2 > count_balanced(args.min_len, args.max_len):
        parser.error("there are fewer distinct balanced strings of these lengths than "
                     "(--n-train + --n-test) / 2")
    prepare_out_dir(parser, args)
    use_device(args.device)
    t_start = time.time()

    # Data: as many balanced as unbalanced strings, in the training set and in the test set alike.
    rng = np.random.default_rng(args.seed)
    half_train, half_test = args.n_train // 2, args.n_test // 2
    balanced = unique_balanced(half_train + half_test, rng, args.min_len, args.max_len)
    unbalanced = unbalanced_like(balanced, rng)
    # Shuffle before splitting: the last strings drawn are longer on average (the short ones run out), and
    # the test set should be drawn like the training set.
    rng.shuffle(balanced)
    rng.shuffle(unbalanced)
    train_strings = balanced[:half_train] + unbalanced[:half_train]
    test_strings = balanced[half_train:] + unbalanced[half_train:]
    assert not set(train_strings) & set(test_strings), "a test string is also in the training set"
    train = encode(train_strings, [is_balanced(s) for s in train_strings], args.max_len)
    test = encode(test_strings, [is_balanced(s) for s in test_strings], args.max_len)

    config = EncoderConfig(vocab_size=len(ITOS), n_classes=2, block_size=args.max_len, n_layer=args.n_layer,
                           n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout, head="sequence",
                           pad_id=PAD, seed=args.seed)
    model = EncoderClassifier(config)
    optimizer = AdamW(model.named_parameters(), lr=args.lr, betas=(0.9, args.beta2),
                      weight_decay=args.weight_decay)
    log(f"balanced brackets, lengths {args.min_len}-{args.max_len}: {len(train_strings)} train, "
        f"{len(test_strings)} test; {model.num_parameters():,} parameters; device {args.device}")

    t_last, it_last = time.time(), 0
    train_lengths = np.array([len(s) for s in train_strings])
    for it in range(args.iters):
        # A random batch of training examples, copied to the device (as nanoGPT's get_batch does); in the
        # first --curriculum-iters iterations only from the shorter strings (tasks.brackets.shortest_first).
        pool = shortest_first(train_lengths, it, args.curriculum_iters, args.min_len, args.max_len)
        ix = pool[rng.integers(len(pool), size=args.batch_size)]
        idx, targets = (backend.asarray(a[ix]) for a in train)

        lr = cosine_lr(it, lr=args.lr, min_lr=args.min_lr, warmup_iters=args.warmup_iters,
                       lr_decay_iters=args.iters)
        logits, loss = model(idx, targets)           # forward: [B, 2] logits and the mean loss
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
            test_loss, accuracy = evaluate(model, test)
            log(f"step {it}: test loss {test_loss:.4f}, test accuracy {accuracy:.4f}")

    log(f"held-out accuracy: {accuracy:.4f} ({round(accuracy * len(test_strings))}/{len(test_strings)})")
    checkpoint = os.path.join(args.out_dir, "ckpt.npz")   # the weights, to reload for experiments
    save_checkpoint(checkpoint, model=model, config=config, tokenizer={"itos": ITOS}, iteration=args.iters,
                    extra={"accuracy": accuracy})
    log(f"saved {checkpoint}")
    print_summary({"task": "balanced-brackets", "accuracy": accuracy, "n_test": len(test_strings),
                   "n_train": len(train_strings), "final_loss": final_loss, "test_loss": test_loss,
                   "iters": args.iters, "wall_s": round(time.time() - t_start, 2), "device": args.device,
                   "params": model.num_parameters(), "seed": args.seed, "curriculum_iters": args.curriculum_iters,
                   "checkpoint": checkpoint})


def main_on_one_blas_thread():
    """main() on one BLAS thread unless OPENBLAS_NUM_THREADS says otherwise. The matrices here are small,
    so more threads gain little, and on a machine whose cores are busy with other work, BLAS threads
    waiting for each other can make a run several times slower."""
    with contextlib.nullcontext() if "OPENBLAS_NUM_THREADS" in os.environ else one_blas_thread():
        main()


if __name__ == "__main__":
    run(main_on_one_blas_thread)
