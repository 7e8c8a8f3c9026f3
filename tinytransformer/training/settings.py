"""The settings of a training run: TrainConfig, the presets, and one check for every setting.

``check_settings`` refuses every setting out of its range before any work is done, naming the flag, the
value and what is allowed (``--batch-size 0: must be an integer >= 1``). ``setting_problems`` holds the
rule of each setting that several scripts share (the demo scripts check their flags with it too), so
each rule and its message are written once.

``new_run_config`` makes the settings of a new run from a preset and the flags given; ``resume_config``
reads a run's settings back from its checkpoint and applies the flags that may change on resume.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..data import SHAKESPEARE_SHA256
from ..files import file_sha256
from ..models.gpt import GPTConfig
from ..module import is_int
from ..pretrained.gpt2 import SIZES as GPT2_SIZES
from .checkpoint import CheckpointError, load_checkpoint
from .run_folder import latest_checkpoint


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
    # the architecture: GPT-2's by default; LLaMA's is --positional rope --normalization rmsnorm
    # --activation swiglu --no-tie-weights (and --n-kv-head for grouped-query, --window for local attention)
    positional: str = "learned"
    normalization: str = "layernorm"
    activation: str = "gelu"
    tie_weights: bool = True
    n_kv_head: int | None = None
    window: int | None = None
    ffn_hidden: int | None = None
    rope_theta: float = 10000.0
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
    sample_chars: int = 300      # how many tokens the closing sample has (characters, for --tokenizer char)
    # the tokens and the starting point
    tokenizer: str | None = "char"  # char, bpe (trained on the training split), gpt2 (GPT-2's vocabulary)
    bpe_vocab_size: int | None = None  # --vocab-size, for --tokenizer bpe: how many tokens to learn (None:
    #                                    BPE_VOCAB_SIZE); the model's rows, GPTConfig.vocab_size, follow the tokenizer
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
    workers: int | None = None   # workers that share each batch's rows (step.py); None: step.default_workers


PRESETS = {
    # nanoGPT's README: "baby GPT" on a CPU.
    "cpu": {},
    # nanoGPT's config/train_shakespeare_char.py: the model it trains on one GPU.
    "gpu": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                max_iters=5000, lr_decay_iters=5000, eval_iters=200, device="gpu"),
}

# What the flags may change of GPT-2's architecture, and GPT-2's own choice for each (--init gpt2 needs it).
ARCHITECTURE = {"positional": "learned", "normalization": "layernorm", "activation": "gelu", "tie_weights": True,
                "n_kv_head": None, "window": None, "ffn_hidden": None}
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias", *ARCHITECTURE, "rope_theta")
TOKENIZERS = ("char", "bpe", "gpt2")
BPE_VOCAB_SIZE = 512
# --init: "scratch" builds the model from the flags; a GPT-2 size or path loads GPT-2's weights;
# "gpt2-random" is GPT-2 small's shape with random weights (to try the fine-tuning path without them).
RANDOM_GPT2 = "gpt2-random"
# What --init decides: the model's shape (--block-size may only crop it) and, for GPT-2's weights, the
# tokenizer. Left out (None), they are taken from the model; given, they must agree with it.
FROM_INIT = ("n_layer", "n_head", "n_embd", "block_size", "bias", "tokenizer")
# --device -> the backend that runs it; every script's --device means this.
DEVICES = {
    "cpu": "numpy",        # NumPy on the CPU
    "gpu": "cupy",         # CuPy on an NVIDIA GPU
    "standin": "standin",  # NumPy dressed up as CuPy: runs the GPU code path on a machine without a GPU
}
# What a resumed run may not change: the settings that fix the weights' shapes, the text it learns from,
# and the seed of its evaluation batches.
FIXED_ON_RESUME = ("n_layer", "n_head", "n_embd", "block_size", "bias", "seed", "data", "tokenizer",
                   "bpe_vocab_size", "init", *ARCHITECTURE, "rope_theta")
# What a checkpoint's model must share with the model it is loaded into (GPTConfig's names: vocab_size
# is the embedding's rows): its shapes, and what it computes with them.
MODEL_SHAPE_FIELDS = ("vocab_size", "n_layer", "n_head", "n_embd", "block_size", "bias", *ARCHITECTURE,
                      "rope_theta")


# Flags whose name is not the field's: the BPE's size keeps the flag every BPE tool calls it by.
FLAGS = {"bpe_vocab_size": "--vocab-size"}
# Fields renamed since checkpoints began to record them: a checkpoint's old name -> the field.
RENAMED = {"vocab_size": "bpe_vocab_size"}


class SettingsError(ValueError):
    """A setting is out of range or does not fit the run; the message names the flag, value and fix."""


def flag(name: str) -> str:
    """A setting's command-line flag: n_layer -> --n-layer (bpe_vocab_size -> --vocab-size)."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# One rule per setting: (the test, what the message says is allowed). iters, n_train and n_test are the
# demo scripts' settings (scripts/_demo_common.py); the rest are TrainConfig's.
_AT_LEAST_ONE = (lambda v: is_int(v) and v >= 1, "must be an integer >= 1")
_AT_LEAST_ZERO = (lambda v: is_int(v) and v >= 0, "must be an integer >= 0")
_IN_0_1 = (lambda v: is_number(v) and 0 <= v < 1, "must be in [0, 1)")
RULES = {
    **{name: _AT_LEAST_ONE for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum",
                                        "eval_interval", "eval_iters", "log_interval", "iters", "n_train",
                                        "n_test")},
    **{name: _AT_LEAST_ZERO for name in ("max_iters", "warmup_iters", "sample_chars", "seed")},
    "dropout": (lambda v: is_number(v) and 0 <= v < 1, "must be a probability in [0, 1)"),
    "lr": (lambda v: is_number(v) and v > 0, "must be a finite number > 0"),
    "beta1": _IN_0_1,
    "beta2": _IN_0_1,
    "weight_decay": (lambda v: is_number(v) and v >= 0, "must be a finite number >= 0"),
    "grad_clip": (lambda v: is_number(v) and v >= 0, "must be a finite number >= 0 (0 turns clipping off)"),
    "max_seconds": (lambda v: is_number(v) and v >= 0, "must be a finite number >= 0 (0: no time limit)"),
    "dtype": (lambda v: v in ("float32", "float64"), "must be float32 or float64"),
    "device": (lambda v: v in DEVICES, f"must be one of {', '.join(DEVICES)}"),
    "tokenizer": (lambda v: v in TOKENIZERS, f"must be one of {', '.join(TOKENIZERS)}"),
    **{name: (lambda v: isinstance(v, bool), "must be True or False")
       for name in ("bias", "tie_weights", "resume", "overwrite")},
    **{name: (lambda v, choices=choices: v in choices, f"must be one of {', '.join(choices)}")
       for name, choices in GPTConfig.CHOICES.items() if name != "norm"},
    **{name: (lambda v: v is None or (is_int(v) and v >= 1), "must be an integer >= 1 (or left out)")
       for name in ("n_kv_head", "window", "ffn_hidden", "workers")},
    "rope_theta": (lambda v: is_number(v) and v > 0, "must be a finite number > 0"),
}


def setting_problems(values: dict) -> list:
    """What is wrong with ``values`` (setting name -> value), one line per problem naming the flag, the
    value and what is allowed. Settings not in ``values`` are not checked."""
    problems = [f"{flag(name)} {value!r}: {RULES[name][1]}" for name, value in values.items()
                if name in RULES and not RULES[name][0](value)]
    n_embd, n_head = values.get("n_embd"), values.get("n_head")
    if is_int(n_embd) and is_int(n_head) and n_head >= 1 and n_embd % n_head:
        problems.append(f"--n-head {n_head}: must divide --n-embd {n_embd} (each head gets n_embd / n_head "
                        "features)")
    elif is_int(n_embd) and is_int(n_head) and n_head >= 1 and values.get("positional") == "rope" \
            and (n_embd // n_head) % 2:
        problems.append(f"--positional rope: the head size --n-embd / --n-head = {n_embd // n_head} must be even "
                        "(RoPE turns features in pairs)")
    n_kv_head = values.get("n_kv_head")
    if is_int(n_kv_head) and n_kv_head >= 1 and is_int(n_head) and n_head % n_kv_head:
        problems.append(f"--n-kv-head {n_kv_head}: must divide --n-head {n_head} (each key/value head serves "
                        "an equal group of query heads)")
    if "min_lr" in values:
        lr, min_lr = values.get("lr", math.inf), values["min_lr"]
        if not (is_number(min_lr) and 0 <= min_lr <= (lr if is_number(lr) else math.inf)):
            problems.append(f"{flag('min_lr')} {min_lr!r}: must be between 0 and --lr ({lr})")
    if "lr_decay_iters" in values:
        decay, warmup = values["lr_decay_iters"], values.get("warmup_iters", 0)
        if not (is_int(decay) and is_int(warmup) and decay >= warmup):
            problems.append(f"{flag('lr_decay_iters')} {decay!r}: must be an integer >= --warmup-iters "
                            f"({warmup}): the cosine decay follows the warmup")
    return problems


def check_settings(cfg: TrainConfig) -> None:
    """Raise SettingsError naming every setting of ``cfg`` that is out of range, before any work is done."""
    pretrained = cfg.init != "scratch"
    from_init = {name for name in FROM_INIT if pretrained and getattr(cfg, name) is None}  # filled in by train
    values = {name: value for name, value in dataclasses.asdict(cfg).items() if name not in from_init}
    problems = setting_problems(values)
    if not (isinstance(cfg.out_dir, str) and cfg.out_dir != ""):
        problems.append(f"--out-dir {cfg.out_dir!r}: must name a folder")
    if not (cfg.data is None or (isinstance(cfg.data, str) and cfg.data != "")):
        problems.append(f"--data {cfg.data!r}: must name a text file")
    if not (isinstance(cfg.init, str) and cfg.init != ""):
        problems.append(f"--init {cfg.init!r}: must be scratch, {', '.join(GPT2_SIZES)}, {RANDOM_GPT2}, or the "
                        "path of a GPT-2 model.safetensors file or folder")
    if cfg.bpe_vocab_size is not None:
        if not (is_int(cfg.bpe_vocab_size) and cfg.bpe_vocab_size >= 257):
            problems.append(f"--vocab-size {cfg.bpe_vocab_size!r}: must be an integer >= 257 (the 256 bytes and "
                            "<|endoftext|>)")
        if cfg.tokenizer != "bpe" and not (cfg.tokenizer is None and cfg.init == RANDOM_GPT2):
            problems.append(f"--vocab-size {cfg.bpe_vocab_size}: only --tokenizer bpe has a vocabulary size to "
                            f"choose (--tokenizer {cfg.tokenizer or 'gpt2'} has its own); leave it out")
    changed = [f"{flag(name)} {getattr(cfg, name)!r}" for name, gpt2 in ARCHITECTURE.items()
               if getattr(cfg, name) != gpt2]
    if pretrained and changed:
        problems.append(f"--init {cfg.init} with {', '.join(changed)}: GPT-2's weights come with GPT-2's "
                        "architecture; leave these flags out, or train from --init scratch")
    if is_int(cfg.workers) and cfg.workers > 1:
        if cfg.device != "cpu":
            problems.append(f"--workers {cfg.workers} with --device {cfg.device}: several workers share a step "
                            "among the CPU's cores; on a GPU leave --workers out (one stream of work)")
        if is_number(cfg.dropout) and cfg.dropout > 0:
            problems.append(f"--workers {cfg.workers} with --dropout {cfg.dropout}: each worker would draw its "
                            "dropout masks from a copy of the same generator; use --dropout 0 or --workers 1")
    if cfg.resume is True and cfg.overwrite is True:
        problems.append("--resume and --overwrite: choose one (--resume continues the run in --out-dir, "
                        "--overwrite deletes it and starts afresh)")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))


def model_config(cfg: TrainConfig, vocab_size: int) -> GPTConfig:
    """The GPT of a run; ``vocab_size`` is its embedding's rows (the tokenizer's ids, or GPT-2's rows)."""
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
    recorded = {RENAMED.get(name, name): value for name, value in recorded.items()}
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
