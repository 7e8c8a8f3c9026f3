"""Data parallelism (training/step.py, training/processes.py): the step shared out among workers, threads or
processes, computes the gradient of the plain one-worker step, to float64's rounding, and the same bits on
every run."""
import os

import numpy as np
import pytest

from tinytransformer import backend
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.optim import AdamW, clip_grad_norm
from tinytransformer.training import (DataParallel, ProcessDataParallel, SettingsError, TrainConfig,
                                      accumulate_gradients, check_settings)
from tinytransformer.training.processes import processes_available
from tinytransformer.training.step import deal, default_workers, replica_of, shares

GPT2_LIKE = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=True)
LLAMA_LIKE = dict(GPT2_LIKE, positional="rope", normalization="rmsnorm", activation="swiglu", bias=False,
                  tie_weights=False, n_kv_head=1)
# The two kinds of workers: every test of the shared step runs on both.
KINDS = [DataParallel, pytest.param(ProcessDataParallel, marks=pytest.mark.skipif(
    not processes_available(), reason="worker processes need Linux's fork"))]


def batch(rows, seed=0):
    """Token ids x, y [rows, 8]; some targets ignored (-100), more of them in the first rows, so that the
    shares hold different numbers of targets that count."""
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 11, (rows, 8)), rng.integers(0, 11, (rows, 8))
    y[0, :5] = -100
    y[1, :2] = -100
    return x, y


def test_shares_cover_every_row_once_in_order():
    assert shares(12, 2) == [slice(0, 6), slice(6, 12)]
    assert [s.stop - s.start for s in shares(5, 2)] == [2, 3]
    assert [s.stop - s.start for s in shares(7, 3)] == [2, 2, 3]
    assert shares(2, 4) == [slice(0, 1), slice(1, 2)]          # never an empty share
    for rows in range(1, 20):
        for workers in range(1, 6):
            covered = [i for part in shares(rows, workers) for i in range(rows)[part]]
            assert covered == list(range(rows))


def test_deal_gives_every_item_once_and_evens_out_the_sizes():
    sizes = {"wte": 832, "w1": 2048, "w2": 2048, "b1": 128, "b2": 128, "ln": 16, "wpe": 128}
    groups = deal(sizes, 2, size=sizes.get)
    assert sorted(item for group in groups for item in group) == sorted(sizes)
    loads = [sum(sizes[item] for item in group) for group in groups]
    assert loads == [2048 + 832, 2048 + 128 + 128 + 128 + 16]     # largest first, each to the lighter group
    assert [len(group) for group in deal(range(10), 3, size=lambda item: 1)] == [4, 3, 3]
    assert deal(sizes, 2, size=sizes.get) == groups                 # the same groups every time
    assert deal(["a"], 3, size=lambda item: 1) == [["a"], [], []]


@pytest.mark.parametrize("tie", [True, False])
def test_a_replica_shares_the_parameter_arrays_and_keeps_its_own_gradients(tie):
    model = GPT(GPTConfig(**dict(GPT2_LIKE, tie_weights=tie)))
    twin = replica_of(model)
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in model.named_parameters()]
    for p, q in zip(model.parameters(), twin.parameters()):
        assert q.data is p.data and q.grad is not p.grad and not np.shares_memory(q.grad, p.grad)
    assert twin.num_parameters() == model.num_parameters()     # a tied table is still one parameter


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("architecture", [GPT2_LIKE, LLAMA_LIKE], ids=["gpt2", "llama"])
@pytest.mark.parametrize("workers, grad_accum", [(2, 1), (3, 1), (2, 2), (4, 3)])
def test_the_shared_step_equals_the_one_worker_step(kind, architecture, workers, grad_accum):
    """Loss and every gradient, float64, to 1e-12; the shares are uneven (7 rows per micro-batch) and
    hold different numbers of targets that count."""
    with backend.using(dtype="float64"):
        x, y = batch(7 * grad_accum)
        plain, shared = GPT(GPTConfig(**architecture)), GPT(GPTConfig(**architecture))
        expected = float(accumulate_gradients(plain, x, y, grad_accum))
        parallel = kind(shared, workers)
        try:
            for _ in range(2):   # the second step starts from zero, as the plain one does
                loss = parallel.accumulate_gradients(x, y, grad_accum)
                assert loss == pytest.approx(expected, rel=1e-12)
                for (name, p), q in zip(plain.named_parameters(), shared.parameters()):
                    assert np.abs(p.grad).max() > 0, name
                    np.testing.assert_allclose(q.grad, p.grad, rtol=1e-12, atol=1e-15, err_msg=name)
        finally:
            parallel.close()


@pytest.mark.parametrize("kind", KINDS)
def test_steps_with_adamw_stay_equal_and_the_replicas_see_each_update(kind):
    """Four steps of forward, backward, clip and AdamW (its updates spread among the workers): the
    replicas read the weights AdamW changed in place, so the shared run follows the plain one."""
    with backend.using(dtype="float64"):
        plain, shared = GPT(GPTConfig(**GPT2_LIKE)), GPT(GPTConfig(**GPT2_LIKE))
        parallel = kind(shared, 3)
        optimizers = [AdamW(m.named_parameters(), lr=1e-2) for m in (plain, shared)]
        try:
            for step in range(4):
                x, y = batch(9, seed=step)
                a = float(accumulate_gradients(plain, x, y, 1))
                b = parallel.accumulate_gradients(x, y, 1)
                assert b == pytest.approx(a, rel=1e-12)
                for model, optimizer, spread in zip((plain, shared), optimizers, (None, parallel.spread)):
                    clip_grad_norm(model.parameters(), 1.0)
                    optimizer.step(spread=spread)
            # atol: the key projection's bias has a gradient of exactly 0 in exact arithmetic (softmax is
            # blind to a shift shared by all keys); both runs move it only by rounding, about 1e-14
            for (name, p), q in zip(plain.named_parameters(), shared.parameters()):
                np.testing.assert_allclose(q.data, p.data, rtol=1e-12, atol=1e-12, err_msg=name)
        finally:
            parallel.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_bits_on_every_run(kind):
    """float32, 2 workers: the shares and the order of the sum are fixed, not the workers' timing."""
    def run():
        model = GPT(GPTConfig(**GPT2_LIKE))
        parallel, optimizer = kind(model, 2), AdamW(model.named_parameters(), lr=1e-2)
        losses = []
        for step in range(5):
            losses.append(parallel.accumulate_gradients(*batch(12, seed=step), 1))
            optimizer.step(spread=parallel.spread)
        parallel.close()
        return losses, [p.data.copy() for p in model.parameters()]

    with backend.using(dtype="float32"):
        (losses_a, weights_a), (losses_b, weights_b) = run(), run()
    assert losses_a == losses_b and len(set(losses_a)) == 5
    assert all(np.array_equal(a, b) for a, b in zip(weights_a, weights_b))


def test_adamw_spread_among_workers_gives_the_same_bits():
    """Each parameter's update is its own: spreading them among threads changes no bit (float32)."""
    with backend.using(dtype="float32"):
        models = [GPT(GPTConfig(**GPT2_LIKE)) for _ in range(2)]
        parallel = DataParallel(models[1], 3)
        optimizers = [AdamW(m.named_parameters(), lr=1e-2, weight_decay=0.1) for m in models]
        try:
            for step in range(3):
                for model in models:
                    accumulate_gradients(model, *batch(6, seed=step), 1)
                optimizers[0].step()
                optimizers[1].step(spread=parallel.spread)
            for p, q in zip(*(m.parameters() for m in models)):
                assert np.array_equal(p.data, q.data)
            for name in optimizers[0].m:
                assert np.array_equal(optimizers[0].m[name], optimizers[1].m[name])
                assert np.array_equal(optimizers[0].v[name], optimizers[1].v[name])
        finally:
            parallel.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_evaluation_loss_is_the_whole_batchs(kind):
    """With dropout in the model, only a worker that left training mode gives the loss of the model in
    evaluation mode, and after train() the losses are dropout's again."""
    with backend.using(dtype="float64"):
        model = GPT(GPTConfig(**dict(GPT2_LIKE, dropout=0.5)))
        x, y = batch(5)
        model.eval()
        expected = float(model(x, y)[1])
        model.train()
        parallel = kind(model, 2)
        try:
            parallel.eval()
            assert parallel.loss(x, y) == pytest.approx(expected, rel=1e-12)
            parallel.train()
            assert abs(parallel.loss(x, y) - expected) > 1e-3
        finally:
            parallel.close()


def test_workers_default_to_the_cores_for_work_big_enough_and_stay_on_the_cpu():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_workers(12, 64 * 128) == min(cores, 3)       # the cpu preset: 3 shares' worth of work
    assert default_workers(96, 64 * 128) == min(cores, 4)       # at most 4
    assert default_workers(8, 32 * 32) == 1                     # too little work to share
    assert default_workers(1, 1024 * 768) == 1                  # one row: nothing to share
    with backend.using(backend="standin"):                      # the GPU's code path: one stream of work
        assert default_workers(12, 64 * 128) == 1
        with pytest.raises(ValueError, match="need the CPU"):
            DataParallel(GPT(GPTConfig(**GPT2_LIKE)), 2)


@pytest.mark.parametrize("settings, message", [
    (dict(workers=0), "--workers 0: must be an integer >= 1"),
    (dict(workers=2, dropout=0.1), "--workers 2 with --dropout 0.1"),
    (dict(workers=2, device="gpu"), "--workers 2 with --device gpu"),
])
def test_settings_that_cannot_share_a_step_are_refused(settings, message):
    with pytest.raises(SettingsError, match=message):
        check_settings(TrainConfig(**settings))
    check_settings(TrainConfig(**dict(settings, workers=1)))    # one worker: always allowed
