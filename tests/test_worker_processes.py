"""Worker processes (training/processes.py): the threads' step bit for bit, and workers that live and die
with the run: a worker's error or death stops the step with a clear error, and a killed or interrupted
main process leaves no worker behind."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tinytransformer import backend
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.optim import AdamW
from tinytransformer.training import DataParallel, ProcessDataParallel, WorkerFailed, data_parallel
from tinytransformer.training.processes import processes_available

pytestmark = pytest.mark.skipif(not processes_available(), reason="worker processes need Linux's fork")

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=True)


def batch(rows, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 11, (rows, 8)), rng.integers(0, 11, (rows, 8))
    y[0, :5] = -100                                     # the shares hold different numbers of targets
    return x, y


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended: gone, or a zombie that nobody has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until_ended(pids, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(ended(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("workers, grad_accum", [(2, 1), (3, 2)])
def test_processes_give_the_threads_bits(workers, grad_accum):
    """float32: the same shares, weights and order of sums as DataParallel, so the same loss and
    gradients to the last bit, step after step."""
    with backend.using(dtype="float32"):
        threads, processes = GPT(GPTConfig(**SMALL)), GPT(GPTConfig(**SMALL))
        a, b = DataParallel(threads, workers), ProcessDataParallel(processes, workers)
        try:
            for step in range(3):
                x, y = batch(7 * grad_accum, seed=step)
                assert a.accumulate_gradients(x, y, grad_accum) == b.accumulate_gradients(x, y, grad_accum)
                for (name, p), q in zip(threads.named_parameters(), processes.parameters()):
                    assert np.array_equal(p.grad, q.grad), name
                    p.data -= 0.1 * p.grad                  # a step in place, which the workers must see
                    q.data -= 0.1 * q.grad
            assert a.loss(x, y) == b.loss(x, y)
        finally:
            a.close()
            b.close()


@pytest.mark.parametrize("grouped", [True, False])
def test_adamw_shared_out_among_processes_gives_the_same_bits(monkeypatch, grouped):
    """The workers update their groups of parameters with the main process's numbers, even those set
    after they started (a resumed run loads betas and the step count after): the same bits as one
    process's update, after the threads' step (float32). The plain update, which reads p.grad (a
    worker's own gradient there), stays in the main process."""
    monkeypatch.setattr(AdamW, "GROUP_SIZE", 256)        # several groups in this small model
    monkeypatch.setattr(AdamW, "grouped", grouped)
    with backend.using(dtype="float32"):
        models = [GPT(GPTConfig(**SMALL)) for _ in range(2)]
        optimizers = [AdamW(m.named_parameters(), lr=1e-2, weight_decay=0.1) for m in models]
        threads, parallel = DataParallel(models[0], 2), ProcessDataParallel(models[1], 2, optimizers[1])
        try:
            for optimizer in optimizers:
                optimizer.load_state_dict(dict(optimizer.state_dict(), betas=(0.8, 0.95), step=7))
            for step in range(3):
                x, y = batch(6, seed=step)
                threads.accumulate_gradients(x, y, 1)
                parallel.accumulate_gradients(x, y, 1)
                optimizers[0].step(lr=1e-2)
                optimizers[1].step(lr=1e-2, spread=parallel.spread)
            if grouped:
                (_, workers_groups), = parallel.dealt.items()
                assert workers_groups[1], "the worker was given no parameters to update"
            else:
                assert not parallel.dealt
            for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
                assert np.array_equal(p.data, q.data), name
            for name in optimizers[0].m:
                assert np.array_equal(optimizers[0].m[name], optimizers[1].m[name]), name
                assert np.array_equal(optimizers[0].v[name], optimizers[1].v[name]), name
        finally:
            threads.close()
            parallel.close()


def test_the_parameters_keep_their_values_in_shared_memory():
    model = GPT(GPTConfig(**dict(SMALL, n_embd=12)))    # 11 · 12 numbers: not a whole number of 64-byte lines
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    parallel = ProcessDataParallel(model, 2)
    parallel.close()
    for name, p in model.named_parameters():
        assert np.array_equal(p.data, before[name]), name
        assert p.data.ctypes.data % 64 == 0, name      # each on a cache line of its own


def test_data_parallel_picks_processes_on_the_cpu_and_threads_elsewhere():
    model = GPT(GPTConfig(**SMALL))
    parallel = data_parallel(model, 2)
    try:
        assert isinstance(parallel, ProcessDataParallel) and len(parallel.processes) == 1
    finally:
        parallel.close()
    assert isinstance(data_parallel(model, 1), DataParallel)    # one worker: the plain step
    with backend.using(backend="standin"):                       # the GPU's code path: no workers
        assert isinstance(data_parallel(GPT(GPTConfig(**SMALL)), 1), DataParallel)
        with pytest.raises(ValueError, match="need the CPU"):
            ProcessDataParallel(GPT(GPTConfig(**SMALL)), 2)


def test_close_ends_every_worker_and_a_closed_step_says_so():
    parallel = ProcessDataParallel(GPT(GPTConfig(**SMALL)), 3)
    pids = [process.pid for process in parallel.processes]
    parallel.close()
    assert wait_until_ended(pids)
    with pytest.raises(WorkerFailed, match="stopped"):
        parallel.accumulate_gradients(*batch(6), 1)


def test_an_error_in_a_worker_reaches_the_main_process_with_its_traceback():
    """A token id out of range in the second share only: the worker's ValueError, not a hang."""
    parallel = ProcessDataParallel(GPT(GPTConfig(**SMALL)), 2)
    pids = [process.pid for process in parallel.processes]
    x, y = batch(6)
    x[5, 3] = 11                                        # vocab_size 11: ids go up to 10
    with pytest.raises(WorkerFailed, match=r"(?s)worker process 1 failed:.*Traceback.*11"):
        parallel.accumulate_gradients(x, y, 1)
    assert wait_until_ended(pids)                       # a failed step stops the workers


def test_a_worker_killed_mid_run_stops_the_step_with_its_exit_code():
    parallel = ProcessDataParallel(GPT(GPTConfig(**SMALL)), 2)
    parallel.accumulate_gradients(*batch(6), 1)
    os.kill(parallel.processes[0].pid, signal.SIGKILL)
    with pytest.raises(WorkerFailed, match="worker process 1 .* ended unexpectedly, exit code -9"):
        parallel.accumulate_gradients(*batch(6), 1)


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    """kill -9 gives the main process no chance to stop its workers: each must see its pipe close."""
    script = textwrap.dedent("""
        import time
        from tinytransformer.models.gpt import GPT, GPTConfig
        from tinytransformer.training import ProcessDataParallel
        parallel = ProcessDataParallel(GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2,
                                                     n_embd=16)), 3)
        print(*[process.pid for process in parallel.processes], flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        pids = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(pids) == 2 and not any(ended(pid) for pid in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_until_ended(pids)
    finally:
        proc.kill()

