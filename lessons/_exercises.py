"""Exercise mode: the learner's function runs in place of the library's, and the lesson grades it.

A lesson asks for an exercise with ``lesson.exercise(name, library_fn)``; with ``--exercise`` that calls
``load(name, library_fn)`` here, which imports ``lessons/exercises/<name>.py``, takes its function
``<name>`` and returns it wrapped. The lesson then runs on the learner's code, and its checks (and, for a
backward, its finite-difference checks in float64) say whether it is right.

    - A stub still empty (its ``raise NotImplementedError``) ends the lesson with one line naming the
      file to open, no traceback, exit status 3 (NOT_WRITTEN).
    - Any other error in the learner's code keeps its traceback (that is where the bug is), after a line
      saying that it came from the exercise file.

The folder is lessons/exercises/ unless the environment variable LESSON_EXERCISES_DIR names another one
(the tests use that to run the lessons on correct and on deliberately wrong solutions).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
from pathlib import Path

EXERCISES_DIR = Path(__file__).resolve().parent / "exercises"
NOT_WRITTEN = 3  # exit status of a lesson stopped by an exercise that is still a stub

_loaded = {}  # name -> the learner's function: each exercise file is imported once per run


def folder() -> Path:
    return Path(os.environ.get("LESSON_EXERCISES_DIR") or EXERCISES_DIR)


def _shown(path: Path) -> str:
    """The path as the learner would type it: relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _stop(message: str):
    print(message, flush=True)
    raise SystemExit(NOT_WRITTEN)


def _raised_in(error: BaseException, path: Path) -> bool:
    """Whether the innermost frame of the error's traceback is in ``path`` (the stub's own raise)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve()


def load(name: str, library_fn):
    """The learner's ``<name>`` from the exercises folder, wrapped; called where ``library_fn`` was."""
    path = folder() / f"{name}.py"
    if name not in _loaded:
        if not path.is_file():
            _stop(f"Exercise {name!r} has no file: expected {_shown(path)} (lessons/exercises/README.md "
                  f"lists the exercises).")
        spec = importlib.util.spec_from_file_location(f"exercise_{name}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:
            print(f"Exercise {name!r}: {_shown(path)} could not be imported; the error is below.",
                  file=sys.stderr, flush=True)
            raise
        learner_fn = getattr(module, name, None)
        if not callable(learner_fn):
            _stop(f"Exercise {name!r}: {_shown(path)} must define a function named {name}; it does not.")
        _loaded[name] = learner_fn
        print(f"  [exercise] {name}: yours, from {_shown(path)}, runs in place of the library's "
              f"{getattr(library_fn, '__qualname__', name)}", flush=True)
    learner_fn = _loaded[name]

    @functools.wraps(learner_fn)
    def run(*args, **kwargs):
        try:
            return learner_fn(*args, **kwargs)
        except NotImplementedError as error:
            if not _raised_in(error, path):
                raise  # raised deeper, by something the learner called: a real error, keep the traceback
            _stop(f"Exercise {name!r} is not written yet: open {_shown(path)}, replace the "
                  f"`raise NotImplementedError` with your code, and run this lesson again with --exercise.")
        except Exception:
            print(f"\nThe error below comes from your exercise {name!r} ({_shown(path)}):",
                  file=sys.stderr, flush=True)
            raise

    return run
