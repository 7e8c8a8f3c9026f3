"""The training steps that scripts/bench.py times: tinytransformer's and its PyTorch twin's, on the same
shapes, dtype and initial weights (scripts/torch_gpt.py mirrors the GPT and loads its weights).

    step = make_step("tt", cfg, "float32")      # or "torch" (fused SDPA), "torch_unfused"
    seconds = time_steps(step, 10)               # mean time of one step: forward, backward, clip, AdamW
    torch_profile(make_step("torch", cfg, "float32"))   # where PyTorch's step spends its time
"""
from __future__ import annotations

import time


class TinyTransformerStep:
    """One training step of tinytransformer's GPT: exactly what scripts/train_shakespeare.py runs, its
    batch shared out among ``workers`` workers (default: the run's, cfg.workers or one per core)."""

    def __init__(self, cfg, dtype, workers=None):
        from tinytransformer import backend
        from tinytransformer.models.gpt import GPT
        from tinytransformer.optim import AdamW
        from tinytransformer.training import DEVICES, data_parallel, model_config
        from tinytransformer.training.step import workers_of
        backend.use(DEVICES[cfg.device], dtype=dtype)
        self.backend, self.cfg = backend, cfg
        self.model = GPT(model_config(cfg, 65))
        self.optimizer = AdamW(self.model.named_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               weight_decay=cfg.weight_decay)
        self.parallel = data_parallel(self.model, workers or workers_of(cfg), self.optimizer)
        self.parameters = self.model.parameters()   # listed once, as the training run does
        rng = backend.new_host_rng(0)
        shape = (cfg.batch_size, cfg.block_size)
        self.x = backend.asarray(rng.integers(0, 65, shape))
        self.y = backend.asarray(rng.integers(0, 65, shape))

    def __call__(self):
        from tinytransformer.optim import clip_grad_norm
        loss = self.parallel.accumulate_gradients(self.x, self.y, 1)   # a float: waits for the device
        clip_grad_norm(self.parameters, self.cfg.grad_clip)
        self.optimizer.step(self.cfg.lr, spread=self.parallel.spread)
        return loss

    def sync(self):
        self.backend.synchronize()


class TorchStep:
    """The same step in PyTorch eager mode (nanoGPT's loop: AdamW with decay and no-decay groups)."""

    def __init__(self, cfg, dtype, fused_attention=True, weights_from=None):
        import torch
        from torch_gpt import TorchGPT
        from tinytransformer.training import model_config
        self.torch, self.cfg = torch, cfg
        self.device = "cuda" if cfg.device == "gpu" else "cpu"
        torch_dtype = getattr(torch, dtype)
        self.model = TorchGPT(model_config(cfg, 65), fused_attention).to(self.device, torch_dtype)
        if weights_from is not None:
            self.model.load_from(weights_from)
        params = list(self.model.parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        gen = torch.Generator().manual_seed(0)
        shape = (cfg.batch_size, cfg.block_size)
        self.x = torch.randint(0, 65, shape, generator=gen).to(self.device)
        self.y = torch.randint(0, 65, shape, generator=gen).to(self.device)

    def __call__(self):
        self.optimizer.zero_grad(set_to_none=True)
        _, loss = self.model(self.x, self.y)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.item()

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def time_steps(step, n):
    """Mean seconds per step over n steps (on a GPU, from an idle device to the last kernel's end)."""
    step.sync()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    step.sync()
    return (time.perf_counter() - t0) / n


def torch_profile(step, n_steps=10, rows=14):
    """PyTorch's half of bench.py's --profile: the self CPU time of each operator in its step
    (torch.profiler), the ``rows`` largest, per step. Operators are not layers: aten::mm is every matrix
    product of the Linear layers and the Q|K|V projection, forward and backward; the attention's, GELU's
    and LayerNorm's forward and backward are operators of their own."""
    from torch.profiler import ProfilerActivity, profile
    step()   # warm-up, as time_steps' callers do
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(n_steps):
            step()
        wall = (time.perf_counter() - t0) / n_steps * 1000
    operators = sorted(prof.key_averages(), key=lambda op: -op.self_cpu_time_total)
    print(f"\nPyTorch's profile of one training step ({wall:.1f} ms with the profiler; self time per operator):")
    print(f"  {'operator':<58} {'ms/step':>8} {'share':>7}")
    for op in operators[:rows]:
        ms = op.self_cpu_time_total / 1000 / n_steps          # microseconds over all steps -> ms a step
        print(f"  {op.key:<58} {ms:8.2f} {ms / wall:7.1%}")


STEPS = {"tt": "tinytransformer (NumPy)", "torch": "PyTorch eager (fused SDPA)",
         "torch_unfused": "PyTorch eager (unfused)"}


def make_step(which, cfg, dtype):
    """A training step of one library; PyTorch's starts from tinytransformer's initial weights."""
    tt = TinyTransformerStep(cfg, dtype)
    if which == "tt":
        return tt
    return TorchStep(cfg, dtype, fused_attention=(which == "torch"), weights_from=tt.model)
