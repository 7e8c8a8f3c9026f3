"""GPT-2's published weights in our GPT: the four sizes, the name mapping, loading, export.

OpenAI's GPT-2 is the ``GPT`` of models/gpt.py with biases, tied input/output embeddings, learned
positions, tanh GELU, pre-norm blocks and LayerNorm eps 1e-5; only the names of the parameters differ,
and one packing: GPT-2's ``c_attn`` computes Q, K and V with one [d, 3d] matrix, ours with three [d, d].
Hugging Face's ``Conv1D`` stores its weight [in, out], as our ``Linear`` does, so no weight is transposed.

    model = load_gpt2("gpt2")                 # downloads model.safetensors (548 MB) on first use
    model = load_gpt2("path/to/folder")       # a save_pretrained folder, or a .safetensors file
    save_gpt2(model, "out/my_gpt2")           # transformers.GPT2LMHeadModel.from_pretrained reads it

The checkpoints are the ``model.safetensors`` files of https://huggingface.co/openai-community/<name>.
A folder or file shared by someone else is checked before anything is built from it: its config.json
against the tensors' shapes (so that n_layer 10⁶ is an error, not a model that fills the memory), every
tensor's name and shape, and every weight for NaN and infinity.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy

from .. import backend
from ..files import atomic_write, finish_replacing_folder, replace_folder
from ..models.gpt import GPT, GPTConfig
from ..module import Parameter
from ..tokenizers.gpt2 import gpt2_file
from .common import check_architecture, check_finite, check_sizes, files_to_keep, read_config_json
from .safetensors import SafetensorsError, read_safetensors, write_safetensors

# name: (n_layer, n_head, n_embd). All four read 50,257 tokens and a context of 1,024.
SIZES = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280),
         "gpt2-xl": (48, 25, 1600)}
VOCAB_SIZE, CONTEXT = 50257, 1024
SAVED_FILES = ("model.safetensors", "config.json")     # what save_gpt2 writes
CONFIG_FIX = ("Correct it, or delete it to take the shape from the tensors (then give the number of heads: "
              "load_gpt2(path, n_head=...)).")


def gpt2_config(name: str = "gpt2", **overrides) -> GPTConfig:
    """The GPTConfig of a published GPT-2 size; ``overrides`` change fields (e.g. block_size, dropout)."""
    if name not in SIZES:
        raise ValueError(f"Unknown GPT-2 size {name!r}; choose one of {', '.join(SIZES)}.")
    n_layer, n_head, n_embd = SIZES[name]
    fields = dict(vocab_size=VOCAB_SIZE, block_size=CONTEXT, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                  dropout=0.0, bias=True, norm="pre", activation="gelu", positional="learned",
                  tie_weights=True)
    return GPTConfig(**{**fields, **overrides})


def check_gpt2_architecture(config: GPTConfig) -> None:
    """Refuse a configuration that GPT-2's architecture (and its file format) cannot hold."""
    check_architecture(config, {"norm": "pre", "positional": "learned", "activation": "gelu", "bias": True,
                                "tie_weights": True, "normalization": "layernorm", "n_kv_head": None,
                                "window": None}, "GPT-2")


# --- the names: ours <-> GPT-2's ---------------------------------------------------------------------------

# One row per parameter of block i: our name (under blocks.{i}.), GPT-2's (under h.{i}.), and for
# Q, K and V which third of c_attn's packed [Q | K | V] columns they are. {p} is weight or bias.
BLOCK_NAMES = [
    ("self_attn.ln.{p}",                 "ln_1.{p}",        None),
    ("self_attn.sublayer.q_proj.{p}",    "attn.c_attn.{p}", 0),
    ("self_attn.sublayer.k_proj.{p}",    "attn.c_attn.{p}", 1),
    ("self_attn.sublayer.v_proj.{p}",    "attn.c_attn.{p}", 2),
    ("self_attn.sublayer.out_proj.{p}",  "attn.c_proj.{p}", None),
    ("ffn.ln.{p}",                       "ln_2.{p}",        None),
    ("ffn.sublayer.fc1.{p}",             "mlp.c_fc.{p}",    None),
    ("ffn.sublayer.fc2.{p}",             "mlp.c_proj.{p}",  None),
]
OUTSIDE_BLOCKS = [("wte.weight", "wte.weight", None), ("wpe.weight", "wpe.weight", None),
                  ("ln_f.weight", "ln_f.weight", None), ("ln_f.bias", "ln_f.bias", None)]
# GPT-2's output layer is wte itself (tied), so the published file has no lm_head.weight. Old PyTorch
# checkpoints also carry each block's causal mask, attn.bias (a buffer, not a parameter): skipped.
SKIPPED = (".attn.bias", ".attn.masked_bias")


def name_map(n_layer: int) -> list:
    """[(our name, GPT-2's name, third of c_attn or None)] for every parameter of an n_layer GPT-2."""
    rows = list(OUTSIDE_BLOCKS)
    for i in range(n_layer):
        for ours, theirs, part in BLOCK_NAMES:
            for p in ("weight", "bias"):
                rows.append((f"blocks.{i}." + ours.format(p=p), f"h.{i}." + theirs.format(p=p), part))
    return rows


def from_gpt2_tensors(tensors: dict, n_layer: int) -> dict:
    """GPT-2's tensors {h.0.attn.c_attn.weight: ...} -> our state dict {blocks.0...q_proj.weight: ...}."""
    state = {}
    for ours, theirs, part in name_map(n_layer):
        array = tensors[theirs]
        if part is not None:                        # c_attn: [d, 3d] -> [d, d], [3d] -> [d]
            d = array.shape[-1] // 3
            array = array[..., part * d:(part + 1) * d]
        state[ours] = array
    return state


def to_gpt2_tensors(state: dict, n_layer: int) -> dict:
    """Our state dict -> GPT-2's tensors, with Q, K and V packed side by side into c_attn."""
    tensors, packed = {}, {}
    for ours, theirs, part in name_map(n_layer):
        if part is None:
            tensors[theirs] = state[ours]
        else:
            packed.setdefault(theirs, [None, None, None])[part] = state[ours]
    for theirs, (q, k, v) in packed.items():
        tensors[theirs] = numpy.concatenate([q, k, v], axis=-1)  # [d, d] x 3 -> [d, 3d]; [d] x 3 -> [3d]
    return tensors


def gpt2_shapes(config: GPTConfig) -> dict:
    """{GPT-2's name: shape} of every tensor of a GPT-2 of this configuration, without building one."""
    d = config.n_embd
    # Each layer of a block: [in, out] of a Linear ([out] its bias), or [d] for a LayerNorm's two vectors.
    layers = {"ln_1": [d], "attn.c_attn": [d, 3 * d], "attn.c_proj": [d, d], "ln_2": [d],
              "mlp.c_fc": [d, 4 * d], "mlp.c_proj": [4 * d, d]}
    shapes = {"wte.weight": [config.vocab_size, d], "wpe.weight": [config.block_size, d],
              "ln_f.weight": [d], "ln_f.bias": [d]}
    for _, theirs, _ in name_map(config.n_layer):
        if theirs.startswith("h."):
            layer, p = theirs.split(".", 2)[2].rsplit(".", 1)     # h.3.attn.c_attn.bias -> attn.c_attn, bias
            shapes[theirs] = layers[layer] if p == "weight" else layers[layer][-1:]
    return shapes


# --- loading -------------------------------------------------------------------------------------------

def load_gpt2(name_or_path: str = "gpt2", dtype: str = "float32", block_size: int | None = None,
              dropout: float = 0.0, n_head: int | None = None, download: bool = True, log=print) -> GPT:
    """A GPT holding GPT-2's weights, on the current backend, in ``dtype``.

    ``name_or_path``: one of gpt2, gpt2-medium, gpt2-large, gpt2-xl (read from the cache, downloaded on
    first use), or the path of a ``save_pretrained`` folder or of a ``.safetensors`` file. A folder or
    file of the same name as a size (./gpt2, as ``save_gpt2(model, "gpt2")`` writes) comes first, as in
    Hugging Face's ``from_pretrained``. The configuration comes from the name, from the folder's
    config.json, or from the tensors' shapes (``n_head`` cannot be seen in a shape: give it for a file of
    an unknown width). Everything is checked against the tensors before the model is built.
    ``block_size`` < 1024 keeps only the first block_size position rows (shorter context, less memory:
    for fine-tuning). ``dropout`` is the new model's (GPT-2 trained with 0.1).
    """
    weights, config_file, published = _find_weights(name_or_path, download, log)
    try:
        tensors = _gpt2_names(read_safetensors(weights)[0], weights)
    except SafetensorsError as err:
        fix = (f" It is the cached download of {name_or_path!r}: delete it and it is fetched again."
               if published else "")
        raise SafetensorsError(f"{err}{fix}") from None
    if config_file is not None:
        config, source = config_from_hf(read_config_json(config_file, "GPT-2", CONFIG_FIX), config_file), str(config_file)
    elif published:
        config, source = gpt2_config(name_or_path), f"the published {name_or_path}'s size"
    else:
        config, source = _config_from_shapes(tensors, n_head, weights), f"the shapes in {weights}"
    _check_tensors(tensors, config, weights, source)     # before building: sizes, names, shapes
    check_finite(tensors, weights)
    with backend.using(dtype=dtype):
        model = GPT(dataclasses.replace(config, dropout=dropout))
    model.load_state_dict(from_gpt2_tensors(tensors, config.n_layer))
    if block_size is not None:
        crop_block_size(model, block_size)
    return model


def is_published(name_or_path) -> bool:
    """Whether ``name_or_path`` means a published GPT-2: a size, with no folder or file of that name here."""
    return str(name_or_path) in SIZES and not Path(name_or_path).exists()


def _find_weights(name_or_path, download, log):
    """-> (path of the .safetensors file, path of the config.json beside it or None, whether it is the
    published file of a size)."""
    path = Path(name_or_path)
    if not path.exists():
        finish_replacing_folder(path, log)     # a save_gpt2 stopped between its two renames: finish it
    if is_published(name_or_path):
        return gpt2_file(str(name_or_path), "model.safetensors", download, log), None, True
    if str(name_or_path) in SIZES:
        log(f"loading the {'folder' if path.is_dir() else 'file'} ./{path}, not the published {name_or_path}: "
            "a local folder or file of that name comes first. To load the published weights, rename it or "
            "run from another folder.")
    if path.is_dir():
        folder, weights = path, path / "model.safetensors"
        if not weights.is_file():
            sharded = " (a sharded checkpoint, model.safetensors.index.json, is not read: save it again with " \
                      "a larger max_shard_size)" if (path / "model.safetensors.index.json").exists() else ""
            raise FileNotFoundError(f"{path} has no model.safetensors{sharded}. Give a folder written by "
                                    "save_pretrained or save_gpt2, or a .safetensors file.")
    elif path.is_file():
        folder, weights = path.parent, path
    else:
        raise FileNotFoundError(f"{name_or_path!r} is neither a GPT-2 size ({', '.join(SIZES)}) nor an existing "
                                "file or folder. Give one of those names, or the path of a model.safetensors "
                                "file or of a folder that holds one.")
    config_file = folder / "config.json"
    return weights, (config_file if config_file.is_file() else None), False


def _gpt2_names(tensors: dict, path) -> dict:
    """GPT-2's parameters under their short names (h.0.ln_1.weight), without buffers or the tied lm_head."""
    short, full_name = {}, {}
    for name, array in tensors.items():
        key = name.removeprefix("transformer.")            # save_pretrained's names; the published file's lack it
        if key.endswith(SKIPPED):
            continue
        if key in short:                                   # one of the two would be lost without a word
            raise ValueError(f"{path} holds both {full_name[key]} and {name}, one tensor under two names: "
                             "GPT-2's files name each tensor once, with or without 'transformer.'. Keep one.")
        short[key], full_name[key] = array, name
    head = short.pop("lm_head.weight", None)
    if head is not None and ("wte.weight" not in short
                             or not numpy.array_equal(head, short["wte.weight"], equal_nan=True)):
        raise ValueError(f"{path} has an output layer lm_head.weight that is not the token embedding wte: "
                         "GPT-2 ties the two, and this loader reads GPT-2 checkpoints only.")
    return short


def config_from_hf(hf: dict, path) -> GPTConfig:
    """Hugging Face's GPT2Config (a config.json, as a dict) -> our GPTConfig; refused where they differ.
    ``path``: the config.json, for the errors."""
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"{path} is for model_type {hf.get('model_type')!r}, not gpt2.")
    # GPT2Config's defaults are GPT-2 small's; config.json's names, with ours where they differ.
    sizes = {"vocab_size": VOCAB_SIZE, "n_positions": CONTEXT, "n_layer": 12, "n_head": 12, "n_embd": 768}
    for key, default in sizes.items():
        value = sizes[key] = hf.get(key, default)
        if type(value) is not int or value < 1:
            raise ValueError(f"{path}: {key} is {value!r}, but it must be a whole number >= 1. Correct it in "
                             "config.json.")
    if sizes["n_embd"] % sizes["n_head"]:
        raise ValueError(f"{path}: n_head {sizes['n_head']} does not divide n_embd {sizes['n_embd']} (each head "
                         "gets n_embd / n_head dimensions). Correct them in config.json.")
    n_embd = sizes["n_embd"]
    differs = {"activation_function": ("gelu_new", "gelu_pytorch_tanh"), "layer_norm_epsilon": (1e-5,),
               "n_inner": (None, 4 * n_embd), "scale_attn_weights": (True,),
               "scale_attn_by_inverse_layer_idx": (False,), "add_cross_attention": (False,),
               "tie_word_embeddings": (True,)}
    wrong = [f"{key}={hf[key]!r}" for key, allowed in differs.items() if key in hf and hf[key] not in allowed]
    if wrong:
        raise ValueError(f"{path} describes a GPT-2 variant that our GPT does not compute: {', '.join(wrong)} "
                         "(ours: tanh GELU, eps 1e-5, hidden 4·n_embd, attention scaled by 1/√d_k, tied "
                         "embeddings).")
    return gpt2_config("gpt2", vocab_size=sizes["vocab_size"], block_size=sizes["n_positions"],
                       n_layer=sizes["n_layer"], n_head=sizes["n_head"], n_embd=n_embd)


def _blocks_in(tensors: dict) -> int:
    """How many blocks (h.0., h.1., ...) the tensors' names hold."""
    return len({match.group(1) for name in tensors if (match := re.match(r"h\.(\d+)\.", name))})


def _config_from_shapes(tensors, n_head, path) -> GPTConfig:
    """A bare .safetensors file: layers, width, vocabulary and context from the shapes."""
    wte, wpe = tensors.get("wte.weight"), tensors.get("wpe.weight")
    if wte is None or wpe is None or wte.ndim != 2 or wpe.ndim != 2:
        raise ValueError(f"{path} holds no GPT-2 embeddings (wte.weight and wpe.weight, two tables): it is not a "
                         f"GPT-2 checkpoint. Its tensors: {sorted(tensors)[:8]} ...")
    vocab_size, n_embd = wte.shape
    if n_head is None:
        by_width = {width: heads for _, heads, width in SIZES.values()}
        if n_embd not in by_width:
            raise ValueError(f"{path} is {n_embd} wide, which no published GPT-2 is, and has no config.json: "
                             "give the number of heads, load_gpt2(path, n_head=...).")
        n_head = by_width[n_embd]
    try:
        return gpt2_config("gpt2", vocab_size=vocab_size, block_size=wpe.shape[0], n_layer=_blocks_in(tensors),
                           n_head=n_head, n_embd=n_embd)
    except ValueError as err:                # e.g. an embedding 0 wide, or n_head that does not divide it
        raise ValueError(f"{path}: {err}") from None


def _check_tensors(tensors: dict, config: GPTConfig, path, source) -> None:
    """Refuse tensors that are not those of the configuration, before anything is built from it: first
    the sizes it gives (read from ``source``) against the file's, then every tensor's name and shape."""
    held = {"n_layer": (config.n_layer, _blocks_in(tensors), "blocks h.0, h.1, ...")}
    wte, wpe = tensors.get("wte.weight"), tensors.get("wpe.weight")
    if wte is not None and wte.ndim == 2:
        held["vocab_size"] = (config.vocab_size, wte.shape[0], "rows of wte.weight")
        held["n_embd"] = (config.n_embd, wte.shape[1], "columns of wte.weight")
    if wpe is not None and wpe.ndim == 2:
        held["n_positions"] = (config.block_size, wpe.shape[0], "rows of wpe.weight")
    check_sizes(held, path, source)
    needed = gpt2_shapes(config)          # n_layer is now the file's: as many names as the file has
    missing, unexpected = sorted(set(needed) - set(tensors)), sorted(set(tensors) - set(needed))
    if missing or unexpected:
        raise ValueError(f"{path} does not hold the tensors of a {config.n_layer}-layer GPT-2: missing "
                         f"{missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}. Is it a GPT-2 checkpoint, and does its "
                         "config.json (if any) match it?")
    for name, want in needed.items():
        if list(tensors[name].shape) != want:
            raise ValueError(f"{path}: {name} has shape {list(tensors[name].shape)}, but a GPT-2 of this "
                             f"configuration ({config.n_layer} layers, n_embd {config.n_embd}, vocabulary "
                             f"{config.vocab_size}, context {config.block_size}) needs {want}.")


def crop_block_size(model: GPT, block_size: int) -> None:
    """Keep only the first block_size rows of the position table: a shorter context (as nanoGPT's)."""
    if not 1 <= block_size <= model.config.block_size:
        raise ValueError(f"block_size must be between 1 and the model's context {model.config.block_size}, "
                         f"got {block_size}: a learned position table cannot grow rows it never learned.")
    model.config.block_size = model.wpe.block_size = block_size
    model.wpe.weight = Parameter(model.wpe.weight.data[:block_size].copy())   # [block_size, n_embd]


# --- export --------------------------------------------------------------------------------------------

def save_gpt2(model: GPT, folder, log=print) -> None:
    """Write model.safetensors and config.json in GPT-2's format: GPT2LMHeadModel.from_pretrained reads them.

    The arrays keep the model's dtype (float32 or float64). The tied output layer is not written (GPT-2's
    files omit it too). The folder is written as a whole (files.replace_folder): a crash at any moment
    leaves the old folder or the new one, never new weights beside an old config.json. Files that
    save_gpt2 does not write (a tokenizer's vocab.json and merges.txt) are kept when the folder holds no
    model yet, as when a tokenizer is saved first; beside an old model they may belong to it (a
    vocab.json of another vocabulary), so replacing that folder is refused until they are moved away.
    """
    c = model.config
    check_gpt2_architecture(c)
    folder = Path(folder)
    keep = files_to_keep(folder, SAVED_FILES, "save_gpt2")
    tensors = to_gpt2_tensors(model.state_dict(), c.n_layer)
    dtype = str(model.wte.weight.data.dtype)
    ends = VOCAB_SIZE - 1 if c.vocab_size == VOCAB_SIZE else None   # <|endoftext|>, for GPT-2's vocabulary
    hf = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
          "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
          "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
          "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
          "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": ends, "eos_token_id": ends,
          "dtype": dtype, "torch_dtype": dtype}

    def fill(new):
        write_safetensors(new / "model.safetensors", {f"transformer.{name}": array for name, array in tensors.items()},
                          metadata={"format": "pt"})     # transformers expects the "pt" (PyTorch) layout tag
        atomic_write(new / "config.json", lambda file: file.write(json.dumps(hf, indent=2).encode() + b"\n"))
    replace_folder(folder, fill, keep=keep, log=log)
