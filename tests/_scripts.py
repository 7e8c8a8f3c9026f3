"""What the tests that drive scripts/train_shakespeare.py and scripts/sample.py share: where the scripts
are, a tiny model's flags, and a way to call a script's main(argv) in this process."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = ROOT / "scripts" / "train_shakespeare.py"
SAMPLE_SCRIPT = ROOT / "scripts" / "sample.py"
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "1", "--log-interval", "1", "--sample-chars", "5", "--warmup-iters", "0"]


def load_script(path: Path):
    """A script as a module, to call its main(argv) in this process (cheaper than a new process)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
