"""Exact resume: training stopped at a checkpoint and continued in a *fresh process* gives the very same
losses, float for float, as training that never stopped.

A fresh process is the honest test: nothing can leak from the first run through module state, caches or
generators that happen to still be alive. The training loop lives in helpers/resume_training.py, which the
test imports for the uninterrupted run and runs as a script for the resumed one.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import resume_training as run
from tinytransformer import backend
from tinytransformer.training.checkpoint import load_checkpoint

TESTS = Path(__file__).resolve().parent
SAVE_AT, STOP = 5, 12      # checkpoint after 5 iterations, train on to 12 (past warmup and into the decay)


def uninterrupted(dropout):
    model, optimizer, batches = run.new_run(dropout)
    return run.train(model, optimizer, batches, 0, STOP)


def interrupted(tmp_path, dropout, *flags):
    """Train to SAVE_AT and save here; continue to STOP in a new Python process. -> (first, resumed) losses."""
    path = tmp_path / "ckpt.npz"
    model, optimizer, batches = run.new_run(dropout)
    first = run.train(model, optimizer, batches, 0, SAVE_AT)
    run.save(path, model, optimizer, batches, iteration=SAVE_AT)
    assert load_checkpoint(path).iteration == SAVE_AT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    env.pop(backend.ENV_VAR, None)                      # the same backend (NumPy) as this process
    result = subprocess.run([sys.executable, str(TESTS / "helpers" / "resume_training.py"), str(path), str(STOP), *flags],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return first, json.loads(result.stdout)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_resumed_training_gives_exactly_the_same_losses(tmp_path, dropout):
    expected = uninterrupted(dropout)
    first, resumed = interrupted(tmp_path, dropout)
    assert first == expected[:SAVE_AT]
    assert resumed == expected[SAVE_AT:]                # exact float equality, not approximately
    assert len(set(expected)) == STOP                   # (the losses really move from step to step)


def test_with_dropout_the_dropout_generators_must_be_saved_too(tmp_path):
    """Resumed without their states, the dropout generators start again from their seeds: the steps
    after the checkpoint reuse the masks of the first steps, and the run goes elsewhere."""
    expected = uninterrupted(dropout=0.2)
    _, resumed = interrupted(tmp_path, 0.2, "--without-dropout-state")
    assert resumed[0] != expected[SAVE_AT]
