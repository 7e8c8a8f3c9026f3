"""Fixtures for every test: a clean backend, and PyTorch as an optional oracle."""
import pytest

from helpers import LARGEST
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
