"""GPT-2's weights in GPT: the name mapping, our own model through GPT-2's format and back, the errors,
the download's checks; and, with transformers installed, Hugging Face's GPT2LMHeadModel as the oracle."""
import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.error

import numpy
import pytest

from helpers.scripts import ROOT
from tinytransformer import backend, files
from tinytransformer.pretrained import gpt2
from tinytransformer.pretrained.common import check_finite
from tinytransformer.tokenizers import gpt2 as gpt2_files
from tinytransformer.generate import generate
from tinytransformer.pretrained.gpt2 import (crop_block_size, from_gpt2_tensors, gpt2_config, load_gpt2, name_map,
                                  save_gpt2, to_gpt2_tensors)
from tinytransformer.models.gpt import GPT
from tinytransformer.pretrained.safetensors import SafetensorsError, read_safetensors, write_safetensors

SMALL = dict(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=64)


def small_gpt2(dtype="float64", seed=0):
    """A GPT-2-shaped GPT with every parameter random (LayerNorms and biases too: none is 1 or 0)."""
    with backend.using(dtype=dtype):
        model = GPT(gpt2_config("gpt2", **SMALL))
    rng = numpy.random.default_rng(seed)
    for _, p in model.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.3
    return model


def tokens(T=12, B=2, vocab=SMALL["vocab_size"], seed=1):
    return numpy.random.default_rng(seed).integers(0, vocab, (B, T))


# --- the mapping ----------------------------------------------------------------------------------------

def test_the_mapping_names_every_parameter_of_ours_once():
    model = small_gpt2()
    ours = [row[0] for row in name_map(SMALL["n_layer"])]
    assert len(ours) == len(set(ours))
    assert set(ours) == {name for name, _ in model.named_parameters()}


def test_every_number_goes_to_one_place_and_comes_back():
    """Ours filled with 0, 1, 2, ...: GPT-2's tensors hold each number exactly once, and the way back
    returns every parameter unchanged. The same from GPT-2's side."""
    model = small_gpt2()
    state, start = {}, 0
    for name, p in model.named_parameters():
        state[name] = numpy.arange(start, start + p.data.size, dtype=numpy.float64).reshape(p.data.shape)
        start += p.data.size
    theirs = to_gpt2_tensors(state, SMALL["n_layer"])
    numbers = numpy.sort(numpy.concatenate([a.reshape(-1) for a in theirs.values()]))
    numpy.testing.assert_array_equal(numbers, numpy.arange(start))
    back = from_gpt2_tensors(theirs, SMALL["n_layer"])
    assert sorted(back) == sorted(state)
    for name in state:
        numpy.testing.assert_array_equal(back[name], state[name])

    theirs_filled, start = {}, 0
    for name, a in theirs.items():
        theirs_filled[name] = numpy.arange(start, start + a.size, dtype=numpy.float64).reshape(a.shape)
        start += a.size
    ours_filled = from_gpt2_tensors(theirs_filled, SMALL["n_layer"])
    numbers = numpy.sort(numpy.concatenate([a.reshape(-1) for a in ours_filled.values()]))
    numpy.testing.assert_array_equal(numbers, numpy.arange(start))


def test_c_attn_packs_q_then_k_then_v():
    model = small_gpt2()
    theirs = to_gpt2_tensors(model.state_dict(), SMALL["n_layer"])
    attn = model.blocks[1].self_attn.sublayer
    d = SMALL["n_embd"]
    for third, proj in enumerate((attn.q_proj, attn.k_proj, attn.v_proj)):
        numpy.testing.assert_array_equal(theirs["h.1.attn.c_attn.weight"][:, third * d:(third + 1) * d],
                                         proj.weight.data)
        numpy.testing.assert_array_equal(theirs["h.1.attn.c_attn.bias"][third * d:(third + 1) * d], proj.bias.data)


# --- our model through GPT-2's format and back (no transformers needed) ------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_in_gpt2_format_and_loaded_back_gives_identical_parameters_and_logits(tmp_path, dtype):
    model = small_gpt2(dtype)
    save_gpt2(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_gpt2(tmp_path / "m", dtype=dtype)
    assert loaded.config == model.config
    for (name, p), (name2, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert name == name2 and q.data.dtype == p.data.dtype
        numpy.testing.assert_array_equal(q.data, p.data)
    numpy.testing.assert_array_equal(loaded(tokens())[0], model(tokens())[0])


def test_the_file_uses_gpt2s_names_shapes_and_dtype(tmp_path):
    save_gpt2(small_gpt2("float32"), tmp_path)
    tensors, metadata = read_safetensors(tmp_path / "model.safetensors")
    assert metadata == {"format": "pt"}
    d, V = SMALL["n_embd"], SMALL["vocab_size"]
    assert tensors["transformer.wte.weight"].shape == (V, d)
    assert tensors["transformer.h.0.attn.c_attn.weight"].shape == (d, 3 * d)
    assert tensors["transformer.h.1.mlp.c_fc.weight"].shape == (d, 4 * d)
    assert "lm_head.weight" not in tensors                      # tied: GPT-2's files omit it
    assert {a.dtype for a in tensors.values()} == {numpy.dtype("float32")}
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["n_layer"], config["n_head"], config["n_embd"], config["n_positions"]) == (2, 4, 64, 32)


def test_a_bare_file_loads_with_n_head_given(tmp_path):
    model = small_gpt2()
    save_gpt2(model, tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ValueError, match=r"64 wide, which no published GPT-2 is.*load_gpt2\(path, n_head=\.\.\.\)"):
        load_gpt2(tmp_path / "model.safetensors", dtype="float64")
    loaded = load_gpt2(tmp_path / "model.safetensors", dtype="float64", n_head=4)
    numpy.testing.assert_array_equal(loaded(tokens())[0], model(tokens())[0])


def test_the_published_files_names_load_too(tmp_path):
    """The published model.safetensors names its tensors h.0.ln_1.weight (no "transformer."), and old
    checkpoints carry each block's causal-mask buffer h.i.attn.bias: both are read."""
    model = small_gpt2()
    tensors = to_gpt2_tensors(model.state_dict(), SMALL["n_layer"])
    for i in range(SMALL["n_layer"]):
        tensors[f"h.{i}.attn.bias"] = numpy.tril(numpy.ones((1, 1, 32, 32), dtype=numpy.float64))
    write_safetensors(tmp_path / "model.safetensors", tensors)
    loaded = load_gpt2(tmp_path / "model.safetensors", dtype="float64", n_head=4)
    numpy.testing.assert_array_equal(loaded(tokens())[0], model(tokens())[0])


def test_block_size_crops_the_position_table_and_keeps_the_logits(tmp_path):
    model = small_gpt2()
    save_gpt2(model, tmp_path)
    cropped = load_gpt2(tmp_path, dtype="float64", block_size=8)
    assert cropped.config.block_size == 8 and cropped.wpe.weight.data.shape == (8, SMALL["n_embd"])
    numpy.testing.assert_array_equal(cropped(tokens(T=8))[0], model(tokens(T=8))[0])
    with pytest.raises(ValueError, match="context is 8"):
        cropped(tokens(T=9))
    with pytest.raises(ValueError, match="between 1 and"):
        crop_block_size(cropped, 9)


def test_loading_and_export_work_on_the_gpu_code_path(tmp_path):
    """Under the CuPy stand-in the weights go to the device, and export brings them back to the host."""
    model = small_gpt2("float32")
    save_gpt2(model, tmp_path / "host")
    with backend.using(backend="standin"):
        on_device = load_gpt2(tmp_path / "host")
        logits = backend.to_numpy(on_device(backend.asarray(tokens()))[0])
        save_gpt2(on_device, tmp_path / "device")
    numpy.testing.assert_array_equal(logits, model(tokens())[0])
    again = load_gpt2(tmp_path / "device")
    for (_, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        numpy.testing.assert_array_equal(q.data, p.data)


# --- errors --------------------------------------------------------------------------------------------

def test_a_truncated_file_is_refused_naming_it(tmp_path):
    save_gpt2(small_gpt2(), tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SafetensorsError, match="truncated") as err:
        load_gpt2(tmp_path)
    assert str(path) in str(err.value)


def test_a_missing_tensor_is_named(tmp_path):
    tensors = to_gpt2_tensors(small_gpt2().state_dict(), SMALL["n_layer"])
    del tensors["h.1.mlp.c_proj.bias"]
    write_safetensors(tmp_path / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"missing \['h.1.mlp.c_proj.bias'\]"):
        load_gpt2(tmp_path / "model.safetensors", n_head=4)


def test_a_wrong_shape_is_named_with_what_was_needed(tmp_path):
    tensors = to_gpt2_tensors(small_gpt2().state_dict(), SMALL["n_layer"])
    tensors["h.0.mlp.c_fc.weight"] = tensors["h.0.mlp.c_fc.weight"][:, :100]
    write_safetensors(tmp_path / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"h.0.mlp.c_fc.weight has shape \[64, 100\].*needs \[64, 256\]"):
        load_gpt2(tmp_path / "model.safetensors", n_head=4)


def test_an_untied_output_layer_is_refused(tmp_path):
    model = small_gpt2()
    tensors = to_gpt2_tensors(model.state_dict(), SMALL["n_layer"])
    tensors["lm_head.weight"] = tensors["wte.weight"] + 1.0
    write_safetensors(tmp_path / "model.safetensors", tensors)
    with pytest.raises(ValueError, match="lm_head.weight that is not the token embedding"):
        load_gpt2(tmp_path / "model.safetensors", n_head=4)
    tensors["lm_head.weight"] = tensors["wte.weight"]           # tied, but written out: fine
    write_safetensors(tmp_path / "model.safetensors", tensors)
    load_gpt2(tmp_path / "model.safetensors", n_head=4)


def test_a_config_json_of_another_variant_is_refused(tmp_path):
    save_gpt2(small_gpt2(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "activation_function": "relu"}))
    with pytest.raises(ValueError, match="activation_function='relu'"):
        load_gpt2(tmp_path)


@pytest.mark.parametrize("field, value", [("norm", "post"), ("positional", "sinusoidal"), ("bias", False),
                                          ("tie_weights", False), ("activation", "relu")])
def test_export_refuses_what_gpt2_cannot_hold(tmp_path, field, value):
    model = GPT(gpt2_config("gpt2", **{**SMALL, field: value}))
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        save_gpt2(model, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_names_and_paths_are_explained():
    with pytest.raises(FileNotFoundError, match="neither a GPT-2 size"):
        load_gpt2("gpt3")
    with pytest.raises(ValueError, match="Unknown GPT-2 size"):
        gpt2_config("gpt2-xxl")


# --- files from elsewhere: checked before anything is built ------------------------------------------------

@pytest.fixture
def never_built(monkeypatch):
    """Building a GPT is a test failure: the file must be refused first (n_layer 10⁶ fills the memory),
    and so is a table of names for more layers than any file here has (16 million names for 10⁶)."""
    def build(config):
        raise AssertionError(f"a GPT was built from {config}")
    real_name_map = gpt2.name_map

    def name_map(n_layer):
        assert n_layer <= 100, f"name_map({n_layer}) was called"
        return real_name_map(n_layer)
    monkeypatch.setattr(gpt2, "GPT", build)
    monkeypatch.setattr(gpt2, "name_map", name_map)


def test_a_tensor_named_with_and_without_the_prefix_is_refused(tmp_path):
    tensors = to_gpt2_tensors(small_gpt2().state_dict(), SMALL["n_layer"])
    tensors = {f"transformer.{name}": array for name, array in tensors.items()}
    tensors["wte.weight"] = tensors["transformer.wte.weight"] + 1.0     # which one would be kept?
    write_safetensors(tmp_path / "model.safetensors", tensors)
    with pytest.raises(ValueError, match=r"holds both transformer.wte.weight and wte.weight") as err:
        load_gpt2(tmp_path / "model.safetensors", n_head=4)
    assert str(tmp_path / "model.safetensors") in str(err.value)


def edited_config(folder, text=None, **changes):
    path = folder / "config.json"
    if text is None:
        text = json.dumps({**json.loads(path.read_text()), **changes})
    path.write_text(text)


@pytest.mark.parametrize("case, text, changes, words", [
    ("not JSON", "{oops", {}, ["not a valid config.json", "not JSON"]),
    ("a JSON list", "[1, 2]", {}, ["holds a JSON list"]),
    ("a key twice", '{"model_type": "gpt2", "n_layer": 2, "n_layer": 3}', {}, ["'n_layer' appears twice"]),
    ("n_head 0", None, {"n_head": 0}, ["n_head is 0", "whole number >= 1"]),
    ("n_embd -16", None, {"n_embd": -16}, ["n_embd is -16"]),
    ("n_layer a string", None, {"n_layer": "2"}, ["n_layer is '2'"]),
    ("n_layer 10**6", None, {"n_layer": 10 ** 6}, ["n_layer 1000000", "holds 2", "correct n_layer to 2"]),
    ("n_head not dividing n_embd", None, {"n_head": 3}, ["n_head 3 does not divide n_embd 64"]),
    ("n_embd not the file's", None, {"n_embd": 32, "n_inner": None}, ["n_embd 32", "holds 64"]),
    ("vocab_size not the file's", None, {"vocab_size": 50257}, ["vocab_size 50257", "holds 101"]),
    ("n_positions not the file's", None, {"n_positions": 1024}, ["n_positions 1024", "holds 32"]),
    ("two megabytes", " " * (2 << 20) + "{}", {}, ["2,097,154 bytes"]),
])
def test_a_config_json_is_checked_against_the_tensors_before_the_model_is_built(tmp_path, never_built, case,
                                                                                text, changes, words):
    save_gpt2(small_gpt2(), tmp_path / "m")
    edited_config(tmp_path / "m", text, **changes)
    with pytest.raises(ValueError) as err:
        load_gpt2(tmp_path / "m")
    message = str(err.value)
    assert str(tmp_path / "m" / "config.json") in message and "\n" not in message, case
    for word in words:
        assert word in message, (case, message)


def test_the_shapes_from_a_config_are_the_models():
    """gpt2_shapes computes without building what a built model's parameters are, in GPT-2's names."""
    config = gpt2_config("gpt2", **SMALL)
    built = {name: list(array.shape) for name, array in to_gpt2_tensors(small_gpt2().state_dict(),
                                                                           SMALL["n_layer"]).items()}
    assert gpt2.gpt2_shapes(config) == built


@pytest.mark.parametrize("name, index, value", [("h.1.mlp.c_fc.weight", (3, 5), numpy.nan),
                                                ("wpe.weight", (31, 63), numpy.inf),
                                                ("ln_f.bias", (0,), -numpy.inf)])
def test_a_nan_or_infinite_weight_is_refused_naming_the_tensor(tmp_path, never_built, name, index, value):
    model = small_gpt2("float32")
    save_gpt2(model, tmp_path / "m")
    stored = read_safetensors(tmp_path / "m" / "model.safetensors")[0]
    tensors = {key: numpy.array(array) for key, array in stored.items()}     # writable copies
    tensors[f"transformer.{name}"][index] = value
    write_safetensors(tmp_path / "m" / "model.safetensors", tensors)
    with pytest.raises(ValueError) as err:
        load_gpt2(tmp_path / "m")
    assert f"m/model.safetensors: {name} holds {value} at {list(index)}" in str(err.value)


def test_the_finite_check_reads_in_blocks_and_finds_the_first_bad_number():
    tensors = {"a": numpy.zeros((4, 5), dtype=numpy.float32), "ids": numpy.arange(3)}
    check_finite(tensors, "f", block=3)                  # finite, and integer tensors are skipped
    tensors["a"][2, 4] = numpy.nan                             # in the fifth block of three
    tensors["a"][3, 1] = numpy.inf
    with pytest.raises(ValueError, match=r"f: a holds nan at \[2, 4\]"):
        check_finite(tensors, "f", block=3)


def test_a_local_folder_named_like_a_size_comes_before_the_published_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(tmp_path / "cache"))     # nothing cached
    monkeypatch.chdir(tmp_path)
    model = small_gpt2()
    save_gpt2(model, "gpt2")
    logs = []
    loaded = load_gpt2("gpt2", dtype="float64", download=False, log=logs.append)
    numpy.testing.assert_array_equal(loaded(tokens())[0], model(tokens())[0])
    assert any("loading the folder ./gpt2, not the published gpt2" in line for line in logs), logs
    assert gpt2.is_published("gpt2-medium") and not gpt2.is_published("gpt2")


# --- saving: the folder as a whole ---------------------------------------------------------------------

def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_saving_over_a_saved_model_replaces_the_folder_and_leaves_nothing_beside_it(tmp_path):
    save_gpt2(small_gpt2(seed=1), tmp_path / "m")
    smaller = GPT(gpt2_config("gpt2", **{**SMALL, "n_layer": 1}))
    save_gpt2(smaller, tmp_path / "m")
    assert sorted(folder_bytes(tmp_path / "m")) == ["config.json", "model.safetensors"]
    assert load_gpt2(tmp_path / "m").config.n_layer == 1
    assert [path.name for path in tmp_path.iterdir()] == ["m"]            # no temporary, no old folder


def test_saving_over_a_model_beside_files_it_does_not_write_is_refused(tmp_path):
    save_gpt2(small_gpt2(seed=1), tmp_path / "m")
    (tmp_path / "m" / "vocab.json").write_text("{}")
    before = folder_bytes(tmp_path / "m")
    with pytest.raises(ValueError, match=r"holds a saved model and also vocab.json.*Move them away"):
        save_gpt2(small_gpt2(seed=2), tmp_path / "m")
    assert folder_bytes(tmp_path / "m") == before


def test_a_tokenizer_saved_first_is_kept_beside_the_model(tmp_path):
    """As save_pretrained users do: the tokenizer's files first, then the model, into one new folder."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "m" / "merges.txt").write_text("#version: 0.2\n")
    save_gpt2(small_gpt2(), tmp_path / "m")
    files_now = folder_bytes(tmp_path / "m")
    assert sorted(files_now) == ["config.json", "merges.txt", "model.safetensors", "vocab.json"]
    assert files_now["vocab.json"] == b'{"a": 0}'


def test_a_save_interrupted_while_writing_leaves_the_old_folder(tmp_path, monkeypatch):
    save_gpt2(small_gpt2(seed=1), tmp_path / "m")
    before = folder_bytes(tmp_path / "m")
    real = gpt2.atomic_write

    def interrupted(path, write):                # Ctrl-C after the new weights, before the new config.json
        raise KeyboardInterrupt
    monkeypatch.setattr(gpt2, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_gpt2(small_gpt2(seed=2), tmp_path / "m")
    monkeypatch.setattr(gpt2, "atomic_write", real)
    assert folder_bytes(tmp_path / "m") == before
    assert [path.name for path in tmp_path.iterdir()] == ["m"]


KILLED_BETWEEN_RENAMES = """
import os, sys
from tinytransformer.models.gpt import GPT
from tinytransformer.pretrained.gpt2 import gpt2_config, save_gpt2
real_rename = os.rename
def rename(source, target):                  # killed right after the old folder is set aside
    real_rename(source, target)
    if ".old-" in str(target):
        os._exit(9)
os.rename = rename
save_gpt2(GPT(gpt2_config("gpt2", vocab_size=101, block_size=32, n_layer=1, n_head=4, n_embd=64)), sys.argv[1])
"""


def test_a_save_killed_between_its_two_renames_is_finished_by_the_next_load(tmp_path):
    save_gpt2(small_gpt2(), tmp_path / "m")
    result = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_RENAMES, str(tmp_path / "m")],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    left = sorted(path.name for path in tmp_path.iterdir())
    assert "m" not in left and any(".old-" in n for n in left) and any(".tmp-" in n for n in left)
    logs = []
    assert load_gpt2(tmp_path / "m", log=logs.append).config.n_layer == 1         # the new one, complete
    assert "finished replacing" in " ".join(logs)
    assert [path.name for path in tmp_path.iterdir()] == ["m"]


# --- finding and downloading the published files --------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(tmp_path))
    return tmp_path


def test_no_network_and_no_file_names_the_url_and_the_place(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError) as err:
        load_gpt2("gpt2-medium", log=lambda *a: None)
    message = str(err.value)
    assert "https://huggingface.co/openai-community/gpt2-medium/resolve/main/model.safetensors" in message
    assert str(cache / "gpt2" / "gpt2-medium" / "model.safetensors") in message
    assert "no network" in message
    with pytest.raises(FileNotFoundError) as err:
        gpt2_files.download_gpt2_vocab(log=lambda *a: None)
    assert "https://huggingface.co/openai-community/gpt2/resolve/main/vocab.json" in str(err.value)
    assert str(cache / "gpt2" / "vocab.json") in str(err.value)
    assert not any(cache.rglob("*.tmp-*"))


class FakeResponse(io.BytesIO):
    def __init__(self, data, length=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve(monkeypatch, data, length=None):
    urls = []

    def urlopen(url, timeout=None):
        urls.append(url)
        return FakeResponse(data, length)
    monkeypatch.setattr(files.urllib.request, "urlopen", urlopen)
    return urls


def test_a_download_is_checked_by_size_and_sha256_before_it_is_cached(cache, monkeypatch, tmp_path):
    save_gpt2(small_gpt2(), tmp_path / "src")
    data = (tmp_path / "src" / "model.safetensors").read_bytes()
    target = cache / "gpt2" / "gpt2" / "model.safetensors"
    monkeypatch.setitem(gpt2_files.KNOWN_FILES, ("gpt2", "model.safetensors"),
                        (len(data), hashlib.sha256(data + b"x").hexdigest()))       # a wrong checksum
    serve(monkeypatch, data)
    with pytest.raises(FileNotFoundError, match="SHA-256"):
        gpt2_files.gpt2_file("gpt2", "model.safetensors", log=lambda *a: None)
    assert not target.exists() and not any(cache.rglob("*.tmp-*"))

    serve(monkeypatch, data[:-10], length=len(data))                               # cut short
    with pytest.raises(FileNotFoundError, match="announced"):
        gpt2_files.gpt2_file("gpt2", "model.safetensors", log=lambda *a: None)
    assert not target.exists()

    monkeypatch.setitem(gpt2_files.KNOWN_FILES, ("gpt2", "model.safetensors"), (len(data), hashlib.sha256(data).hexdigest()))
    urls = serve(monkeypatch, data)
    assert gpt2_files.gpt2_file("gpt2", "model.safetensors", log=lambda *a: None) == target
    assert urls == ["https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors"]
    assert target.read_bytes() == data
    gpt2_files.gpt2_file("gpt2", "model.safetensors", log=lambda *a: None)                # cached: no download
    assert len(urls) == 1


def test_a_cached_file_of_the_wrong_size_is_refused(cache):
    target = cache / "gpt2" / "gpt2" / "model.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="has 1,000 bytes, but the published model.safetensors of gpt2 has "
                                         "548,105,171: delete it"):
        load_gpt2("gpt2", download=False)


def test_published_gpt2_small_has_the_file_size_its_parameters_need():
    """548,105,171 bytes = 8 + a 14,283-byte header + 124,439,808 float32 parameters + 12 causal-mask
    buffers of 1024², as read in the published file's header. A wrong SIZES entry or parameter count
    would break the sum."""
    n_layer, _, d = gpt2.SIZES["gpt2"]
    V, P = gpt2.VOCAB_SIZE, gpt2.CONTEXT
    parameters = V * d + P * d + n_layer * (2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d)
                                            + (4 * d * d + d)) + 2 * d
    assert parameters == 124_439_808
    assert gpt2_files.KNOWN_FILES[("gpt2", "model.safetensors")][0] == 8 + 14_283 + 4 * parameters + n_layer * 4 * P * P


# --- the oracle: Hugging Face transformers ------------------------------------------------------------------

@pytest.fixture
def hf_small(tmp_path):
    """A random GPT-2 made by transformers (float64, every parameter perturbed), saved with save_pretrained."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=SMALL["vocab_size"], n_positions=SMALL["block_size"],
                                     n_embd=SMALL["n_embd"], n_layer=SMALL["n_layer"], n_head=SMALL["n_head"],
                                     bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(config).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf")
    return torch, transformers, model, tmp_path / "hf"


def test_the_mapping_covers_every_parameter_of_transformers_gpt2(hf_small):
    _, _, model, _ = hf_small
    names = {name.removeprefix("transformer.") for name in model.state_dict()} - {"lm_head.weight"}
    assert {row[1] for row in name_map(SMALL["n_layer"])} == names


def test_a_transformers_gpt2_loads_with_the_same_logits_and_greedy_tokens(hf_small):
    torch, _, model, folder = hf_small
    ours = load_gpt2(folder, dtype="float64")
    idx = tokens(T=10)
    with torch.no_grad():
        theirs = model(torch.tensor(idx)).logits.numpy()
        their_tokens = model.generate(torch.tensor(idx), max_new_tokens=12, do_sample=False,
                                      pad_token_id=0).numpy()
    numpy.testing.assert_allclose(ours(idx)[0], theirs, rtol=0, atol=1e-10)
    assert numpy.abs(theirs).max() > 1.0                               # logits that are not all ~0
    our_tokens = generate(ours, idx, max_new_tokens=12, temperature=0)
    numpy.testing.assert_array_equal(our_tokens, their_tokens)


def test_our_model_exported_loads_in_transformers_with_the_same_logits(hf_small, tmp_path):
    torch, transformers, _, _ = hf_small
    model = small_gpt2("float64")
    save_gpt2(model, tmp_path / "ours")
    theirs = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    assert theirs.dtype == torch.float64
    assert theirs.lm_head.weight.data_ptr() == theirs.transformer.wte.weight.data_ptr()   # tied
    idx = tokens(T=10)
    with torch.no_grad():
        logits = theirs(torch.tensor(idx)).logits.numpy()
    numpy.testing.assert_allclose(logits, model(idx)[0], rtol=0, atol=1e-10)
