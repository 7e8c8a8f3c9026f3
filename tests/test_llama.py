"""Llama and Mistral checkpoints in GPT (pretrained/llama.py) and their tokenizer.json (tokenizers/hf_json.py):
our own model through Hugging Face's format and back, the damaged files refused before anything is built,
and, with transformers installed, LlamaForCausalLM / MistralForCausalLM as the oracle (logits, loss, every
gradient, greedy tokens), and the `tokenizers` library as the tokenizer's."""
import importlib
import json
import math

import numpy
import pytest

from tinytransformer import backend
from tinytransformer.generate import generate
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.pretrained import llama
from tinytransformer.pretrained.llama import load_llama, name_map, save_llama
from tinytransformer.pretrained.safetensors import read_safetensors, write_safetensors
from tinytransformer.tokenizers.hf_json import tokenizer_from_hf_json

SMALL = dict(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=16, ffn_hidden=24, n_kv_head=2,
             rope_theta=500.0, norm_eps=1e-5, positional="rope", normalization="rmsnorm", activation="swiglu",
             bias=False, tie_weights=False)


def small_llama(dtype="float64", seed=0, **overrides):
    """A Llama-shaped GPT with every parameter random (the RMSNorm weights too: none is 1)."""
    with backend.using(dtype=dtype):
        model = GPT(GPTConfig(**{**SMALL, **overrides}))
    rng = numpy.random.default_rng(seed)
    for _, p in model.named_parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.3
    return model


def tokens(T=12, B=2, seed=1):
    return numpy.random.default_rng(seed).integers(0, SMALL["vocab_size"], (B, T))


# --- our own model, through the format and back ---------------------------------------------------------

@pytest.mark.parametrize("tie", [False, True])
def test_the_mapping_names_every_parameter_of_ours_once(tie):
    ours = [row[0] for row in name_map(SMALL["n_layer"], tie)]
    assert len(ours) == len(set(ours))
    assert set(ours) == {name for name, _ in small_llama(tie_weights=tie).named_parameters()}


@pytest.mark.parametrize("dtype, overrides, kind", [("float64", {}, "llama"), ("float32", {"tie_weights": True}, "llama"),
                                                    ("float64", {"window": 4, "n_kv_head": 1}, "mistral")])
def test_saved_and_loaded_back_gives_identical_parameters_and_logits(tmp_path, dtype, overrides, kind):
    model = small_llama(dtype, **overrides)
    save_llama(model, tmp_path / "m", log=None)
    hf = json.loads((tmp_path / "m" / "config.json").read_text())
    assert hf["model_type"] == kind and hf["dtype"] == dtype and hf["intermediate_size"] == 24
    stored = read_safetensors(tmp_path / "m" / "model.safetensors")[0]
    assert ("lm_head.weight" in stored) == (not model.config.tie_weights)
    kv = 4 * model.config.n_kv_head                                                     # heads of 4 features
    assert list(stored["model.layers.1.self_attn.k_proj.weight"].shape) == [kv, 16]    # torch's [out, in]
    back = load_llama(tmp_path / "m", dtype=dtype)
    assert back.config == model.config
    for (name, p), (_, q) in zip(model.named_parameters(), back.named_parameters()):
        numpy.testing.assert_array_equal(p.data, q.data, err_msg=name)
    numpy.testing.assert_array_equal(back(tokens())[0], model(tokens())[0])


@pytest.mark.parametrize("field, value", [("positional", "learned"), ("normalization", "layernorm"),
                                          ("activation", "gelu"), ("bias", True), ("norm", "post")])
def test_export_refuses_what_llama_cannot_hold(tmp_path, field, value):
    model = small_llama(**{field: value})
    with pytest.raises(ValueError, match=f"cannot hold this model: {field}="):
        save_llama(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# --- damaged files: refused before anything is built -----------------------------------------------------

@pytest.fixture
def never_built(monkeypatch):
    """Building a GPT is a test failure: the file must be refused first (10⁶ layers fill the memory), and
    so is a table of names for more layers than any file here has."""
    def build(config):
        raise AssertionError(f"a GPT was built from {config}")
    real_name_map = llama.name_map

    def name_map(n_layer, tie):
        assert n_layer <= 100, f"name_map({n_layer}) was called"
        return real_name_map(n_layer, tie)
    monkeypatch.setattr(llama, "GPT", build)
    monkeypatch.setattr(llama, "name_map", name_map)


@pytest.fixture
def saved(tmp_path):
    save_llama(small_llama("float32"), tmp_path / "m", log=None)
    return tmp_path / "m"


def edit_config(folder, text=None, **changes):
    path = folder / "config.json"
    if text is None:
        text = json.dumps({key: value for key, value in {**json.loads(path.read_text()), **changes}.items()
                           if value != "DELETE"})
    path.write_text(text)


def edit_tensors(folder, change):
    stored = read_safetensors(folder / "model.safetensors")[0]
    tensors = {key: numpy.array(array) for key, array in stored.items()}     # writable copies
    change(tensors)
    write_safetensors(folder / "model.safetensors", tensors)


@pytest.mark.parametrize("changes, words", [
    ({"num_hidden_layers": 10 ** 6}, ["num_hidden_layers 1000000", "holds 2", "correct num_hidden_layers to 2"]),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, ["rope_scaling is Llama 3's RoPE scaling but lacks",
                                                                "low_freq_factor"]),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 8.0}}, ["rope_scaling is", "'yarn'", "not implement"]),
    ({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}},
     ["rope_parameters is", "'linear'"]),
    ({"rope_theta": 10000.0}, ["two RoPE bases"]),
    ({"hidden_act": "gelu"}, ["hidden_act='gelu'"]),
    ({"attention_bias": True}, ["attention_bias=True"]),
    ({"mlp_bias": True}, ["mlp_bias=True"]),
    ({"head_dim": 8}, ["head_dim is 8", "= 4"]),
    ({"model_type": "gpt2"}, ["model_type 'gpt2'"]),
    ({"num_key_value_heads": 3}, ["num_key_value_heads 3 must divide"]),
    ({"num_attention_heads": 0}, ["num_attention_heads is 0", "whole number >= 1"]),
    ({"hidden_size": "DELETE"}, ["has no hidden_size"]),
    ({"vocab_size": 51}, ["vocab_size 51", "holds 50"]),
    ({"intermediate_size": 32}, ["intermediate_size 32", "holds 24"]),
    ({"rms_norm_eps": -1}, ["rms_norm_eps is -1", "positive number"]),
    ({"tie_word_embeddings": "yes"}, ["tie_word_embeddings is 'yes'"]),
    ({"tie_word_embeddings": True}, ["lm_head.weight that is not the token embedding"]),
    ({"model_type": "mistral", "sliding_window": 0}, ["sliding_window is 0"]),
])
def test_a_config_json_is_checked_field_by_field_before_the_model_is_built(saved, never_built, changes, words):
    edit_config(saved, **changes)
    with pytest.raises(ValueError) as err:
        load_llama(saved)
    message = str(err.value)
    assert str(saved / "config.json") in message or str(saved / "model.safetensors") in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("text, words", [("{oops", ["not a valid config.json"]), ("[1]", ["holds a JSON list"]),
                                         (" " * (2 << 20) + "{}", ["2,097,154 bytes", "Llama config.json"])])
def test_a_config_json_that_is_not_one_is_named(saved, never_built, text, words):
    edit_config(saved, text)
    with pytest.raises(ValueError) as err:
        load_llama(saved)
    assert str(saved / "config.json") in str(err.value)
    for word in words:
        assert word in str(err.value)


def test_a_tensor_of_the_wrong_shape_is_named_with_the_shape_needed(saved, never_built):
    edit_tensors(saved, lambda t: t.update({"model.layers.1.self_attn.k_proj.weight": numpy.zeros((8, 15), "f4")}))
    with pytest.raises(ValueError, match=r"model.safetensors: model.layers.1.self_attn.k_proj.weight has shape "
                                         r"\[8, 15\], but the model of .*config.json .* needs \[8, 16\]"):
        load_llama(saved)


def test_a_missing_output_layer_is_named(saved, never_built):
    edit_tensors(saved, lambda t: t.pop("lm_head.weight"))
    with pytest.raises(ValueError, match=r"missing \['lm_head.weight'\] \(config.json says tie_word_embeddings "
                                         "false"):
        load_llama(saved)


def test_a_nan_weight_is_refused_naming_the_tensor(saved, never_built):
    def poison(tensors):
        tensors["model.layers.0.mlp.up_proj.weight"][5, 3] = numpy.nan
    edit_tensors(saved, poison)
    with pytest.raises(ValueError, match=r"m/model.safetensors: model.layers.0.mlp.up_proj.weight holds nan at "
                                         r"\[5, 3\]"):
        load_llama(saved)


def test_a_folder_without_the_files_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_llama(tmp_path / "nothing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        load_llama(tmp_path)


# --- the oracle: Hugging Face transformers ------------------------------------------------------------------

HF_SMALL = dict(vocab_size=50, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=32, rms_norm_eps=1e-5, rope_theta=500.0, bos_token_id=None,
                eos_token_id=None, pad_token_id=None)
CASES = {"llama": ("Llama", dict(num_key_value_heads=4)),
         "grouped-query": ("Llama", dict(num_key_value_heads=2)),
         "tied": ("Llama", dict(num_key_value_heads=1, tie_word_embeddings=True)),
         "mistral-window": ("Mistral", dict(num_key_value_heads=2, sliding_window=4)),
         # heads of 8: four pair frequencies, wavelengths 6.3, 30, 140 and 660 positions; with a context
         # of 32 and these factors the first is kept, the second blended and the last two slowed 8 times
         "llama3-scaling": ("Llama", dict(num_attention_heads=2, num_key_value_heads=2, rope_parameters=dict(
             rope_type="llama3", rope_theta=500.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=2.0,
             original_max_position_embeddings=32)))}


def float64_oracle(monkeypatch, torch, transformers):
    """Hugging Face computes RMSNorm, the RoPE angles and the attention's softmax in float32 even in a
    float64 model (errors ~1e-8); these are its formulas without that rounding, so that the comparison
    can ask for 1e-10 (test_without_the_float64_patches_only_float32_rounding_differs: the rest is equal)."""
    def attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        key, value = (repeat_kv(t, module.num_key_value_groups) for t in (key, value))
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = torch.softmax(scores, dim=-1)                        # in float64, not float32
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights

    def rms_norm(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    def rope(self, x, position_ids):
        dim = self.inv_freq.shape[0] * 2
        params = self.config.rope_parameters
        inv_freq = 1.0 / params["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        if params.get("rope_type") == "llama3":      # transformers' _compute_llama3_parameters, in float64
            factor, low, high = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
            old_context = params["original_max_position_embeddings"]
            wavelen = 2 * math.pi / inv_freq
            scaled = torch.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
            smooth = (old_context / wavelen - low) / (high - low)
            smoothed = (1 - smooth) * scaled / factor + smooth * scaled
            medium = ~(wavelen < old_context / high) * ~(wavelen > old_context / low)
            inv_freq = torch.where(medium, smoothed, scaled)
        freqs = position_ids[..., None].double() * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    for family in ("llama", "mistral"):
        module = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
        prefix = family.capitalize()
        monkeypatch.setattr(getattr(module, f"{prefix}RMSNorm"), "forward", rms_norm)
        monkeypatch.setattr(getattr(module, f"{prefix}RotaryEmbedding"), "forward", rope)
        monkeypatch.setattr(module, "eager_attention_forward", attention)
        repeat_kv = module.repeat_kv


@pytest.fixture(scope="module")
def hf_libraries():
    torch = pytest.importorskip("torch")
    return torch, pytest.importorskip("transformers")


@pytest.fixture(scope="module", params=list(CASES))
def hf_case(request, hf_libraries, tmp_path_factory):
    """A random model made by transformers (float64, every parameter perturbed), saved with save_pretrained."""
    torch, transformers = hf_libraries
    family, extra = CASES[request.param]
    torch.manual_seed(0)
    settings = {**HF_SMALL, **extra}
    if "rope_parameters" in extra:                     # transformers 5 keeps the base inside rope_parameters
        del settings["rope_theta"]
    config = getattr(transformers, f"{family}Config")(**settings)
    model_class = getattr(transformers, f"{family}ForCausalLM")
    model = model_class._from_config(config, attn_implementation="eager").double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp(request.param) / "hf"
    model.save_pretrained(folder, safe_serialization=True)
    return torch, transformers, model_class, model, folder


@pytest.fixture
def oracle(hf_case, monkeypatch):
    """The oracle in float64 throughout, and ours too."""
    torch, transformers, *_ = hf_case
    float64_oracle(monkeypatch, torch, transformers)
    with backend.using(dtype="float64"):
        yield hf_case


def test_the_mapping_covers_every_parameter_of_transformers(hf_case):
    *_, model, folder = hf_case
    ours = load_llama(folder, dtype="float64")
    theirs = {name for name, _ in model.named_parameters()}        # a tied lm_head is listed once, as embed
    assert {row[1] for row in name_map(ours.config.n_layer, ours.config.tie_weights)} == theirs


def test_logits_loss_and_every_gradient_equal_transformers(oracle):
    torch, _, _, model, folder = oracle
    ours = load_llama(folder, dtype="float64")
    idx, targets = tokens(T=12), tokens(T=12, seed=2)
    logits, loss = ours(idx, targets)
    ours.backward()
    model.zero_grad()
    their_logits = model(torch.tensor(idx)).logits
    their_loss = torch.nn.functional.cross_entropy(their_logits.reshape(-1, 50), torch.tensor(targets).reshape(-1))
    their_loss.backward()
    numpy.testing.assert_allclose(logits, their_logits.detach().numpy(), rtol=0, atol=1e-10)
    assert numpy.abs(logits).max() > 1.0                               # logits that are not all ~0
    assert abs(float(loss) - their_loss.item()) < 1e-10
    theirs = dict(model.named_parameters())
    ours_by_name = dict(ours.named_parameters())
    for our_name, their_name, transposed in name_map(ours.config.n_layer, ours.config.tie_weights):
        grad = theirs[their_name].grad.numpy()
        numpy.testing.assert_allclose(ours_by_name[our_name].grad, grad.T if transposed else grad, rtol=0,
                                      atol=1e-10, err_msg=our_name)


def test_greedy_tokens_equal_transformers(oracle):
    torch, _, _, model, folder = oracle
    ours = load_llama(folder, dtype="float64")
    idx = tokens(T=7)                                                  # 7 + 16 > the window of 4
    with torch.no_grad():
        their_tokens = model.generate(torch.tensor(idx), max_new_tokens=16, do_sample=False, pad_token_id=0).numpy()
    numpy.testing.assert_array_equal(generate(ours, idx, max_new_tokens=16, temperature=0), their_tokens)


def test_our_model_exported_loads_in_transformers_with_the_same_logits(oracle, tmp_path):
    torch, _, model_class, model, folder = oracle
    ours = load_llama(folder, dtype="float64")
    save_llama(ours, tmp_path / "ours", log=None)
    theirs = model_class.from_pretrained(tmp_path / "ours", attn_implementation="eager").eval()
    assert theirs.dtype == torch.float64 and getattr(theirs.config, "sliding_window", None) == ours.config.window
    idx = tokens(T=12)
    with torch.no_grad():
        numpy.testing.assert_allclose(theirs(torch.tensor(idx)).logits.numpy(), ours(idx)[0], rtol=0, atol=1e-10)


def test_without_the_float64_patches_only_float32_rounding_differs(hf_case):
    torch, _, _, model, folder = hf_case
    idx = tokens(T=12)
    with torch.no_grad(), backend.using(dtype="float64"):
        difference = numpy.abs(model(torch.tensor(idx)).logits.numpy() - load_llama(folder, "float64")(idx)[0])
    assert 1e-12 < difference.max() < 1e-4


# --- the tokenizer: tokenizer.json, with `tokenizers` as the oracle --------------------------------------

TEXTS = ["Hello world, the cat sat on the mat.", "café naïve résumé Ünïcödé", "emoji 😀👍🏽 and 日本語",
         "  leading spaces,\ttabs\t\tand\n\nnewlines\r\n  \n", "it's we'll they'd 12345 3.14 $5", ""]


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator([text * 3 for text in TEXTS] * 20 + ["the quick brown fox " * 30], vocab_size=330,
                                min_frequency=2, special_tokens=["<|endoftext|>"])
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    trainer.save(str(path))
    return tokenizers, path


def check_same_ids(tokenizers, path):
    theirs, ours = tokenizers.Tokenizer.from_file(str(path)), tokenizer_from_hf_json(path)
    assert ours.vocab_size == theirs.get_vocab_size()
    for text in TEXTS + ["the quick brown fox jumps", "".join(TEXTS)]:
        ids = ours.encode(text)
        assert ids.tolist() == theirs.encode(text, add_special_tokens=False).ids, text
        assert ours.decode(ids) == text == theirs.decode(ids.tolist())
    assert ours.encode("a<|endoftext|>b", allowed_special="all").tolist() == theirs.encode("a<|endoftext|>b").ids


def edited_tokenizer(path, tmp_path, change):
    state = json.loads(path.read_text())
    change(state)
    edited = tmp_path / "tokenizer.json"
    edited.write_text(json.dumps(state))
    return edited


def test_a_trained_byte_level_bpe_encodes_as_tokenizers_does(hf_tokenizer):
    tokenizers, path = hf_tokenizer
    assert len(json.loads(path.read_text())["model"]["merges"]) > 50
    check_same_ids(tokenizers, path)


def test_merges_as_strings_and_the_pattern_as_a_split_read_the_same(hf_tokenizer, tmp_path):
    tokenizers, path = hf_tokenizer

    def change(state):
        state["model"]["merges"] = [" ".join(pair) for pair in state["model"]["merges"]]
        gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
        state["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": gpt2}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    check_same_ids(tokenizers, edited_tokenizer(path, tmp_path, change))


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")


def swap_first_merges(state):
    state["model"]["merges"][:2] = state["model"]["merges"][1::-1]


def add_a_merge_that_ids_would_misorder(state):
    """'QX' and 'XZ', then 'QXZ' as Q + XZ: but by ids, Q X Z merges QX first, so QXZ would be QX + Z."""
    vocab, n = state["model"]["vocab"], len(state["model"]["vocab"])
    vocab.update({"QX": n, "XZ": n + 1, "QXZ": n + 2})
    state["model"]["merges"] += [["Q", "X"], ["X", "Z"], ["Q", "XZ"]]


@pytest.mark.parametrize("change, words", [
    (lambda s: s["pre_tokenizer"].update(type="Sequence", pretokenizers=[
        {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]),
     ["pattern", "is not one of tinytransformer's split patterns", "trusted_pattern"]),
    (lambda s: s["pre_tokenizer"].update(add_prefix_space=True), ["pre_tokenizer is", "add_prefix_space false"]),
    (lambda s: s.update(normalizer={"type": "NFC"}), ["normalizer is"]),
    (lambda s: s["model"].update(byte_fallback=True), ["model.byte_fallback is True"]),
    (lambda s: s["model"].update(type="Unigram"), ["model.type is 'Unigram'"]),
    (swap_first_merges, ["model.merges[1]", "ids must follow the order of the merges"]),
    (lambda s: s["model"]["merges"].append(["Q", "notatoken"]), ["'notatoken' is not in model.vocab"]),
    (lambda s: s["model"]["merges"].append("a b c"), ["not two tokens"]),
    (lambda s: s["model"]["vocab"].update(Q=10 ** 9), ["model.vocab entry 'Q' has the id 1000000000"]),
    (lambda s: s["added_tokens"][0].update(id=5), ["added token '<|endoftext|>' has id 5", "model.vocab gives it 0"]),
    (lambda s: s["model"]["vocab"].update(QQQQ=s["model"]["vocab"].pop("Ġ")), ["holds 255 of the 256 single bytes"]),
    (add_a_merge_that_ids_would_misorder, ["joins (b'Q', b'XZ')", "would give other tokens"]),
])
def test_a_tokenizer_json_that_bpetokenizer_would_read_otherwise_is_refused(hf_tokenizer, tmp_path, change, words):
    _, path = hf_tokenizer
    edited = edited_tokenizer(path, tmp_path, change)
    with pytest.raises(ValueError) as err:
        tokenizer_from_hf_json(edited)
    assert str(edited) in str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)
