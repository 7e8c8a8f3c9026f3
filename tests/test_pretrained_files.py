"""files.replace_folder, which save_gpt2 writes a model's folder with: a process killed at any moment
leaves the old folder or the new one, whole; and files.strict_json_loads, which reads shared JSON."""
import os
import subprocess
import sys

import pytest

from helpers.scripts import ROOT
from tinytransformer import files

OLD = {"weights": b"old weights", "config": b"old config"}
NEW = {"weights": b"new weights", "config": b"new config"}

# Replaces the folder argv[1] by NEW, killed (os._exit, as kill -9: no cleanup runs) at argv[2].
WRITER = """
import os, shutil, sys
from pathlib import Path
from tinytransformer import files
folder, point = Path(sys.argv[1]), sys.argv[2]
real_rename, real_rmtree, renames = os.rename, shutil.rmtree, []

def rename(source, target):
    if point == "before the first rename":
        os._exit(9)
    real_rename(source, target)
    renames.append(target)
    if point == "between the two renames" and len(renames) == 1:
        os._exit(9)

def rmtree(path, *args, **kwargs):
    if point == "while deleting the old folder" and len(renames) == 2:
        next(Path(path).iterdir()).unlink()          # one of its files gone, then killed
        os._exit(9)
    real_rmtree(path, *args, **kwargs)

def fill(new):
    (new / "weights").write_bytes(b"new weights")
    if point == "while writing the new folder":
        os._exit(9)
    (new / "config").write_bytes(b"new config")
os.rename, shutil.rmtree = rename, rmtree
files.replace_folder(folder, fill)
"""


def contents(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def old_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in OLD.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("point, survivor", [("while writing the new folder", OLD),
                                             ("before the first rename", OLD),
                                             ("between the two renames", NEW),
                                             ("while deleting the old folder", NEW),
                                             ("never", NEW)])
def test_a_writer_killed_at_any_moment_leaves_the_old_folder_or_the_new_one(tmp_path, point, survivor):
    folder = old_folder(tmp_path)
    result = subprocess.run([sys.executable, "-c", WRITER, str(folder), point], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == (0 if point == "never" else 9), result.stderr
    if point == "between the two renames":
        assert not folder.exists()                  # for a moment, no folder: both are beside it, whole
    logs = []
    files.finish_replacing_folder(folder, log=logs.append)   # what the next save or load does first
    assert contents(folder) == survivor
    assert [path.name for path in tmp_path.iterdir()] == ["model"]     # no leftovers
    assert bool(logs) == (point == "between the two renames")


def test_the_next_replace_finishes_a_killed_one_first(tmp_path):
    folder = old_folder(tmp_path)
    subprocess.run([sys.executable, "-c", WRITER, str(folder), "between the two renames"],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    files.replace_folder(folder, lambda new: (new / "third").write_bytes(b"3"), log=lambda *a: None)
    assert contents(folder) == {"third": b"3"}
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_a_live_writers_temporary_folder_is_left_alone(tmp_path):
    folder = old_folder(tmp_path)
    live = tmp_path / f"model.tmp-{os.getppid()}"       # the parent process runs
    live.mkdir()
    files.finish_replacing_folder(folder, log=lambda *a: None)
    assert live.is_dir() and contents(folder) == OLD


def test_an_error_while_writing_leaves_the_old_folder_and_no_temporary(tmp_path):
    folder = old_folder(tmp_path)

    def fill(new):
        (new / "weights").write_bytes(b"half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        files.replace_folder(folder, fill)
    assert contents(folder) == OLD and [path.name for path in tmp_path.iterdir()] == ["model"]


def test_kept_files_are_carried_over_and_the_rest_replaced(tmp_path):
    folder = old_folder(tmp_path)
    files.replace_folder(folder, lambda new: (new / "weights").write_bytes(b"new"), keep=["config"])
    assert contents(folder) == {"weights": b"new", "config": b"old config"}


def test_a_file_or_the_current_folder_is_not_replaced(tmp_path, monkeypatch):
    (tmp_path / "a file").write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        files.replace_folder(tmp_path / "a file", lambda new: None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="current folder"):
        files.replace_folder(".", lambda new: None)
    with pytest.raises(ValueError, match="current folder"):
        files.replace_folder("..", lambda new: None)
    assert (tmp_path / "a file").read_bytes() == b"x"


@pytest.mark.parametrize("text, words", [
    ('{"a": 1, "a": 2}', "'a' appears twice"),
    ("[" + "9" * 5000 + "]", "5,000 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{", "not JSON"),
])
def test_strict_json_refuses_what_json_loads_would_get_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        files.strict_json_loads(text)


def test_strict_json_reads_what_json_loads_reads():
    text = '{"a": [1, -2, 3.5, "x", null, true], "b": {"c": 18446744073709551615}}'
    assert files.strict_json_loads(text) == {"a": [1, -2, 3.5, "x", None, True], "b": {"c": 2 ** 64 - 1}}
