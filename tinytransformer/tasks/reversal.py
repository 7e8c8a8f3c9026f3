"""The reversal task: translate a string of letters into the same string reversed ("transformer" ->
"remrofsnart"), the task of scripts/train_seq2seq.py and of lessons 14 and 20.

To write output character t the decoder must find source character L-1-t, and the only way it can see
the source is cross-attention, so the cross-attention weights should form an anti-diagonal. The data:
random strings of letters. The encoder reads ``x + [EOS]``; the decoder is trained with teacher forcing,
reading ``[BOS] + y`` and predicting ``y + [EOS]`` (y = reversed x), every position at once. Padding
(PAD = 0) is masked in attention and ignored by the loss. A prediction counts as correct only when the
whole output up to EOS equals the reversed string (exact match).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..generate import greedy_decode

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
    import matplotlib.pyplot as plt
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
