"""Hugging Face's Llama and Mistral checkpoints in our GPT: the configuration, the name mapping, loading, export.

A Llama (or Mistral) is the ``GPT`` of models/gpt.py with ``positional="rope"``, ``normalization="rmsnorm"``,
``activation="swiglu"``, ``bias=False``, pre-norm blocks, usually ``tie_weights=False``, and optionally
``n_kv_head`` < n_head (grouped-query attention) and, in Mistral, ``window`` (sliding-window attention).
Only the names differ, and one layout: torch's ``nn.Linear`` stores its weight [out, in], our ``Linear``
[in, out], so every projection (and an untied lm_head) is transposed on the way in and out. RoPE needs
no permutation: layers/rotary.py pairs features (i, i + d/2), as Hugging Face's ``rotate_half`` does.

    model = load_llama("path/to/folder")      # a save_pretrained folder: config.json + model.safetensors
    save_llama(model, "out/my_llama")         # transformers.LlamaForCausalLM.from_pretrained reads it

A folder from elsewhere is checked before anything is built from it, as load_gpt2 checks GPT-2's: its
config.json field by field (what our GPT does not compute, such as biases or a RoPE scaling other than
Llama 3.1's, is refused), then against the tensors' shapes (so that num_hidden_layers 10⁶ is an error,
not a model that fills the memory), every tensor's name and shape, and every weight for NaN and infinity. The tokenizer (the
folder's tokenizer.json) is tokenizers/hf_json.py's.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy

from .. import backend
from ..files import atomic_write, finish_replacing_folder, replace_folder
from ..layers.feedforward import swiglu_hidden
from ..models.gpt import GPT, GPTConfig
from ..module import is_int
from .common import check_architecture, check_finite, check_sizes, files_to_keep, read_config_json
from .safetensors import read_safetensors, write_safetensors

MODEL_TYPES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
SAVED_FILES = ("model.safetensors", "config.json")     # what save_llama writes
MISTRAL_WINDOW = 4096                                  # MistralConfig's sliding_window when config.json omits it
CONFIG_FIX = "Correct it in config.json, or give the config.json written with these weights."
LLAMA = dict(norm="pre", positional="rope", activation="swiglu", normalization="rmsnorm", bias=False)


# --- the configuration -----------------------------------------------------------------------------------

def llama_config_from_hf(hf: dict, path) -> GPTConfig:
    """Hugging Face's LlamaConfig or MistralConfig (a config.json, as a dict) -> our GPTConfig; every field
    checked, and what our GPT does not compute refused. ``path``: the config.json, for the errors."""
    kind = hf.get("model_type")
    if kind not in MODEL_TYPES:
        raise ValueError(f"{path} is for model_type {kind!r}, not one of {', '.join(MODEL_TYPES)}: load_llama "
                         "reads Llama and Mistral checkpoints (load_gpt2 reads GPT-2's).")

    def whole(key, default=None, required=True):
        value = hf.get(key, default)
        if value is None and not required:
            return None
        if key not in hf and default is None:
            raise ValueError(f"{path} has no {key}: a Llama config.json gives the model's sizes (hidden_size, "
                             "num_hidden_layers, num_attention_heads, intermediate_size, vocab_size, "
                             f"max_position_embeddings). {CONFIG_FIX}")
        if not is_int(value) or value < 1:
            raise ValueError(f"{path}: {key} is {value!r}, but it must be a whole number >= 1. {CONFIG_FIX}")
        return value

    def number(key, default):
        value = hf.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{path}: {key} is {value!r}, but it must be a positive number. {CONFIG_FIX}")
        return float(value)

    d, n_layer, n_head = whole("hidden_size"), whole("num_hidden_layers"), whole("num_attention_heads")
    ffn, vocab, context = whole("intermediate_size"), whole("vocab_size"), whole("max_position_embeddings")
    n_kv = whole("num_key_value_heads", n_head, required=False) or n_head
    if d % n_head or n_head % n_kv:
        raise ValueError(f"{path}: num_attention_heads {n_head} must divide hidden_size {d}, and "
                         f"num_key_value_heads {n_kv} must divide num_attention_heads. {CONFIG_FIX}")
    head_dim = hf.get("head_dim")
    if head_dim is not None and head_dim != d // n_head:
        raise ValueError(f"{path}: head_dim is {head_dim!r}, but our GPT's heads are hidden_size / "
                         f"num_attention_heads = {d // n_head} wide (a model with other heads, as Gemma's, "
                         "is not one it computes).")
    wrong = [f"{key}={hf[key]!r}" for key, allowed in (("hidden_act", ("silu",)), ("attention_bias", (False,)),
                                                        ("mlp_bias", (False,)))
             if key in hf and hf[key] not in allowed]
    if wrong:
        raise ValueError(f"{path} describes a variant that our GPT does not compute: {', '.join(wrong)} (ours: "
                         "hidden_act silu, no biases in attention or MLP).")
    rope_theta, rope_scaling = _rope(hf, path)
    tie = hf.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise ValueError(f"{path}: tie_word_embeddings is {tie!r}, but it must be true or false. {CONFIG_FIX}")
    window = None           # Llama has no sliding window (Hugging Face's LlamaModel ignores the field)
    if kind == "mistral":
        window = whole("sliding_window", MISTRAL_WINDOW, required=False)
    try:
        return GPTConfig(vocab_size=vocab, block_size=context, n_layer=n_layer, n_head=n_head, n_embd=d,
                         dropout=0.0, tie_weights=tie, norm_eps=number("rms_norm_eps", 1e-6),
                         rope_theta=rope_theta, rope_scaling=rope_scaling, ffn_hidden=ffn, n_kv_head=n_kv,
                         window=window, **LLAMA)
    except ValueError as err:                  # e.g. an odd head size, which RoPE cannot turn in pairs
        raise ValueError(f"{path}: {err}") from None


LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def _rope(hf: dict, path) -> tuple:
    """(RoPE's base, Llama 3's scaling or None), from rope_parameters (transformers 5) or rope_theta and
    rope_scaling (4). Of the RoPE scalings only Llama 3.1's ("llama3") is computed; any other is refused."""
    params, scaling = hf.get("rope_parameters"), hf.get("rope_scaling")
    found = []
    for key, value in (("rope_parameters", params), ("rope_scaling", scaling)):
        if value is None:
            continue
        kind = value.get("rope_type", value.get("type")) if isinstance(value, dict) else value
        if kind == "default":
            continue
        if kind != "llama3":
            raise ValueError(f"{path}: {key} is {value!r}, a RoPE scaling (rope_type {kind!r}) that our GPT does "
                             "not implement: it turns queries and keys by the plain angles m·θ_i, or by Llama "
                             '3\'s ("llama3"). Load a model without it (rope_type "default").')
        missing = [k for k in LLAMA3_KEYS if k not in value]
        if missing:
            raise ValueError(f"{path}: {key} is Llama 3's RoPE scaling but lacks {', '.join(missing)}. {CONFIG_FIX}")
        found.append({k: value[k] for k in LLAMA3_KEYS})
    if len(found) == 2 and found[0] != found[1]:
        raise ValueError(f"{path} gives two different RoPE scalings, in rope_parameters and rope_scaling: keep "
                         f"one. {CONFIG_FIX}")
    thetas = {value for value in (hf.get("rope_theta"), (params or {}).get("rope_theta")) if value is not None}
    if len(thetas) > 1:
        raise ValueError(f"{path} gives two RoPE bases, rope_theta {hf['rope_theta']!r} and rope_parameters' "
                         f"{params['rope_theta']!r}: keep one. {CONFIG_FIX}")
    theta = thetas.pop() if thetas else 10000.0
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not 0 < theta < math.inf:
        raise ValueError(f"{path}: rope_theta is {theta!r}, but it must be a positive number. {CONFIG_FIX}")
    return float(theta), (found[0] if found else None)


def check_llama_architecture(config: GPTConfig) -> None:
    """Refuse a configuration that Llama's architecture (and its file format) cannot hold."""
    check_architecture(config, LLAMA, "Llama")


# --- the names: ours <-> Hugging Face's ----------------------------------------------------------------

# One row per parameter of block i: our name (under blocks.{i}.), Hugging Face's (under model.layers.{i}.),
# and whether the weight is a Linear's, stored transposed.
BLOCK_NAMES = [
    ("self_attn.ln.weight",                "input_layernorm.weight",          False),
    ("self_attn.sublayer.q_proj.weight",   "self_attn.q_proj.weight",         True),
    ("self_attn.sublayer.k_proj.weight",   "self_attn.k_proj.weight",         True),
    ("self_attn.sublayer.v_proj.weight",   "self_attn.v_proj.weight",         True),
    ("self_attn.sublayer.out_proj.weight", "self_attn.o_proj.weight",         True),
    ("ffn.ln.weight",                      "post_attention_layernorm.weight", False),
    ("ffn.sublayer.gate_proj.weight",      "mlp.gate_proj.weight",            True),
    ("ffn.sublayer.up_proj.weight",        "mlp.up_proj.weight",              True),
    ("ffn.sublayer.down_proj.weight",      "mlp.down_proj.weight",            True),
]
# Old checkpoints also carry each layer's RoPE frequencies (a buffer, not a parameter): skipped.
SKIPPED = (".rotary_emb.inv_freq",)


def name_map(n_layer: int, tie_weights: bool) -> list:
    """[(our name, Hugging Face's name, transposed)] for every parameter of an n_layer Llama."""
    rows = [("wte.weight", "model.embed_tokens.weight", False)]
    for i in range(n_layer):
        rows += [(f"blocks.{i}.{ours}", f"model.layers.{i}.{theirs}", t) for ours, theirs, t in BLOCK_NAMES]
    rows.append(("ln_f.weight", "model.norm.weight", False))
    if not tie_weights:                        # tied: the output layer is embed_tokens, not in the file
        rows.append(("lm_head.weight", "lm_head.weight", True))
    return rows


def from_llama_tensors(tensors: dict, config: GPTConfig) -> dict:
    """Hugging Face's tensors {model.layers.0.mlp.up_proj.weight: [out, in]} -> our state dict ([in, out])."""
    return {ours: tensors[theirs].T if t else tensors[theirs]
            for ours, theirs, t in name_map(config.n_layer, config.tie_weights)}


def to_llama_tensors(state: dict, config: GPTConfig) -> dict:
    """Our state dict -> Hugging Face's tensors, each Linear's weight transposed to torch's [out, in]."""
    return {theirs: numpy.ascontiguousarray(state[ours].T) if t else state[ours]
            for ours, theirs, t in name_map(config.n_layer, config.tie_weights)}


def llama_shapes(config: GPTConfig) -> dict:
    """{Hugging Face's name: shape} of every tensor of a Llama of this configuration, without building one."""
    d, V = config.n_embd, config.vocab_size
    kv = (config.n_kv_head or config.n_head) * (d // config.n_head)
    ffn = config.ffn_hidden or swiglu_hidden(d)
    layer = {"input_layernorm.weight": [d], "self_attn.q_proj.weight": [d, d], "self_attn.k_proj.weight": [kv, d],
             "self_attn.v_proj.weight": [kv, d], "self_attn.o_proj.weight": [d, d],
             "post_attention_layernorm.weight": [d], "mlp.gate_proj.weight": [ffn, d],
             "mlp.up_proj.weight": [ffn, d], "mlp.down_proj.weight": [d, ffn]}
    outside = {"model.embed_tokens.weight": [V, d], "model.norm.weight": [d], "lm_head.weight": [V, d]}
    return {theirs: outside[theirs] if theirs in outside else layer[theirs.split(".", 3)[3]]
            for _, theirs, _ in name_map(config.n_layer, config.tie_weights)}


# --- loading -------------------------------------------------------------------------------------------

def load_llama(folder, dtype: str = "float32", log=print) -> GPT:
    """A GPT holding the weights of a Llama or Mistral ``save_pretrained`` folder (config.json and
    model.safetensors), on the current backend, in ``dtype``. Everything is checked before the model
    is built; what our GPT does not compute (biases, another activation, a RoPE scaling other than Llama 3's)
    is refused."""
    folder = Path(folder)
    if not folder.exists():
        finish_replacing_folder(folder, log)     # a save_llama stopped between its two renames: finish it
    config_file, weights = folder / "config.json", folder / "model.safetensors"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give the folder that save_pretrained (or save_llama) "
                                "wrote, holding config.json and model.safetensors.")
    for path in (config_file, weights):
        if not path.is_file():
            sharded = (" (a sharded checkpoint, model.safetensors.index.json, is not read: save it again with "
                       "a larger max_shard_size)" if (folder / "model.safetensors.index.json").exists() else "")
            raise FileNotFoundError(f"{folder} has no {path.name}{sharded}. Give a folder written by "
                                    "save_pretrained or save_llama.")
    fix = "Correct it, or give the config.json written with these weights."
    config = llama_config_from_hf(read_config_json(config_file, "Llama", fix), config_file)
    tensors = _llama_names(read_safetensors(weights)[0], config, weights)
    _check_tensors(tensors, config, weights, config_file)     # before building: sizes, names, shapes
    check_finite(tensors, weights)
    with backend.using(dtype=dtype):
        model = GPT(config)
    model.load_state_dict(from_llama_tensors(tensors, config))
    return model


def _llama_names(tensors: dict, config: GPTConfig, path) -> dict:
    """The parameters, without buffers, and without an lm_head that a tied model's file may repeat."""
    tensors = {name: array for name, array in tensors.items() if not name.endswith(SKIPPED)}
    if config.tie_weights and "lm_head.weight" in tensors:
        head, embedding = tensors.pop("lm_head.weight"), tensors.get("model.embed_tokens.weight")
        if embedding is None or not numpy.array_equal(head, embedding, equal_nan=True):
            raise ValueError(f"{path} has an output layer lm_head.weight that is not the token embedding "
                             "model.embed_tokens.weight, but config.json says tie_word_embeddings true: the "
                             "two must be one tensor. Set tie_word_embeddings to false in config.json if the "
                             "model was trained with its own output layer.")
    return tensors


def _blocks_in(tensors: dict) -> int:
    """How many layers (model.layers.0., model.layers.1., ...) the tensors' names hold."""
    return len({match.group(1) for name in tensors if (match := re.match(r"model\.layers\.(\d+)\.", name))})


def _check_tensors(tensors: dict, config: GPTConfig, path, source) -> None:
    """Refuse tensors that are not those of the configuration, before anything is built from it: first
    the sizes that ``source`` (config.json) gives against the file's, then every tensor's name and shape."""
    held = {"num_hidden_layers": (config.n_layer, _blocks_in(tensors), "layers model.layers.0, 1, ...")}
    embedding, gate = tensors.get("model.embed_tokens.weight"), tensors.get("model.layers.0.mlp.gate_proj.weight")
    if embedding is not None and embedding.ndim == 2:
        held["vocab_size"] = (config.vocab_size, embedding.shape[0], "rows of model.embed_tokens.weight")
        held["hidden_size"] = (config.n_embd, embedding.shape[1], "columns of model.embed_tokens.weight")
    if gate is not None and gate.ndim == 2:
        held["intermediate_size"] = (config.ffn_hidden, gate.shape[0], "rows of model.layers.0.mlp.gate_proj")
    check_sizes(held, path, source)
    needed = llama_shapes(config)        # num_hidden_layers is now the file's: as many names as it has
    missing, unexpected = sorted(set(needed) - set(tensors)), sorted(set(tensors) - set(needed))
    if missing or unexpected:
        tied = (" (config.json says tie_word_embeddings false, so the file needs its own lm_head.weight)"
                if missing == ["lm_head.weight"] else "")
        raise ValueError(f"{path} does not hold the tensors of the {config.n_layer}-layer model that {source} "
                         f"describes: missing {missing[:6]}{' ...' if len(missing) > 6 else ''}{tied}, unexpected "
                         f"{unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}. Is it a Llama checkpoint, "
                         "and does config.json match it?")
    for name, want in needed.items():
        if list(tensors[name].shape) != want:
            raise ValueError(f"{path}: {name} has shape {list(tensors[name].shape)}, but the model of {source} "
                             f"(hidden_size {config.n_embd}, {config.n_head} heads, {config.n_kv_head} key/value "
                             f"heads, intermediate_size {config.ffn_hidden}, vocab_size {config.vocab_size}) "
                             f"needs {want}.")


# --- export --------------------------------------------------------------------------------------------

def llama_config_to_hf(model: GPT) -> dict:
    """The config.json of ``model``: model_type "mistral" when it has a sliding window, "llama" otherwise."""
    c = model.config
    check_llama_architecture(c)
    kind = "llama" if c.window is None else "mistral"
    dtype = str(backend.to_numpy(model.wte.weight.data[:0]).dtype)
    hf = {"architectures": [MODEL_TYPES[kind]], "model_type": kind, "vocab_size": c.vocab_size,
          "hidden_size": c.n_embd, "intermediate_size": model.blocks[0].ffn.sublayer.d_hidden,
          "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head,
          "num_key_value_heads": c.n_kv_head or c.n_head, "head_dim": c.n_embd // c.n_head, "hidden_act": "silu",
          "max_position_embeddings": c.block_size, "rms_norm_eps": c.norm_eps,
          "rope_theta": c.rope_theta,                                                   # transformers 4
          "rope_scaling": None if c.rope_scaling is None else {"rope_type": "llama3", **c.rope_scaling},
          "rope_parameters": {"rope_type": "default" if c.rope_scaling is None else "llama3",   # transformers 5
                              "rope_theta": c.rope_theta, **(c.rope_scaling or {})},
          "tie_word_embeddings": c.tie_weights, "attention_dropout": c.dropout, "bos_token_id": None,
          "eos_token_id": None, "dtype": dtype, "torch_dtype": dtype}
    if kind == "llama":
        hf.update(attention_bias=False, mlp_bias=False)
    else:
        hf["sliding_window"] = c.window
    return hf


def save_llama(model: GPT, folder, log=print) -> None:
    """Write model.safetensors and config.json in Hugging Face's Llama format (Mistral's, for a model
    with a sliding window): LlamaForCausalLM / MistralForCausalLM.from_pretrained read them.

    The arrays keep the model's dtype; a tied output layer is not written (Hugging Face's files omit it
    too). The folder is written as a whole (files.replace_folder), and files that save_llama does not
    write (a tokenizer.json) are kept as save_gpt2 keeps them (see there)."""
    hf = llama_config_to_hf(model)                         # refuses what Llama cannot hold, first
    folder = Path(folder)
    keep = files_to_keep(folder, SAVED_FILES, "save_llama")
    tensors = to_llama_tensors(model.state_dict(), model.config)

    def fill(new):
        write_safetensors(new / "model.safetensors", tensors, metadata={"format": "pt"})
        atomic_write(new / "config.json", lambda file: file.write(json.dumps(hf, indent=2).encode() + b"\n"))
    replace_folder(folder, fill, keep=keep, log=log)
