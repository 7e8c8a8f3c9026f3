"""Training a character-level GPT, as nanoGPT's train.py does, with every step visible.

    for it in 0 .. max_iters:
        every eval_interval: estimate train and val loss; save a checkpoint when val improves
        x, y = random batch;  loss = model(x, y);  model.backward()
        clip the gradient norm;  AdamW step with the cosine learning rate

``scripts/train_shakespeare.py`` is the command line around ``train``. Resuming is exact: the checkpoint
holds the weights, AdamW's moments, the batch sampler's random state and the dropout generators' states,
so a resumed run computes the same losses as one that was never interrupted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import backend
from .checkpoint import check_config, load_checkpoint, restore, save_checkpoint
from .data import CharDataset, CharTokenizer, find_shakespeare
from .dropout import dropout_states, set_dropout_states
from .generate import generate
from .models.gpt import GPT, GPTConfig
from .optim import AdamW, clip_grad_norm, cosine_lr

CHECKPOINT_NAME = "ckpt.npz"


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are nanoGPT's CPU recipe for Shakespeare (``--preset cpu``)."""
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    # optimisation
    batch_size: int = 12
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # evaluation and logging
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    sample_chars: int = 300
    # the run
    device: str = "cpu"          # cpu (NumPy), gpu (CuPy), or standin (the CPU stand-in for CuPy)
    dtype: str = "float32"
    seed: int = 1337
    out_dir: str = "out/shakespeare"
    data: str | None = None      # a text file; default: Tiny Shakespeare, found or downloaded
    resume: bool = False


PRESETS = {
    # nanoGPT's README: "baby GPT" on a CPU.
    "cpu": {},
    # nanoGPT's config/train_shakespeare_char.py: the model it trains on one GPU.
    "gpu": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                max_iters=5000, lr_decay_iters=5000, eval_iters=200, device="gpu"),
}

MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias")
DEVICES = {"cpu": "numpy", "gpu": "cupy", "standin": "standin"}


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN or inf."""


def model_config(cfg: TrainConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, seed=cfg.seed, **{f: getattr(cfg, f) for f in MODEL_FIELDS})


def estimate_loss(model, dataset, cfg: TrainConfig, it: int) -> dict:
    """Mean loss over eval_iters batches of each split, dropout off.

    The batches come from a generator seeded by (seed, iteration), not the training sampler, so
    evaluating does not change which batches training sees (and resume stays exact).
    """
    model.eval()
    out = {}
    for i, split in enumerate(("train", "val")):
        rng = backend.new_host_rng([cfg.seed, it, i])
        losses = []
        for _ in range(cfg.eval_iters):
            x, y = dataset.get_batch(split, cfg.batch_size, cfg.block_size, rng)
            losses.append(float(model(x, y)[1]))
        out[split] = sum(losses) / len(losses)
    model.train()
    return out


def plot_losses(records: list, path: Path) -> None:
    """loss.png: training loss per logged iteration and the train/val estimates per evaluation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps:
        ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.5,
                label="train (batch)")
    if evals:
        ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train")
        ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _format_eta(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def train(cfg: TrainConfig, log=print) -> dict:
    """Run (or resume) a training run; returns the summary that the script prints as JSON."""
    start_time = time.perf_counter()
    backend.use(DEVICES[cfg.device], dtype=cfg.dtype)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_NAME
    metrics_path = out_dir / "metrics.jsonl"

    checkpoint = load_checkpoint(ckpt_path) if cfg.resume else None
    tokenizer = CharTokenizer.from_dict(checkpoint.tokenizer) if checkpoint else None
    text = find_shakespeare(cfg.data, log=log).read_text(encoding="utf-8")
    dataset = CharDataset(text, tokenizer)

    gpt_config = model_config(cfg, dataset.tokenizer.vocab_size)
    if checkpoint:
        check_config(checkpoint.config["model"], gpt_config.to_dict())
    model = GPT(gpt_config)
    optimizer = AdamW(model.named_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                      weight_decay=cfg.weight_decay)
    rng = backend.new_host_rng(cfg.seed)  # draws the training batches
    start_iter, best_val, records = 0, math.inf, []
    if checkpoint:
        restore(checkpoint, model, optimizer)
        rng.bit_generator.state = checkpoint.rng_state["batches"]
        if "dropout" in checkpoint.rng_state:  # absent when the run was saved under CuPy
            set_dropout_states(model, checkpoint.rng_state["dropout"])
        start_iter, best_val = checkpoint.iteration, checkpoint.extra["best_val_loss"]
        if metrics_path.exists():  # forget what the interrupted run logged after its checkpoint
            records = [r for r in map(json.loads, metrics_path.read_text().splitlines())
                       if r["iter"] < start_iter or (r["kind"] == "eval" and r["iter"] == start_iter)]
        log(f"resuming from {ckpt_path} at iteration {start_iter} (best val loss {best_val:.4f})")
    metrics_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    log(f"model: {model.num_parameters():,} parameters; data: {len(dataset.train):,} train and "
        f"{len(dataset.val):,} val tokens, vocabulary {dataset.tokenizer.vocab_size}; "
        f"backend {backend.name()} {cfg.dtype}")

    def record(entry: dict) -> None:
        records.append(entry)
        with open(metrics_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def save(it: int) -> None:
        rng_state = {"batches": rng.bit_generator.state}
        if backend.name() != "cupy":  # CuPy's generators cannot report their state
            rng_state["dropout"] = dropout_states(model)
        save_checkpoint(ckpt_path, model=model, optimizer=optimizer, iteration=it, rng_state=rng_state,
                        config={"model": gpt_config.to_dict(), "train": dataclasses.asdict(cfg)},
                        tokenizer=dataset.tokenizer.to_dict(), extra={"best_val_loss": best_val})

    # Ctrl-C asks the loop to stop between steps, so that the checkpoint it writes is consistent.
    stop = {"requested": False}
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))
    step_times, last_loss, it = [], None, start_iter
    tokens_per_step = cfg.batch_size * cfg.block_size
    try:
        for it in range(start_iter, cfg.max_iters + 1):
            evaluate = it % cfg.eval_interval == 0 or it == cfg.max_iters
            if evaluate and not (checkpoint and it == start_iter):  # the resumed iteration was evaluated
                losses = estimate_loss(model, dataset, cfg, it)
                log(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
                record({"kind": "eval", "iter": it, "train_loss": losses["train"], "val_loss": losses["val"]})
                plot_losses(records, out_dir / "loss.png")
                if losses["val"] < best_val:
                    best_val = losses["val"]
                    save(it)
            if it == cfg.max_iters:
                break
            if stop["requested"]:
                log(f"interrupted: saving iteration {it} to {ckpt_path}; continue with --resume")
                save(it)
                break

            t0 = time.perf_counter()
            lr = cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                           lr_decay_iters=cfg.lr_decay_iters)
            x, y = dataset.get_batch("train", cfg.batch_size, cfg.block_size, rng)
            model.zero_grad()
            _, loss = model(x, y)
            model.backward()
            grad_norm = clip_grad_norm(model.parameters(), cfg.grad_clip)
            last_loss = float(loss)  # copies one number from the device: also waits for the GPU
            if not (math.isfinite(last_loss) and math.isfinite(grad_norm)):
                raise TrainingDiverged(
                    f"iteration {it}: loss {last_loss}, gradient norm {grad_norm}. Training stopped before "
                    f"the update; the last good checkpoint ({ckpt_path}) is untouched. Try a lower --lr "
                    "or --dtype float64.")
            optimizer.step(lr)
            backend.synchronize()
            step_times.append(time.perf_counter() - t0)

            if it % cfg.log_interval == 0:
                ms = 1000 * statistics.median(step_times[-cfg.log_interval:])
                eta = (cfg.max_iters - it - 1) * ms / 1000
                log(f"iter {it}: loss {last_loss:.4f}, lr {lr:.2e}, time {ms:.1f}ms, "
                    f"{tokens_per_step / ms * 1000:,.0f} tok/s, ETA {_format_eta(eta)}")
                record({"kind": "train", "iter": it, "loss": last_loss, "lr": lr, "ms": ms})
    finally:
        signal.signal(signal.SIGINT, previous_handler)

    model.eval()
    prompt = backend.asarray(dataset.tokenizer.encode("\n")[None, :])
    sample = dataset.tokenizer.decode(generate(model, prompt, cfg.sample_chars, temperature=0.8,
                                               seed=cfg.seed)[0])
    ms_per_iter = 1000 * statistics.median(step_times) if step_times else float("nan")
    return {
        "best_val_loss": best_val,
        "final_train_loss": last_loss,
        "iters": it,
        "ms_per_iter": ms_per_iter,
        "tokens_per_s": tokens_per_step / ms_per_iter * 1000 if step_times else float("nan"),
        "wall_s": time.perf_counter() - start_time,
        "device": cfg.device,
        "backend": backend.name(),
        "dtype": cfg.dtype,
        "n_params": model.num_parameters(),
        "checkpoint": str(ckpt_path),
        "interrupted": stop["requested"],
        "sample": sample,
    }
