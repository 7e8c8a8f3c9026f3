"""The training run of test_resume.py: importable by the test, and runnable as a script in a fresh process.

    python tests/helpers/resume_training.py CHECKPOINT STEPS [--without-dropout-state]

loads CHECKPOINT, trains on up to iteration STEPS, and prints the losses of the steps it ran as JSON
(Python floats survive JSON exactly, so the test can compare them with ==).

A nanoGPT-style loop on a tiny GPT: random batches of random "text", AdamW, gradient clipping, a cosine
learning-rate schedule. To resume *exactly*, a checkpoint must hold everything the next step depends on:
  - the weights, and AdamW's m, v and step count           (save_checkpoint does these);
  - the iteration, which sets the learning rate            (save_checkpoint's ``iteration``);
  - where the batch generator is                           (``rng_state["batches"]``);
  - where every dropout generator is, when dropout > 0     (``rng_state["dropout"]``: dropout_states).
"""
from __future__ import annotations

import json
import sys

import numpy

from tinytransformer import AdamW, clip_grad_norm, cosine_lr
from tinytransformer.training.checkpoint import load_checkpoint, restore, save_checkpoint
from tinytransformer.layers.dropout import dropout_states, set_dropout_states
from tinytransformer.models import GPT, GPTConfig

VOCAB, BLOCK, BATCH = 13, 8, 4
TEXT = numpy.random.default_rng(1234).integers(0, VOCAB, 400)     # the "dataset": 400 random tokens


def new_run(dropout: float = 0.0):
    """A fresh model, optimizer and batch generator: iteration 0."""
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16, dropout=dropout))
    optimizer = AdamW(model.named_parameters(), lr=1e-2, weight_decay=0.1)
    return model, optimizer, numpy.random.default_rng(7)


def get_batch(batches: numpy.random.Generator):
    """BATCH random windows of TEXT: inputs x and next-token targets y, each [BATCH, BLOCK]."""
    starts = batches.integers(0, len(TEXT) - BLOCK - 1, BATCH)
    x = numpy.stack([TEXT[s:s + BLOCK] for s in starts])
    y = numpy.stack([TEXT[s + 1:s + 1 + BLOCK] for s in starts])
    return x, y


def train(model, optimizer, batches, start: int, stop: int) -> list[float]:
    """Iterations start .. stop-1; returns their losses."""
    losses = []
    for it in range(start, stop):
        x, y = get_batch(batches)
        model.zero_grad()
        _, loss = model(x, y)
        model.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step(lr=cosine_lr(it, lr=1e-2, min_lr=1e-3, warmup_iters=3, lr_decay_iters=12))
        losses.append(float(loss))
    return losses


def save(path, model, optimizer, batches, iteration: int) -> None:
    save_checkpoint(path, model=model, config=model.config, optimizer=optimizer, iteration=iteration,
                    rng_state={"batches": batches.bit_generator.state, "dropout": dropout_states(model)})


def resume(path, with_dropout_state: bool = True):
    """Model, optimizer and batch generator as they were when ``path`` was saved, and the iteration."""
    checkpoint = load_checkpoint(path)
    model = GPT(GPTConfig(**checkpoint.config))
    optimizer = AdamW(model.named_parameters())
    restore(checkpoint, model, optimizer)
    batches = numpy.random.default_rng()
    batches.bit_generator.state = checkpoint.rng_state["batches"]
    if with_dropout_state:
        set_dropout_states(model, checkpoint.rng_state["dropout"])
    return model, optimizer, batches, checkpoint.iteration


if __name__ == "__main__":
    path, stop = sys.argv[1], int(sys.argv[2])
    with_dropout_state = "--without-dropout-state" not in sys.argv
    model, optimizer, batches, start = resume(path, with_dropout_state)
    print(json.dumps(train(model, optimizer, batches, start, stop)))
