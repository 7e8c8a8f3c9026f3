"""Training a character-level GPT, as nanoGPT's train.py does, with every step visible.

    for it in 0 .. max_iters:
        every eval_interval: estimate train and val loss; save a checkpoint when val improves
        x, y = random batch;  loss = model(x, y);  model.backward()   (in grad_accum micro-batches)
        clip the gradient norm;  AdamW step with the cosine learning rate

``scripts/train_shakespeare.py`` is the command line around ``train``. Resuming is exact: the checkpoint
holds the weights, AdamW's moments, the batch sampler's random state and the dropout generators' states,
so a resumed run computes the same losses as one that was never interrupted.

The run's folder (``out_dir``) holds:

    ckpt.npz       the best model so far (lowest val loss); what sample.py loads by default
    last.npz       the latest state: written at every evaluation and when the run stops early (Ctrl-C,
                   a closed output pipe); ``resume`` continues from it
    metrics.jsonl  one JSON record per log line and per evaluation
    loss.png       the loss curves
    run.lock       present while a run owns the folder (run_folder.RunLock)

A run refuses to start over another run's files unless told to (``overwrite``), and ``resume`` reads the
run's settings back from its checkpoint (``resume_config``).

The tokens are characters, a BPE trained on the training split, or GPT-2's (``tokenizer``); the model
starts from random weights or from GPT-2's (``init``): ``start_from_init`` sets both up for a new run,
and a resumed run reads both back from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import backend, gpt2
from .checkpoint import CheckpointError, check_config, load_checkpoint, restore, save_checkpoint
from .data import SHAKESPEARE_SHA256, TextDataset, find_shakespeare, read_text, split_text
from .dropout import dropout_states, set_dropout_states
from .generate import generate
from .models.gpt import GPT, GPTConfig
from .optim import AdamW, clip_bound, clip_grad_norm, cosine_lr
from .run_folder import RunLock, remove_stale_temporaries
from .tokenizers import BPETokenizer, CharTokenizer, gpt2_tokenizer, tokenizer_from_dict

CHECKPOINT_NAME = "ckpt.npz"   # the best model
LATEST_NAME = "last.npz"       # the latest state, to resume from
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"


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
    grad_accum: int = 1          # micro-batches of batch_size per step: the step sees grad_accum·batch_size
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0       # 0: no clipping (as nanoGPT)
    # evaluation and logging
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    sample_chars: int = 300
    # the tokens and the starting point
    tokenizer: str | None = "char"  # char, bpe (trained on the training split), gpt2 (GPT-2's vocabulary)
    vocab_size: int | None = None   # --tokenizer bpe: its vocabulary size (None: BPE_VOCAB_SIZE)
    init: str = "scratch"        # scratch, a GPT-2 size (gpt2 .. gpt2-xl), gpt2-random, or a GPT-2 file/folder
    # the run
    device: str = "cpu"          # cpu (NumPy), gpu (CuPy), or standin (the CPU stand-in for CuPy)
    dtype: str = "float32"
    seed: int = 1337
    out_dir: str = "out/shakespeare"
    data: str | None = None      # a text file; default: Tiny Shakespeare, found or downloaded
    resume: bool = False         # continue the run in out_dir from its last.npz
    overwrite: bool = False      # start afresh in an out_dir that holds another run, deleting its files
    max_seconds: float = 0.0     # stop (evaluate, save, summarise) once the run has taken this long; 0: no limit


PRESETS = {
    # nanoGPT's README: "baby GPT" on a CPU.
    "cpu": {},
    # nanoGPT's config/train_shakespeare_char.py: the model it trains on one GPU.
    "gpu": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                max_iters=5000, lr_decay_iters=5000, eval_iters=200, device="gpu"),
}

MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias")
TOKENIZERS = ("char", "bpe", "gpt2")
BPE_VOCAB_SIZE = 512
# --init: "scratch" builds the model from the flags; a GPT-2 size or path loads GPT-2's weights;
# "gpt2-random" is GPT-2 small's shape with random weights (to try the fine-tuning path without them).
RANDOM_GPT2 = "gpt2-random"
# What --init decides: the model's shape (--block-size may only crop it) and, for GPT-2's weights, the
# tokenizer. Left out (None), they are taken from the model; given, they must agree with it.
FROM_INIT = ("n_layer", "n_head", "n_embd", "block_size", "bias", "tokenizer")
DEVICES = {"cpu": "numpy", "gpu": "cupy", "standin": "standin"}


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN or inf."""


class SettingsError(ValueError):
    """A setting is out of range or does not fit the run; the message names the flag, value and fix."""


class WriteFailed(OSError):
    """The run could not write to its folder (read-only, full, not a folder); what was saved is kept."""


class Interrupted(Exception):
    """Ctrl-C ended the run; the message says what was saved."""


def flag(name: str) -> str:
    """A TrainConfig field's command-line flag: n_layer -> --n-layer."""
    return "--" + name.replace("_", "-")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_settings(cfg: "TrainConfig") -> None:
    """Raise SettingsError naming every setting of ``cfg`` that is out of range, before any work is done.

    Each message names the flag, the value and what is allowed, e.g. ``--batch-size 0: must be an
    integer >= 1``.
    """
    problems = []

    def need(ok: bool, name: str, rule: str) -> None:
        if not ok:
            problems.append(f"{flag(name)} {getattr(cfg, name)!r}: {rule}")

    pretrained = cfg.init != "scratch"
    from_init = {name for name in FROM_INIT if pretrained and getattr(cfg, name) is None}  # filled in by train
    for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum", "eval_interval",
                 "eval_iters", "log_interval"):
        if name not in from_init:
            need(_is_int(getattr(cfg, name)) and getattr(cfg, name) >= 1, name, "must be an integer >= 1")
    for name in ("max_iters", "warmup_iters", "sample_chars", "seed"):
        need(_is_int(getattr(cfg, name)) and getattr(cfg, name) >= 0, name, "must be an integer >= 0")
    need(_is_int(cfg.lr_decay_iters) and _is_int(cfg.warmup_iters) and cfg.lr_decay_iters >= cfg.warmup_iters,
         "lr_decay_iters", f"must be an integer >= --warmup-iters ({cfg.warmup_iters}): the cosine decay "
         "follows the warmup")
    if not problems and not {"n_embd", "n_head"} & from_init and cfg.n_embd % cfg.n_head:
        problems.append(f"--n-head {cfg.n_head}: must divide --n-embd {cfg.n_embd} (each head gets "
                        "n_embd / n_head features)")
    need(_is_number(cfg.dropout) and 0 <= cfg.dropout < 1, "dropout", "must be a probability in [0, 1)")
    need(_is_number(cfg.lr) and cfg.lr > 0, "lr", "must be a finite number > 0")
    need(_is_number(cfg.min_lr) and 0 <= cfg.min_lr <= (cfg.lr if _is_number(cfg.lr) else math.inf),
         "min_lr", f"must be between 0 and --lr ({cfg.lr})")
    for name in ("beta1", "beta2"):
        need(_is_number(getattr(cfg, name)) and 0 <= getattr(cfg, name) < 1, name, "must be in [0, 1)")
    need(_is_number(cfg.weight_decay) and cfg.weight_decay >= 0, "weight_decay", "must be a finite number >= 0")
    need(_is_number(cfg.grad_clip) and cfg.grad_clip >= 0, "grad_clip",
         "must be a finite number >= 0 (0 turns clipping off)")
    need(_is_number(cfg.max_seconds) and cfg.max_seconds >= 0, "max_seconds",
         "must be a finite number >= 0 (0: no time limit)")
    need(cfg.device in DEVICES, "device", f"must be one of {', '.join(DEVICES)}")
    need(cfg.dtype in ("float32", "float64"), "dtype", "must be float32 or float64")
    need(isinstance(cfg.out_dir, str) and cfg.out_dir != "", "out_dir", "must name a folder")
    need(cfg.data is None or (isinstance(cfg.data, str) and cfg.data != ""), "data", "must name a text file")
    for name in ("bias", "resume", "overwrite"):
        if name not in from_init:
            need(isinstance(getattr(cfg, name), bool), name, "must be True or False")
    need(isinstance(cfg.init, str) and cfg.init != "", "init",
         f"must be scratch, {', '.join(gpt2.SIZES)}, {RANDOM_GPT2}, or the path of a GPT-2 model.safetensors "
         "file or folder")
    if "tokenizer" not in from_init:
        need(cfg.tokenizer in TOKENIZERS, "tokenizer", f"must be one of {', '.join(TOKENIZERS)}")
    if cfg.vocab_size is not None:
        need(_is_int(cfg.vocab_size) and cfg.vocab_size >= 257, "vocab_size",
             "must be an integer >= 257 (the 256 bytes and <|endoftext|>)")
        if cfg.tokenizer != "bpe" and not (cfg.tokenizer is None and cfg.init == RANDOM_GPT2):
            problems.append(f"--vocab-size {cfg.vocab_size}: only --tokenizer bpe has a vocabulary size to "
                            f"choose (--tokenizer {cfg.tokenizer or 'gpt2'} has its own); leave it out")
    if cfg.resume is True and cfg.overwrite is True:
        problems.append("--resume and --overwrite: choose one (--resume continues the run in --out-dir, "
                        "--overwrite deletes it and starts afresh)")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))


def json_safe(value):
    """``value`` with every NaN or infinity replaced by None, so that json.dumps writes strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def to_json(value) -> str:
    """Strict JSON (NaN and infinity become null), which every JSON parser reads."""
    return json.dumps(json_safe(value), allow_nan=False)


def model_config(cfg: TrainConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, seed=cfg.seed, **{f: getattr(cfg, f) for f in MODEL_FIELDS})


def new_run_config(given: dict, preset: str | None = None) -> TrainConfig:
    """The settings of a new run: the preset's (default cpu), then the flags ``given``.

    With ``--init`` other than scratch, the model's shape and tokenizer come from the initial model: the
    preset's values for them are dropped and those not given are None until ``train`` reads the model.
    """
    settings = {**PRESETS[preset or "cpu"], **given}
    if settings.get("init", "scratch") != "scratch":
        settings = {**{name: value for name, value in settings.items() if name not in FROM_INIT},
                    **{name: None for name in FROM_INIT}, **given}
    return TrainConfig(**settings)


def gpt2_tokenizer_for(init: str, log=print) -> BPETokenizer:
    """GPT-2's tokenizer: from the vocab.json and merges.txt beside the --init model (a save_pretrained
    folder holds them), else from the cache, downloaded there on first use."""
    beside = Path(init) if Path(init).is_dir() else Path(init).parent
    if init not in gpt2.SIZES and (beside / "vocab.json").is_file() and (beside / "merges.txt").is_file():
        return BPETokenizer.from_gpt2_files(beside / "vocab.json", beside / "merges.txt")
    try:
        gpt2.download_gpt2_vocab(log=log)      # to the cache, on first use
    except FileNotFoundError:
        pass                                   # no network: gpt2_tokenizer() says what to fetch, and where
    try:
        return gpt2_tokenizer()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}\nor put vocab.json and merges.txt beside the model given to --init "
                                "(a folder written by save_pretrained has them).") from None


def make_tokenizer(cfg: TrainConfig, text: str, log=print):
    """The tokenizer of a new run. A BPE is trained on the training split only (data.split_text), so the
    validation loss is measured on text the tokenizer never saw, as it is for the model."""
    if cfg.tokenizer == "char":
        return CharTokenizer.from_text(text)  # every character of the text, so that val can be encoded too
    if cfg.tokenizer == "gpt2":
        return gpt2_tokenizer_for(cfg.init, log)
    train_text, _ = split_text(text)
    log(f"training a BPE of {cfg.vocab_size} tokens on the training split ({len(train_text):,} characters)")
    return BPETokenizer.train(train_text, cfg.vocab_size)


def start_from_init(cfg: TrainConfig, text: str, log=print):
    """What a new run starts from: -> (cfg with the settings --init decides filled in, the tokenizer, the
    model's vocabulary size, its initial weights as a state dict, or None for random ones).

    scratch: the model the flags describe, and the tokenizer --tokenizer names. gpt2-random: GPT-2
    small's shape with random weights, and a BPE trained on the text unless --tokenizer says otherwise.
    A GPT-2 size or path: GPT-2's weights (load_gpt2), cropped to --block-size, and GPT-2's tokenizer.
    Flags that disagree with the model are refused, before the weights are read where the name tells
    the shape.
    """
    if cfg.init == "scratch":
        if cfg.tokenizer == "bpe":
            cfg = dataclasses.replace(cfg, vocab_size=cfg.vocab_size or BPE_VOCAB_SIZE)
        tokenizer = make_tokenizer(cfg, text, log)
        return cfg, tokenizer, tokenizer.vocab_size, None
    pretrained = cfg.init != RANDOM_GPT2
    if pretrained and cfg.init not in gpt2.SIZES and not Path(cfg.init).exists():
        raise FileNotFoundError(f"--init {cfg.init}: neither scratch, a GPT-2 size ({', '.join(gpt2.SIZES)}), "
                                f"{RANDOM_GPT2}, nor an existing file or folder. Give one of those names, or the "
                                "path of a GPT-2 model.safetensors or of a folder that holds one.")
    kind = cfg.tokenizer or ("gpt2" if pretrained else "bpe")
    if pretrained and kind != "gpt2":
        raise SettingsError(f"--tokenizer {kind}: the weights of --init {cfg.init} read GPT-2's tokens; leave "
                            "--tokenizer out (or use --init gpt2-random to train GPT-2's shape on other tokens).")
    if pretrained and cfg.vocab_size is not None:
        raise SettingsError(f"--vocab-size {cfg.vocab_size}: the weights of --init {cfg.init} read GPT-2's "
                            "tokens, whose number is fixed; leave --vocab-size out.")
    cfg = dataclasses.replace(cfg, tokenizer=kind,
                              vocab_size=(cfg.vocab_size or BPE_VOCAB_SIZE) if kind == "bpe" else None)

    def refuse_conflicts(model: GPTConfig) -> None:
        problems = [f"{flag(name)} {getattr(cfg, name)}: the model of --init {cfg.init} has {getattr(model, name)}"
                    for name in ("n_layer", "n_head", "n_embd", "bias")
                    if getattr(cfg, name) is not None and getattr(cfg, name) != getattr(model, name)]
        if cfg.block_size is not None and cfg.block_size > model.block_size:
            problems.append(f"--block-size {cfg.block_size}: the model of --init {cfg.init} has a context of "
                            f"{model.block_size} positions; a smaller --block-size crops it, a larger one "
                            "would need positions it never learned")
        if problems:
            raise SettingsError(f"--init {cfg.init} takes the model's shape from the model: leave these flags "
                                "out (--block-size may shorten the context):\n  " + "\n  ".join(problems))

    by_name = gpt2.gpt2_config("gpt2" if not pretrained else cfg.init) \
        if not pretrained or cfg.init in gpt2.SIZES else None
    if by_name is not None:
        refuse_conflicts(by_name)              # before anything slow: a BPE to train, weights to read
    tokenizer = make_tokenizer(cfg, text, log)
    state = None
    if pretrained:
        model = gpt2.load_gpt2(cfg.init, dtype=cfg.dtype, log=log)
        shape, state = model.config, model.state_dict()   # host copies; the model itself is let go
        del model
        refuse_conflicts(shape)
    else:
        shape = by_name
    block_size = cfg.block_size or shape.block_size
    if state is not None and block_size < shape.block_size:
        state["wpe.weight"] = state["wpe.weight"][:block_size]   # the first positions: a shorter context
    if tokenizer.vocab_size > shape.vocab_size:
        raise SettingsError(f"--init {cfg.init}: its model reads {shape.vocab_size:,} token ids, but the "
                            f"tokenizer has {tokenizer.vocab_size:,}. Give the model's own vocabulary files "
                            "(vocab.json and merges.txt beside it), or a smaller --vocab-size.")
    cfg = dataclasses.replace(cfg, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd,
                              bias=shape.bias, block_size=block_size)
    return cfg, tokenizer, shape.vocab_size, state


def accumulate_gradients(model, x, y, grad_accum: int):
    """One step's gradient from the batch x, y [grad_accum·B, T], computed in grad_accum micro-batches
    of B rows; returns the step's loss (a backend scalar).

    The step's loss is the mean of the micro-batches' losses, L = (1/N) Σᵢ Lᵢ with N = grad_accum; each
    Lᵢ is the mean over its B·T tokens, so L is the mean over all N·B·T tokens, the loss of the whole
    batch at once. Its gradient is (1/N) Σᵢ ∇Lᵢ: each backward adds its ∇Lᵢ into param.grad, and the sum
    is divided by N once at the end. Only one micro-batch's activations are alive at a time, so a step
    needs the memory of a batch of B and gets the gradient of a batch of N·B.
    """
    micro = x.shape[0] // grad_accum
    model.zero_grad()
    total = 0.0
    for i in range(grad_accum):
        rows = slice(i * micro, (i + 1) * micro)
        _, loss = model(x[rows], y[rows])                    # [B, T] -> the mean loss of this micro-batch
        model.backward()                                     # param.grad += ∇Lᵢ
        total = total + loss
    if grad_accum > 1:
        for p in model.parameters():
            p.grad /= grad_accum                             # the sum of N gradients -> their mean
    return total / grad_accum


def estimate_loss(model, dataset, cfg: TrainConfig, it: int, should_stop=lambda: False) -> dict | None:
    """Mean loss over eval_iters batches of each split, dropout off; None if ``should_stop()`` turned
    true on the way (Ctrl-C during a long evaluation).

    The batches come from a generator seeded by (seed, iteration), not the training sampler, so
    evaluating does not change which batches training sees (and resume stays exact).
    """
    model.eval()
    out = {}
    try:
        for i, split in enumerate(("train", "val")):
            rng = backend.new_host_rng([cfg.seed, it, i])
            losses = []
            for _ in range(cfg.eval_iters):
                if should_stop():
                    return None
                x, y = dataset.get_batch(split, cfg.batch_size, cfg.block_size, rng)
                losses.append(float(model(x, y)[1]))
            out[split] = sum(losses) / len(losses)
    finally:
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


# --- the run's folder ----------------------------------------------------------------------------------

# What a resumed run may change (the optimisation and the bookkeeping) and what it may not: the settings
# that fix the weights' shapes, the text it learns from, and the seed of its evaluation batches.
FIXED_ON_RESUME = ("n_layer", "n_head", "n_embd", "block_size", "bias", "seed", "data", "tokenizer",
                   "vocab_size", "init")
SHAPE_FIELDS = ("vocab_size", "n_layer", "n_head", "n_embd", "block_size", "bias")


def latest_checkpoint(out_dir) -> Path:
    """The checkpoint to resume from: last.npz, or ckpt.npz for a run saved before last.npz existed."""
    out_dir = Path(out_dir)
    latest = out_dir / LATEST_NAME
    return latest if latest.exists() or not (out_dir / CHECKPOINT_NAME).exists() else out_dir / CHECKPOINT_NAME


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resume_config(out_dir, given: dict) -> TrainConfig:
    """The settings of the run saved in ``out_dir``, read from its checkpoint, with the settings in
    ``given`` (the flags given on the command line) applied where they may change.

    Settings that cannot change on resume (FIXED_ON_RESUME) are refused when they differ from the
    recorded ones; ``data`` may name another path only if the file's content (SHA-256) is the same.
    """
    path = latest_checkpoint(out_dir)
    checkpoint = load_checkpoint(path)
    recorded = checkpoint.config.get("train")
    if not isinstance(recorded, dict):
        raise CheckpointError(f"{path} records no training settings (it was not written by "
                              "scripts/train_shakespeare.py), so --resume cannot continue it.")
    names = {field.name for field in dataclasses.fields(TrainConfig)}
    settings = {name: value for name, value in recorded.items() if name in names}
    corpus = checkpoint.config.get("data") or {}
    if corpus.get("path"):
        settings["data"] = corpus["path"]
        if corpus.get("sha256") == SHAKESPEARE_SHA256 and not Path(corpus["path"]).is_file():
            settings["data"] = None  # Tiny Shakespeare: find it again (cache, download, shared copy)
    for name, value in given.items():
        if name not in FIXED_ON_RESUME or value == settings.get(name):
            continue
        if name == "data" and corpus.get("sha256") and Path(value).is_file() \
                and file_sha256(value) == corpus["sha256"]:
            continue  # the same text, moved
        was = corpus.get("path", settings.get(name)) if name == "data" else settings.get(name)
        raise SettingsError(f"{flag(name)} {value}: the run in {out_dir} was trained with {flag(name)} {was}, "
                            "and a resumed run must keep it. Leave the flag out to resume with the recorded "
                            "value, or start a new run in another --out-dir.")
    settings.update(given)
    settings.update(out_dir=str(out_dir), resume=True, overwrite=given.get("overwrite", False))
    check_settings(TrainConfig(**settings))
    if settings["max_iters"] <= checkpoint.iteration:
        if "max_iters" in given:
            raise SettingsError(f"--max-iters {given['max_iters']}: the run in {out_dir} is already at "
                                f"iteration {checkpoint.iteration}, so there is nothing to train. Pass a "
                                f"--max-iters above {checkpoint.iteration} to train on.")
        raise SettingsError(f"the run in {out_dir} has finished: it is at iteration {checkpoint.iteration} "
                            f"of --max-iters {settings['max_iters']}. Pass a larger --max-iters to train on.")
    return TrainConfig(**settings)


def _previous_run_files(out_dir: Path) -> list:
    names = (CHECKPOINT_NAME, LATEST_NAME, METRICS_NAME, PLOT_NAME)
    return [out_dir / name for name in names if (out_dir / name).exists()]


def _read_metrics(path: Path, log) -> list:
    """The records of metrics.jsonl; a line that does not parse (torn by a full disk or a kill during
    an append) is dropped, with a note."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            log(f"{path}: dropped line {number}, which is not a whole JSON record ({err}); it was torn "
                "while being written, and the checkpoint does not depend on it")
    return [r for r in records if isinstance(r, dict) and "iter" in r and "kind" in r]


def _link_atomically(source: Path, target: Path) -> None:
    """Make ``target`` the same file as ``source`` in one rename, without copying a byte (a GPT-2
    checkpoint is 1.5 GB). A hard link is safe here because a checkpoint is never written in place:
    the next save of ``source`` is a new file renamed over it, and ``target`` keeps this content."""
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:                  # a file system without hard links: copy
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


# --- the run -------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, log=print) -> dict:
    """Run (or resume) a training run; returns the summary that the script prints as JSON.

    Raises SettingsError (a bad setting, or a folder that holds another run), CheckpointError,
    FolderInUse (another run owns ``out_dir``), WriteFailed, TrainingDiverged, or Interrupted (a second
    Ctrl-C, or one outside the training loop). A first Ctrl-C, or a closed output pipe, ends the run at
    the next step with the state saved in last.npz; the summary says ``"interrupted": true``.
    """
    start_time = time.perf_counter()
    check_settings(cfg)
    out_dir = Path(cfg.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SettingsError(f"--out-dir {out_dir} is a file, not a folder: choose another --out-dir.")

    # Everything is read and checked before the folder is touched.
    checkpoint = load_checkpoint(latest_checkpoint(out_dir)) if cfg.resume else None
    corpus = find_shakespeare(cfg.data, log=log)
    text = read_text(corpus)
    corpus_record = {"path": str(corpus.resolve()), "sha256": file_sha256(corpus)}
    if checkpoint:
        recorded = checkpoint.config.get("data") or {}
        if recorded.get("sha256") and recorded["sha256"] != corpus_record["sha256"]:
            raise SettingsError(f"--data {corpus}: not the text the run in {out_dir} was trained on "
                                f"({recorded.get('path')}, SHA-256 {recorded['sha256'][:16]}...; this file's "
                                f"is {corpus_record['sha256'][:16]}...). Resume on that text, or start a new "
                                "run in another --out-dir.")
    if not cfg.resume:
        _refuse_a_previous_run(cfg)  # before the slow part (a BPE to train, GPT-2's weights to read)
    backend.use(DEVICES[cfg.device], dtype=cfg.dtype)
    if checkpoint:
        tokenizer = tokenizer_from_dict(checkpoint.tokenizer)
        model_vocab_size, initial_state = checkpoint.config["model"]["vocab_size"], None
    else:
        cfg, tokenizer, model_vocab_size, initial_state = start_from_init(cfg, text, log)
    dataset = TextDataset(text, tokenizer)
    for split in ("train", "val"):
        if len(getattr(dataset, split)) <= cfg.block_size:
            raise SettingsError(f"--data {corpus}: its {split} split has {len(getattr(dataset, split))} "
                                f"tokens, too few for --block-size {cfg.block_size}. Use a longer text "
                                "or a smaller --block-size.")
    gpt_config = model_config(cfg, model_vocab_size)
    if checkpoint:
        check_config({k: checkpoint.config["model"].get(k) for k in SHAPE_FIELDS},
                     {k: getattr(gpt_config, k) for k in SHAPE_FIELDS})

    try:
        lock = RunLock(out_dir, log)
        lock.__enter__()
    except OSError as err:
        raise WriteFailed(f"cannot write to --out-dir {out_dir} ({err.strerror or err}): choose a folder "
                          "you can write to.") from err
    try:
        remove_stale_temporaries(out_dir, log)
        if not cfg.resume:
            previous = _refuse_a_previous_run(cfg)
            for path in previous:
                path.unlink()
            if previous:
                log(f"--overwrite: deleted the previous run's {', '.join(p.name for p in previous)} in {out_dir}")
        return _train_in_folder(cfg, log, start_time, checkpoint, dataset, gpt_config, corpus_record,
                                initial_state)
    except KeyboardInterrupt:
        raise Interrupted("interrupted during start-up; no training step was run") from None
    except OSError as err:
        raise WriteFailed(f"writing to {out_dir} failed ({err}). The checkpoints saved before are kept; "
                          "free some space or choose a writable --out-dir, then continue with --resume.") from err
    finally:
        lock.__exit__(None, None, None)


def _refuse_a_previous_run(cfg: TrainConfig) -> list:
    """The files of a previous run in out_dir (to delete with --overwrite); SettingsError without it."""
    out_dir = Path(cfg.out_dir)
    previous = _previous_run_files(out_dir)
    if previous and not cfg.overwrite:
        raise SettingsError(
            f"--out-dir {out_dir} already holds a training run ({', '.join(p.name for p in previous)}). "
            "Continue it with --resume, replace it with --overwrite (deletes those files), or "
            "choose another --out-dir.")
    return previous


def _train_in_folder(cfg, log, start_time, checkpoint, dataset, gpt_config, corpus_record,
                     initial_state=None) -> dict:
    out_dir = Path(cfg.out_dir)
    ckpt_path, latest_path = out_dir / CHECKPOINT_NAME, out_dir / LATEST_NAME
    metrics_path, plot_path = out_dir / METRICS_NAME, out_dir / PLOT_NAME
    model = GPT(gpt_config)
    optimizer = AdamW(model.named_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                      weight_decay=cfg.weight_decay)
    rng = backend.new_host_rng(cfg.seed)  # draws the training batches
    start_iter, best_val, records, evaluated_at_start = 0, math.inf, [], False
    if initial_state is not None:         # --init: GPT-2's weights; AdamW starts afresh
        model.load_state_dict(initial_state)
        initial_state.clear()             # its arrays are in the model now: free the host copies
    if checkpoint:
        restore(checkpoint, model, optimizer)
        rng.bit_generator.state = checkpoint.rng_state["batches"]
        if "dropout" in checkpoint.rng_state:  # absent when the run was saved under CuPy
            set_dropout_states(model, checkpoint.rng_state["dropout"])
        start_iter, best_val = checkpoint.iteration, checkpoint.extra["best_val_loss"]
        best_val = math.inf if best_val is None else best_val
        evaluated_at_start = checkpoint.extra.get("evaluated", True)
        if metrics_path.exists():  # forget what the interrupted run logged after its checkpoint
            records = [r for r in _read_metrics(metrics_path, log)
                       if r["iter"] < start_iter or (r["kind"] == "eval" and r["iter"] == start_iter
                                                     and evaluated_at_start)]
        log(f"resuming from {latest_checkpoint(out_dir)} at iteration {start_iter} (best val loss "
            f"{best_val:.4f}), settings as recorded there; training on to iteration {cfg.max_iters}")
    _write_atomically(metrics_path, "".join(to_json(r) + "\n" for r in records))

    # A first Ctrl-C, or a closed output pipe, asks the loop to stop between steps (and evaluation
    # between batches), so that the state it saves is consistent. A second Ctrl-C stops at once.
    stop = {"reason": None}

    def on_ctrl_c(*_):
        if stop["reason"] is not None:
            raise KeyboardInterrupt
        stop["reason"] = "interrupted"
        try:  # os.write, not print: a signal handler may run in the middle of a print
            os.write(2, b"\nCtrl-C: saving the run and stopping (press Ctrl-C again to stop without saving)\n")
        except OSError:
            pass  # no terminal to tell; the run stops and saves all the same

    def say(message: str) -> None:
        if stop["reason"] == "output closed":
            return
        try:
            log(message)
        except BrokenPipeError:  # e.g. piped into `head`, which has exited: save and stop quietly
            stop["reason"] = "output closed"

    def record(entry: dict) -> None:
        records.append(entry)
        with open(metrics_path, "a") as f:
            f.write(to_json(entry) + "\n")

    def save(path: Path, it: int, evaluated: bool) -> None:
        rng_state = {"batches": rng.bit_generator.state}
        if backend.name() != "cupy":  # CuPy's generators cannot report their state
            rng_state["dropout"] = dropout_states(model)
        save_checkpoint(path, model=model, optimizer=optimizer, iteration=it, rng_state=rng_state,
                        config={"model": gpt_config.to_dict(), "train": dataclasses.asdict(cfg),
                                "data": corpus_record},
                        tokenizer=dataset.tokenizer.to_dict(),
                        extra={"best_val_loss": json_safe(best_val), "evaluated": evaluated})

    unused_rows = gpt_config.vocab_size - dataset.tokenizer.vocab_size   # gpt2-random: GPT-2's rows, fewer tokens
    say(f"model: {model.num_parameters():,} parameters; data: {len(dataset.train):,} train and "
        f"{len(dataset.val):,} val tokens, vocabulary {dataset.tokenizer.vocab_size}"
        + (f" (in the model's {gpt_config.vocab_size:,} rows)" if unused_rows else "")
        + f"; backend {backend.name()} {cfg.dtype}")
    step_times, last_loss, it, time_limit_reached = [], None, start_iter, False
    deadline = start_time + cfg.max_seconds if cfg.max_seconds > 0 else math.inf
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    clip = clip_bound(cfg.grad_clip)                          # 0: no clipping
    previous_handler = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        for it in range(start_iter, cfg.max_iters + 1):
            out_of_time = time.perf_counter() >= deadline  # then this iteration ends the run, as max_iters
            evaluate = it % cfg.eval_interval == 0 or it == cfg.max_iters or out_of_time
            evaluation_cut_short = False
            if evaluate and not (checkpoint and it == start_iter and evaluated_at_start):
                losses = estimate_loss(model, dataset, cfg, it, should_stop=lambda: stop["reason"] is not None)
                evaluation_cut_short = losses is None  # a resumed run evaluates this iteration again
                if losses is not None:
                    say(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
                    record({"kind": "eval", "iter": it, "train_loss": losses["train"],
                            "val_loss": losses["val"]})
                    plot_losses(records, plot_path)
                    improved = losses["val"] < best_val
                    best_val = min(best_val, losses["val"])
                    save(latest_path, it, evaluated=True)  # first: resume needs it, and ckpt.npz may wait
                    if improved:
                        _link_atomically(latest_path, ckpt_path)  # the same state: no second write
            if stop["reason"] is not None:
                save(latest_path, it, evaluated=not evaluation_cut_short)
                say(f"{stop['reason']}: saved iteration {it} to {latest_path}; continue with --resume")
                break
            if it == cfg.max_iters:
                break
            if out_of_time:
                say(f"time limit of {cfg.max_seconds:g} s reached: stopping at iteration {it}, saved in "
                    f"{latest_path}; continue with --resume")
                time_limit_reached = True
                break

            t0 = time.perf_counter()
            lr = cosine_lr(it, lr=cfg.lr, min_lr=cfg.min_lr, warmup_iters=cfg.warmup_iters,
                           lr_decay_iters=cfg.lr_decay_iters)
            # All grad_accum micro-batches drawn at once: the same windows as one batch of that size.
            x, y = dataset.get_batch("train", cfg.batch_size * cfg.grad_accum, cfg.block_size, rng)
            loss = accumulate_gradients(model, x, y, cfg.grad_accum)
            grad_norm = clip_grad_norm(model.parameters(), clip)
            last_loss = float(loss)  # copies one number from the device: also waits for the GPU
            if not (math.isfinite(last_loss) and math.isfinite(grad_norm)):
                raise TrainingDiverged(
                    f"iteration {it}: loss {last_loss}, gradient norm {grad_norm}. Training stopped before "
                    f"the update; the last good checkpoints ({ckpt_path}, {latest_path}) are untouched. Try "
                    "a lower --lr or --dtype float64.")
            optimizer.step(lr)
            backend.synchronize()
            step_times.append(time.perf_counter() - t0)

            if it % cfg.log_interval == 0:
                ms = 1000 * statistics.median(step_times[-cfg.log_interval:])
                eta = (cfg.max_iters - it - 1) * ms / 1000
                say(f"iter {it}: loss {last_loss:.4f}, lr {lr:.2e}, time {ms:.1f}ms, "
                    f"{tokens_per_step / ms * 1000:,.0f} tok/s, ETA {_format_eta(eta)}")
                record({"kind": "train", "iter": it, "loss": last_loss, "lr": lr, "ms": ms})
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted again: stopped without saving; {latest_path} holds the state of the "
                          "last evaluation; continue with --resume") from None
    finally:
        signal.signal(signal.SIGINT, previous_handler)

    sample = ""
    if stop["reason"] is None:
        model.eval()
        prompt = backend.asarray(dataset.tokenizer.encode("\n")[None, :])
        try:
            sample = dataset.tokenizer.decode(generate(model, prompt, cfg.sample_chars, temperature=0.8,
                                                       seed=cfg.seed, vocab_size=dataset.tokenizer.vocab_size)[0])
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted while sampling; the run is complete and saved in {out_dir}") \
                from None
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
        "latest": str(latest_path),
        "interrupted": stop["reason"] is not None,
        "stop_reason": stop["reason"],
        "time_limit_reached": time_limit_reached,
        "sample": sample,
    }
