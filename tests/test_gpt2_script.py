"""scripts/gpt2.py on tiny models: random weights (bytes or a GPT-2-format vocabulary), a saved model by
path, the speed report, and the error when neither the weights nor the network are there."""
import os
import subprocess
import sys
import urllib.error

import pytest

from helpers.scripts import ROOT, load_script
from tinytransformer import files
from tinytransformer.models.gpt import GPT
from tinytransformer.pretrained.gpt2 import gpt2_config, save_gpt2
from tinytransformer.tokenizers import BPETokenizer
from tinytransformer.tokenizers import gpt2 as gpt2_files

SCRIPT = ROOT / "scripts" / "gpt2.py"
TINY = '{"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 300, "block_size": 64}'


def run(cache, *args, check=True):
    env = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    env["TINYTRANSFORMER_CACHE"] = str(cache)
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                            timeout=120, env=env)
    if check:
        assert result.returncode == 0, f"gpt2.py failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_a_random_model_without_a_vocabulary_generates_bytes_and_reports_speed(tmp_path):
    args = ["--random", "--config-override", TINY, "--prompt", "Hello", "--max-new-tokens", "6"]
    first = run(tmp_path, *args, "--seed", "1")
    assert first.stdout.startswith("Hello") and len(first.stdout.strip()) > len("Hello")
    assert "encoded as bytes" in first.stderr
    assert "prompt tokens/s" in first.stderr and "5 more tokens" in first.stderr and "KV cache on" in first.stderr
    assert run(tmp_path, *args, "--seed", "1").stdout == first.stdout                # a seed gives the text
    assert run(tmp_path, *args, "--seed", "1", "--no-cache").stdout == first.stdout
    assert run(tmp_path, *args, "--seed", "1", "--device", "standin").stdout == first.stdout
    assert not any(tmp_path.iterdir())                                                 # nothing downloaded


def test_gpt2_format_vocabulary_files_are_used_when_present(tmp_path):
    text = "the cat sat on the mat; the dog sat on the log. " * 20
    BPETokenizer.train(text, 266).to_gpt2_files(tmp_path / "gpt2")
    same_vocabulary = TINY.replace('"vocab_size": 300', '"vocab_size": 266')
    assert run(tmp_path, "--random", "--config-override", TINY, check=False).returncode == 2   # 300 ≠ 266
    result = run(tmp_path, "--random", "--config-override", same_vocabulary, "--prompt", "the cat",
                 "--max-new-tokens", "5")
    assert "encoded as bytes" not in result.stderr and "[" not in result.stdout
    assert result.stdout.startswith("the cat")


def test_a_saved_model_is_read_from_its_folder(tmp_path, monkeypatch, capsys):
    save_gpt2(GPT(gpt2_config("gpt2", vocab_size=260, block_size=64, n_layer=1, n_head=2, n_embd=16)),
              tmp_path / "model")
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(tmp_path))
    BPETokenizer.train("a b c abc abcabc " * 30, 260).to_gpt2_files(tmp_path / "gpt2")
    with pytest.raises(ValueError, match="vocab.json has .* bytes, but the published"):   # not GPT-2's files
        gpt2_files.download_gpt2_vocab()
    for name in ("vocab.json", "merges.txt"):                 # let these small ones stand in for GPT-2's
        monkeypatch.delitem(gpt2_files.KNOWN_FILES, ("gpt2", name))
    assert load_script(SCRIPT).main(["--model", str(tmp_path / "model"), "--prompt", "abc", "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("abc") and "2 more tokens" in out.err


@pytest.mark.parametrize("flags, cached_calls", [([], 6), (["--no-cache"], 0)])
def test_generation_uses_the_kv_cache_unless_told_not_to(tmp_path, monkeypatch, capsys, flags, cached_calls):
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(tmp_path))
    calls = []
    original = GPT.forward_cached
    monkeypatch.setattr(GPT, "forward_cached", lambda self, *a: calls.append(1) or original(self, *a))
    args = ["--random", "--config-override", TINY, "--prompt", "Hi", "--max-new-tokens", "6", *flags]
    assert load_script(SCRIPT).main(args) == 0
    assert len(calls) == cached_calls                     # the prompt once, then one call per new token
    assert f"KV cache {'off' if flags else 'on'}" in capsys.readouterr().err


def test_without_weights_or_network_the_error_lists_every_file_to_fetch(tmp_path, monkeypatch, capsys):
    script = load_script(SCRIPT)
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    assert script.main(["--model", "gpt2-large", "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    for url, place in [("gpt2/resolve/main/vocab.json", "gpt2/vocab.json"),
                       ("gpt2/resolve/main/merges.txt", "gpt2/merges.txt"),
                       ("gpt2-large/resolve/main/model.safetensors", "gpt2/gpt2-large/model.safetensors")]:
        assert "https://huggingface.co/openai-community/" + url in err
        assert str(tmp_path / place) in err


@pytest.mark.parametrize("args, words", [
    (["--random", "--model", "some/folder"], "--random needs a size"),
    (["--temperature", "-1"], "--temperature -1.0"),
    (["--temperature", "1e-4"], "--temperature 0.0001: must be 0 (the most likely token) or a finite number >= 0.001"),
    (["--top-k", "0"], "--top-k 0"),
])
def test_nonsense_arguments_are_refused_before_any_work(tmp_path, args, words):
    result = run(tmp_path, *args, check=False)
    assert result.returncode == 2 and words in result.stderr


# --- what a user may hand the script: a prompt that is not text, a terminal that is not UTF-8, a folder ---

def gpt2_format_vocabulary(cache):
    """A 266-token vocabulary in GPT-2's files, where the script looks for GPT-2's."""
    BPETokenizer.train("the cat sat on the mat; the dog sat on the log. " * 20, 266).to_gpt2_files(cache / "gpt2")
    return TINY.replace('"vocab_size": 300', '"vocab_size": 266')


def run_bytes(cache, *args, **env):
    """The script with arguments as raw bytes (as a terminal in another encoding passes them)."""
    environment = {key: value for key, value in os.environ.items() if key != "TINYTRANSFORMER_BACKEND"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, timeout=120,
                           env={**environment, "TINYTRANSFORMER_CACHE": str(cache), **env})


def test_a_prompt_that_is_not_utf8_is_refused_before_any_work(tmp_path):
    config = gpt2_format_vocabulary(tmp_path)
    result = run_bytes(tmp_path, "--random", "--config-override", config, "--prompt", b"caf\xe9 au lait",
                       "--max-new-tokens", "3", PYTHONIOENCODING="utf-8")
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert b"--prompt holds the byte 0xE9 at character 3, which is not UTF-8 text" in result.stderr
    assert result.stdout == b"" and b"parameters" not in result.stderr          # no model was built


def test_text_the_terminal_cannot_show_is_printed_as_question_marks(tmp_path):
    result = run_bytes(tmp_path, "--random", "--config-override", TINY, "--prompt", "café".encode(),
                       "--max-new-tokens", "4", PYTHONIOENCODING="ascii")
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith(b"caf?")


def small_vocabulary_as_gpt2s(cache, monkeypatch):
    """A 260-token vocabulary in GPT-2's files, accepted in place of GPT-2's (whose sizes are checked)."""
    monkeypatch.setenv("TINYTRANSFORMER_CACHE", str(cache))
    BPETokenizer.train("a b c abc abcabc " * 30, 260).to_gpt2_files(cache / "gpt2")
    for name in ("vocab.json", "merges.txt"):
        monkeypatch.delitem(gpt2_files.KNOWN_FILES, ("gpt2", name))


def test_a_damaged_model_folder_is_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys):
    save_gpt2(GPT(gpt2_config("gpt2", vocab_size=260, block_size=64, n_layer=1, n_head=2, n_embd=16)),
              tmp_path / "model")
    (tmp_path / "model" / "config.json").write_text("[1, 2]")
    small_vocabulary_as_gpt2s(tmp_path / "cache", monkeypatch)
    assert load_script(SCRIPT).main(["--model", str(tmp_path / "model"), "--prompt", "abc"]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'model' / 'config.json'} holds a JSON list" in err


def test_a_folder_named_like_the_size_is_loaded_not_downloaded(tmp_path, monkeypatch, capsys):
    save_gpt2(GPT(gpt2_config("gpt2", vocab_size=260, block_size=64, n_layer=1, n_head=2, n_embd=16)),
              tmp_path / "gpt2")
    monkeypatch.chdir(tmp_path)
    small_vocabulary_as_gpt2s(tmp_path / "cache", monkeypatch)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    assert load_script(SCRIPT).main(["--model", "gpt2", "--prompt", "abc", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("abc") and "loading the folder ./gpt2, not the published gpt2" in out.err
