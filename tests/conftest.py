"""Fixtures for every test: a clean backend, PyTorch as an optional oracle, and for the tests that drive
the scripts, the scripts themselves and a small training text."""
import pytest

from helpers import LARGEST
from helpers.scripts import SAMPLE_SCRIPT, TRAIN_SCRIPT, load_script
from tinytransformer import backend


def pytest_addoption(parser):
    parser.addoption("--error-table", action="store_true",
                     help="print the largest gradient-check and PyTorch error seen for each layer")


@pytest.fixture(autouse=True)
def clean_backend():
    """Each test starts on NumPy in float32 with the weight generator seeded, and its switches are undone."""
    with backend.using(dtype="float32", backend="numpy"):
        backend.seed(0)
        yield


@pytest.fixture
def torch():
    """PyTorch (CPU), the independent oracle; a test that asks for it is skipped where it is missing."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


@pytest.fixture(scope="module")
def script():
    """scripts/train_shakespeare.py as a module: ``run_in_process(script, capsys, *flags)``."""
    return load_script(TRAIN_SCRIPT)


@pytest.fixture(scope="module")
def sampler():
    """scripts/sample.py as a module."""
    return load_script(SAMPLE_SCRIPT)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """A small training text (120 lines), so that a run needs neither the corpus nor a download."""
    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(120)))
    return path


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("--error-table") or not LARGEST:
        return
    write = terminalreporter.write_line
    write("")
    write(f"{'layer':<34} {'finite differences':>18} {'torch abs':>10} {'torch rel':>10}")
    for layer in sorted(LARGEST):
        row = LARGEST[layer]

        def cell(what):
            return f"{row[what]:.1e}" if what in row else "-"
        write(f"{layer:<34} {cell('finite differences'):>18} {cell('torch abs'):>10} {cell('torch rel'):>10}")
