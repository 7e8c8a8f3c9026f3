"""Where a new run starts: its tokenizer (characters, a BPE trained on the training split, or GPT-2's)
and its initial weights (random, or GPT-2's, from ``--init``).

A resumed run starts from none of this: it reads its tokenizer and weights back from its checkpoint.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..data import split_text
from ..models.gpt import GPTConfig
from ..pretrained import gpt2
from ..tokenizers import BPETokenizer, CharTokenizer, gpt2_tokenizer
from ..tokenizers.gpt2 import download_gpt2_vocab
from .settings import BPE_VOCAB_SIZE, RANDOM_GPT2, SettingsError, TrainConfig, flag


def gpt2_tokenizer_for(init: str, log=print) -> BPETokenizer:
    """GPT-2's tokenizer: from the vocab.json and merges.txt beside the --init model (a save_pretrained
    folder holds them), else from the cache, downloaded there on first use."""
    beside = Path(init) if Path(init).is_dir() else Path(init).parent
    if not gpt2.is_published(init) and (beside / "vocab.json").is_file() and (beside / "merges.txt").is_file():
        return BPETokenizer.from_gpt2_files(beside / "vocab.json", beside / "merges.txt")
    try:
        download_gpt2_vocab(log=log)           # to the cache, on first use
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
    log(f"training a BPE of {cfg.bpe_vocab_size} tokens on the training split ({len(train_text):,} characters)")
    return BPETokenizer.train(train_text, cfg.bpe_vocab_size)


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
            cfg = dataclasses.replace(cfg, bpe_vocab_size=cfg.bpe_vocab_size or BPE_VOCAB_SIZE)
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
    if pretrained and cfg.bpe_vocab_size is not None:
        raise SettingsError(f"--vocab-size {cfg.bpe_vocab_size}: the weights of --init {cfg.init} read GPT-2's "
                            "tokens, whose number is fixed; leave --vocab-size out.")
    cfg = dataclasses.replace(cfg, tokenizer=kind,
                              bpe_vocab_size=(cfg.bpe_vocab_size or BPE_VOCAB_SIZE) if kind == "bpe" else None)

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
        if not pretrained or gpt2.is_published(cfg.init) else None     # (a folder ./gpt2 is read below)
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


