"""The bracket task: tell balanced bracket strings ("([]{})") from unbalanced ones ("([)]", "(]").

Deciding it needs the whole string at once: every bracket must find its partner, which may be on either
side of it, so an encoder's bidirectional attention suits it (scripts/train_classifier.py trains an
EncoderClassifier on it). Half the strings are balanced; the other half are balanced strings spoiled on
purpose, so that nothing simple gives them away: every string has an even length, so parity says
nothing; half of the unbalanced strings have two brackets swapped (counting each kind cannot tell them
from balanced ones), the other half one bracket replaced by another. Strings are padded with PAD = 0.

The data is built on the host (NumPy) once and copied to the device batch by batch.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend

PAD = 0
BRACKETS = "()[]{}"
ITOS = ["<pad>"] + list(BRACKETS)                      # id -> token
STOI = {token: i for i, token in enumerate(ITOS)}      # token -> id
OPEN_OF = {")": "(", "]": "[", "}": "{"}              # closing bracket -> its opening partner


# --- the data (host-side NumPy: it is built once and copied to the device batch by batch) --------------

def is_balanced(s):
    """The rule the model has to learn: a stack of open brackets, each closed by its own partner."""
    stack = []
    for ch in s:
        if ch in OPEN_OF:                          # a closing bracket
            if not stack or stack.pop() != OPEN_OF[ch]:
                return False
        else:
            stack.append(ch)
    return not stack


def random_balanced(length, rng):
    """A random balanced string of the given (even) length."""
    out, stack = [], []
    for i in range(length):
        remaining = length - i
        # Open when nothing is open, or by a coin flip when there is still room to close everything.
        if not stack or (len(stack) < remaining and rng.random() < 0.5):
            ch = "([{"[rng.integers(3)]
            stack.append(ch)
        else:
            ch = ")]}"["([{".index(stack.pop())]
        out.append(ch)
    return "".join(out)


def spoil(s, rng):
    """An unbalanced string made from the balanced s: two brackets swapped, or one bracket replaced."""
    while True:
        chars = list(s)
        i, j = rng.choice(len(chars), size=2, replace=False)
        if rng.random() < 0.5:
            chars[i], chars[j] = chars[j], chars[i]           # same brackets, wrong order
        else:
            chars[i] = BRACKETS[rng.integers(len(BRACKETS))]  # one bracket changed
        t = "".join(chars)
        if not is_balanced(t):                                # the change may have kept it balanced
            return t


def count_balanced(min_len, max_len):
    """How many distinct balanced strings there are: Catalan(n) shapes times 3ⁿ bracket kinds, n = L/2."""
    return sum(math.comb(length, length // 2) // (length // 2 + 1) * 3 ** (length // 2)
               for length in range(min_len, max_len + 1, 2))


def unique_balanced(n, rng, min_len, max_len):
    """n distinct balanced strings, even lengths uniform in [min_len, max_len] (short ones run out: there
    are only 3 balanced strings of length 2, so the longer lengths fill the rest)."""
    strings = {}  # a dict keeps insertion order, so the result is deterministic under a seed
    lengths = range(min_len, max_len + 1, 2)
    while len(strings) < n:
        strings[random_balanced(lengths[rng.integers(len(lengths))], rng)] = None
    return list(strings)


def unbalanced_like(balanced, rng):
    """One distinct unbalanced string for each balanced one, of the same length, so that the length of a
    string says nothing about its class."""
    strings = {}
    for s in balanced:
        t = spoil(random_balanced(len(s), rng), rng)
        while t in strings:
            t = spoil(random_balanced(len(s), rng), rng)
        strings[t] = None
    return list(strings)


def shortest_first(lengths, it: int, curriculum_iters: int, min_len: int, max_len: int):
    """The training examples a batch may be drawn from at iteration ``it``: the indices of the strings no
    longer than a cap that grows from 4 to max_len over the first curriculum_iters iterations (then all).

    Why (the measured part is the iterations; the reason is our reading of them): at the start the label
    is invisible to every simple feature of a long string. Among the unbalanced strings, more opening
    than closing brackets is as likely as fewer, and half have equal counts (two brackets swapped), so
    no count of brackets, and no sum of per-bracket features (what mean pooling makes at initialisation),
    leans towards either class: the gradient is ~0 and the loss sits at ln 2 until the noise of the
    batches tips the model off it: by
    iteration 121 to 201 for seeds 0 to 9, at 976 for seed 1337, which then ended at 92% instead of 99%
    (docs/training.md). In a string of 2 or 4 brackets single positions decide (a closing bracket first,
    an opening one last, a mismatched pair), and those features are what the model then extends to
    longer strings: with this curriculum seed 1337 leaves ln 2 by iteration 32.
    """
    if it >= curriculum_iters:
        return np.arange(len(lengths))
    cap = min_len + 2 * int((max_len - min_len) / 2 * it / curriculum_iters)   # even lengths only
    return np.flatnonzero(lengths <= max(cap, 4))


def encode(strings, labels, width):
    """-> (idx [N, width] int64 padded with PAD, targets [N] int64: 1 balanced, 0 not)."""
    idx = np.full((len(strings), width), PAD, dtype=np.int64)
    for i, s in enumerate(strings):
        idx[i, :len(s)] = [STOI[ch] for ch in s]
    return idx, np.array(labels, dtype=np.int64)


# --- evaluation -----------------------------------------------------------------------------------------

def evaluate(model, data, batch_size=1000):
    """(mean loss, accuracy) over a whole data set, in evaluation mode (no dropout)."""
    idx, targets = data
    total_loss, correct = 0.0, 0
    model.eval()
    for i in range(0, len(idx), batch_size):
        batch_idx, batch_targets = idx[i:i + batch_size], targets[i:i + batch_size]
        logits, loss = model(backend.asarray(batch_idx), backend.asarray(batch_targets))  # [B, 2]
        predictions = backend.to_numpy(logits.argmax(axis=-1))                   # [B]: the likelier class
        correct += int((predictions == batch_targets).sum())
        total_loss += float(loss) * len(predictions)
    model.train()
    return total_loss / len(idx), correct / len(idx)
