"""GPT-2's published weights in our GPT: the four sizes, the name mapping, loading, export.

OpenAI's GPT-2 is the ``GPT`` of models/gpt.py with biases, tied input/output embeddings, learned
positions, tanh GELU, pre-norm blocks and LayerNorm eps 1e-5; only the names of the parameters differ,
and one packing: GPT-2's ``c_attn`` computes Q, K and V with one [d, 3d] matrix, ours with three [d, d].
Hugging Face's ``Conv1D`` stores its weight [in, out], as our ``Linear`` does, so no weight is transposed.

    model = load_gpt2("gpt2")                 # downloads model.safetensors (548 MB) on first use
    model = load_gpt2("path/to/folder")       # a save_pretrained folder, or a .safetensors file
    save_gpt2(model, "out/my_gpt2")           # transformers.GPT2LMHeadModel.from_pretrained reads it

The checkpoints are the ``model.safetensors`` files of https://huggingface.co/openai-community/<name>.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy

from .. import backend
from ..files import atomic_write
from ..models.gpt import GPT, GPTConfig
from ..module import Parameter
from ..tokenizers.gpt2 import gpt2_file
from .safetensors import SafetensorsError, read_safetensors, write_safetensors

# name: (n_layer, n_head, n_embd). All four read 50,257 tokens and a context of 1,024.
SIZES = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280),
         "gpt2-xl": (48, 25, 1600)}
VOCAB_SIZE, CONTEXT = 50257, 1024


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
    needs = {"norm": "pre", "positional": "learned", "activation": "gelu", "bias": True, "tie_weights": True}
    wrong = [f"{field}={getattr(config, field)!r} (GPT-2 has {value!r})" for field, value in needs.items()
             if getattr(config, field) != value]
    if wrong:
        raise ValueError(f"GPT-2's architecture cannot hold this model: {', '.join(wrong)}. Only a GPT built "
                         f"with {', '.join(f'{k}={v!r}' for k, v in needs.items())} has GPT-2's parameters "
                         "and computes what GPT-2 computes.")


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


# --- loading -------------------------------------------------------------------------------------------

def load_gpt2(name_or_path: str = "gpt2", dtype: str = "float32", block_size: int | None = None,
              dropout: float = 0.0, n_head: int | None = None, download: bool = True, log=print) -> GPT:
    """A GPT holding GPT-2's weights, on the current backend, in ``dtype``.

    ``name_or_path``: one of gpt2, gpt2-medium, gpt2-large, gpt2-xl (read from the cache, downloaded on
    first use), or the path of a ``save_pretrained`` folder or of a ``.safetensors`` file. Its
    configuration comes from the name, from the folder's config.json, or from the tensors' shapes
    (``n_head`` cannot be seen in a shape: give it for a file of an unknown width).
    ``block_size`` < 1024 keeps only the first block_size position rows (shorter context, less memory:
    for fine-tuning). ``dropout`` is the new model's (GPT-2 trained with 0.1).
    """
    weights, hf_config = _find_weights(name_or_path, download, log)
    try:
        tensors = _gpt2_names(read_safetensors(weights)[0], weights)
    except SafetensorsError as err:
        fix = (f" It is the cached download of {name_or_path!r}: delete it and it is fetched again."
               if name_or_path in SIZES else "")
        raise SafetensorsError(f"{err}{fix}") from None
    if hf_config is not None:
        config = config_from_hf(hf_config, weights)
    elif name_or_path in SIZES:
        config = gpt2_config(name_or_path)
    else:
        config = _config_from_shapes(tensors, n_head, weights)
    config.dropout = dropout
    with backend.using(dtype=dtype):
        model = GPT(config)
    model.load_state_dict(_checked_state(tensors, model, weights))
    if block_size is not None:
        crop_block_size(model, block_size)
    return model


def _find_weights(name_or_path, download, log):
    """-> (path of the .safetensors file, the config.json beside it as a dict, or None)."""
    if name_or_path in SIZES:
        return gpt2_file(name_or_path, "model.safetensors", download, log), None
    path = Path(name_or_path)
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
    hf_config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return weights, hf_config


def _gpt2_names(tensors: dict, path) -> dict:
    """GPT-2's parameters under their short names (h.0.ln_1.weight), without buffers or the tied lm_head."""
    short = {}
    for name, array in tensors.items():
        name = name.removeprefix("transformer.")          # save_pretrained's names; the published file's lack it
        if not name.endswith(SKIPPED):
            short[name] = array
    head = short.pop("lm_head.weight", None)
    if head is not None and ("wte.weight" not in short or not numpy.array_equal(head, short["wte.weight"])):
        raise ValueError(f"{path} has an output layer lm_head.weight that is not the token embedding wte: "
                         "GPT-2 ties the two, and this loader reads GPT-2 checkpoints only.")
    return short


def config_from_hf(hf: dict, path) -> GPTConfig:
    """Hugging Face's GPT2Config (a config.json, as a dict) -> our GPTConfig; refused where they differ."""
    if hf.get("model_type") != "gpt2":
        raise ValueError(f"The config.json beside {path} is for model_type {hf.get('model_type')!r}, not gpt2.")
    n_embd = hf.get("n_embd", 768)
    differs = {"activation_function": ("gelu_new", "gelu_pytorch_tanh"), "layer_norm_epsilon": (1e-5,),
               "n_inner": (None, 4 * n_embd), "scale_attn_weights": (True,),
               "scale_attn_by_inverse_layer_idx": (False,), "add_cross_attention": (False,),
               "tie_word_embeddings": (True,)}
    wrong = [f"{key}={hf[key]!r}" for key, allowed in differs.items() if key in hf and hf[key] not in allowed]
    if wrong:
        raise ValueError(f"The config.json beside {path} describes a GPT-2 variant that our GPT does not "
                         f"compute: {', '.join(wrong)} (ours: tanh GELU, eps 1e-5, hidden 4·n_embd, "
                         "attention scaled by 1/√d_k, tied embeddings).")
    return gpt2_config("gpt2", vocab_size=hf.get("vocab_size", VOCAB_SIZE), block_size=hf.get("n_positions", CONTEXT),
                       n_layer=hf.get("n_layer", 12), n_head=hf.get("n_head", 12), n_embd=n_embd)


def _config_from_shapes(tensors, n_head, path) -> GPTConfig:
    """A bare .safetensors file: layers, width, vocabulary and context from the shapes."""
    if "wte.weight" not in tensors or "wpe.weight" not in tensors:
        raise ValueError(f"{path} holds no GPT-2 embeddings (wte.weight, wpe.weight): it is not a GPT-2 "
                         f"checkpoint. Its tensors: {sorted(tensors)[:8]} ...")
    vocab_size, n_embd = tensors["wte.weight"].shape
    n_layer = sum(1 for name in tensors if name.endswith(".ln_1.weight"))
    if n_head is None:
        by_width = {width: heads for _, heads, width in SIZES.values()}
        if n_embd not in by_width:
            raise ValueError(f"{path} is {n_embd} wide, which no published GPT-2 is, and has no config.json: "
                             "give the number of heads, load_gpt2(path, n_head=...).")
        n_head = by_width[n_embd]
    return gpt2_config("gpt2", vocab_size=vocab_size, block_size=tensors["wpe.weight"].shape[0],
                       n_layer=n_layer, n_head=n_head, n_embd=n_embd)


def _checked_state(tensors: dict, model: GPT, path) -> dict:
    """Our state dict from GPT-2's tensors, after checking names and shapes (errors in GPT-2's names)."""
    rows = name_map(model.config.n_layer)
    needed = {theirs for _, theirs, _ in rows}
    missing, unexpected = sorted(needed - set(tensors)), sorted(set(tensors) - needed)
    if missing or unexpected:
        raise ValueError(f"{path} does not hold the tensors of a {model.config.n_layer}-layer GPT-2: missing "
                         f"{missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}. Is it a GPT-2 checkpoint, and does its "
                         "config.json (if any) match it?")
    params = dict(model.named_parameters())
    for ours, theirs, part in rows:
        want = list(params[ours].shape)
        if part is not None:
            want[-1] *= 3
        if list(tensors[theirs].shape) != want:
            raise ValueError(f"{path}: {theirs} has shape {list(tensors[theirs].shape)}, but a GPT-2 of "
                             f"this configuration ({model.config.n_layer} layers, n_embd "
                             f"{model.config.n_embd}, vocabulary {model.config.vocab_size}, context "
                             f"{model.config.block_size}) needs {want}.")
    return from_gpt2_tensors(tensors, model.config.n_layer)


def crop_block_size(model: GPT, block_size: int) -> None:
    """Keep only the first block_size rows of the position table: a shorter context (as nanoGPT's)."""
    if not 1 <= block_size <= model.config.block_size:
        raise ValueError(f"block_size must be between 1 and the model's context {model.config.block_size}, "
                         f"got {block_size}: a learned position table cannot grow rows it never learned.")
    model.config.block_size = model.wpe.block_size = block_size
    model.wpe.weight = Parameter(model.wpe.weight.data[:block_size].copy())   # [block_size, n_embd]


# --- export --------------------------------------------------------------------------------------------

def save_gpt2(model: GPT, folder) -> None:
    """Write model.safetensors and config.json in GPT-2's format: GPT2LMHeadModel.from_pretrained reads them.

    The arrays keep the model's dtype (float32 or float64). The tied output layer is not written (GPT-2's
    files omit it too).
    """
    c = model.config
    check_gpt2_architecture(c)
    folder = Path(folder)
    tensors = to_gpt2_tensors(model.state_dict(), c.n_layer)
    write_safetensors(folder / "model.safetensors", {f"transformer.{name}": array for name, array in tensors.items()},
                      metadata={"format": "pt"})     # transformers expects the "pt" (PyTorch) layout tag
    dtype = str(model.wte.weight.data.dtype)
    ends = VOCAB_SIZE - 1 if c.vocab_size == VOCAB_SIZE else None   # <|endoftext|>, for GPT-2's vocabulary
    hf = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
          "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
          "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
          "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
          "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": ends, "eos_token_id": ends,
          "dtype": dtype, "torch_dtype": dtype}
    atomic_write(folder / "config.json", lambda file: file.write(json.dumps(hf, indent=2).encode() + b"\n"))
