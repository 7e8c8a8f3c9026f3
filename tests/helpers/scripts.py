"""What the tests that drive scripts/train_shakespeare.py and scripts/sample.py share: where the scripts
are, a tiny model's flags, and a way to call a script's main(argv) in this process (the fixtures that
load them, ``script`` and ``sampler``, are in conftest.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
TRAIN_SCRIPT = ROOT / "scripts" / "train_shakespeare.py"
SAMPLE_SCRIPT = ROOT / "scripts" / "sample.py"
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--log-interval", "1", "--sample-chars", "5", "--warmup-iters", "0"]


def load_script(path: Path):
    """A script as a module, to call its main(argv) in this process (cheaper than a new process).

    As when Python runs a script, the script's folder is on sys.path, so that the helpers the
    scripts share (scripts/_generation_common.py, scripts/_demo_common.py) import."""
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))   # last: its modules never hide a library's
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_in_process(script, capsys, *args) -> tuple:
    """script.main(args) in this process -> (exit status, what it printed, what it printed to stderr)."""
    code = script.main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err
