"""scripts/llama.py: a Llama-format folder (config.json, model.safetensors, tokenizer.json) generates text;
what is wrong with the folder or the arguments is one line and exit status 2."""
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from tinytransformer import backend
from tinytransformer.generate import generate
from tinytransformer.models.gpt import GPT, GPTConfig
from tinytransformer.pretrained.llama import save_llama
from tinytransformer.tokenizers.hf_json import tokenizer_from_hf_json

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "llama.py"
TEXT = "the quick brown fox jumps over the lazy dog. " * 40


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A small random Llama with a byte-level BPE trained by `tokenizers`, saved as a Hugging Face folder."""
    tokenizers = pytest.importorskip("tokenizers")
    folder = tmp_path_factory.mktemp("llama") / "model"
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator([TEXT], vocab_size=300, min_frequency=2)
    vocab = trainer.get_vocab_size()
    model = GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=2, n_head=4, n_embd=16, ffn_hidden=24,
                          n_kv_head=2, positional="rope", normalization="rmsnorm", activation="swiglu",
                          bias=False, tie_weights=False))
    save_llama(model, folder, log=lambda *_: None)
    trainer.save(str(folder / "tokenizer.json"))
    return folder


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_it_generates_the_greedy_tokens_of_the_model(folder):
    result = run(folder, "--prompt", "the quick", "--temperature", "0", "--max-new-tokens", "6")
    assert result.returncode == 0, result.stderr
    from tinytransformer.pretrained.llama import load_llama
    tokenizer = tokenizer_from_hf_json(folder / "tokenizer.json")
    model = load_llama(folder, log=lambda *_: None)
    prompt = tokenizer.encode("the quick")
    expected = generate(model, backend.asarray(prompt[None, :]), 6, temperature=0.0)[0, len(prompt):]
    assert result.stdout == "the quick" + tokenizer.decode(numpy.asarray(expected)) + "\n"
    assert "prompt tokens/s" in result.stderr and "5 more tokens" in result.stderr and "KV cache on" in result.stderr


def test_a_folder_without_its_tokenizer_is_one_line_and_exit_2(folder, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((folder / name).read_bytes())
    result = run(bare)
    assert result.returncode == 2 and f"{bare} has no tokenizer.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_config_is_refused_before_the_model_is_built(folder, tmp_path):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for path in folder.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    config = json.loads((damaged / "config.json").read_text())
    config["num_hidden_layers"] = 10**6
    (damaged / "config.json").write_text(json.dumps(config))
    result = run(damaged)
    assert result.returncode == 2 and "num_hidden_layers" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--prompt", "the " * 40], "longer than the model's context of 16"),
    (["--temperature", "-1"], "--temperature -1.0: must be 0"),
    (["--top-k", "0"], "--top-k 0: must be at least 1"),
])
def test_nonsense_arguments_are_refused_with_exit_2(folder, args, words):
    result = run(folder, *args)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
