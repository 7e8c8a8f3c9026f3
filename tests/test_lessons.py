"""Every lesson runs to the end, as a script and as a notebook, and every check inside it passes.

A lesson stops with a non-zero exit status (as a script) or an error in a cell (as a notebook) when one
of its checks fails (LessonCheckFailed), so a lesson whose claim no longer holds fails here. Both ways
run in quick mode: `--quick` on the command line, LESSON_QUICK=1 in the kernel's environment.
"""
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
STEP_CALL = re.compile(r"^lesson\.step\(", re.MULTILINE)


def declared_steps(lesson: Path) -> int:
    """N as the lesson declares it in Lesson(..., steps=N)."""
    return int(re.search(r"Lesson\(.*steps=(\d+)\)", lesson.read_text()).group(1))


def test_there_is_a_lesson_per_concept():
    assert len(LESSONS) >= 23
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1))  # numbered in teaching order, no gaps
    for lesson in LESSONS:  # the heading a learner sees carries the file's number
        title = re.search(r'Lesson\("([^"]*)"', lesson.read_text()).group(1)
        assert title.startswith(lesson.name[:3].replace("_", " ")), f"{lesson.name}: title {title!r}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_a_percent_notebook_with_a_cell_per_step(lesson):
    """Each step starts its own `# %%` cell (no step hidden in a block), and steps= counts them all."""
    source = lesson.read_text()
    cells = re.split(r"(?m)^# %%.*$", source)[1:]
    assert source.startswith("# %% [markdown]\n"), "the lesson's introduction is a markdown cell"
    step_cells = [cell for cell in cells if STEP_CALL.search(cell)]
    assert all(len(STEP_CALL.findall(cell)) == 1 for cell in step_cells), "one step per cell"
    assert "    lesson.step(" not in source, "a step inside a block cannot have a cell of its own"
    assert len(step_cells) == declared_steps(lesson)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_and_its_checks_pass(lesson, tmp_path):
    result = subprocess.run([sys.executable, str(lesson), "--no-pause", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{lesson.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "CHECK FAILED" not in result.stdout + result.stderr
    assert "checks passed" in result.stdout
    assert list(tmp_path.glob("*.png")), f"{lesson.name} saved no figure"
    n = declared_steps(lesson)
    headings = re.findall(r"^--- Step (\d+) of (\d+): ", result.stdout, re.MULTILINE)
    assert headings == [(str(k), str(n)) for k in range(1, n + 1)]
    # each figure's path is printed in the step that makes it, so before the next step's heading
    for png in tmp_path.glob("*.png"):
        assert "figure" in result.stdout and str(png) in result.stdout, f"{png.name} was never announced"


# --- as a notebook -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel_spec_dir(tmp_path_factory):
    """A kernelspec that starts the kernel with this very interpreter (not whatever `python` is on PATH)."""
    pytest.importorskip("jupytext", reason="the notebooks extra: pip install -e '.[notebooks]'")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    kernels = tmp_path_factory.mktemp("kernels")
    (kernels / "lesson-python").mkdir()
    (kernels / "lesson-python" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (lessons)", "language": "python"}))
    return kernels


def run_as_notebook(lesson: Path, out: Path, kernel_spec_dir: Path):
    import jupytext
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    notebook = jupytext.read(lesson)
    manager = KernelManager(kernel_name="lesson-python",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)]))
    env = {**os.environ, "LESSON_QUICK": "1", "LESSON_OUT": str(out)}
    env.pop("MPLBACKEND", None)  # the kernel chooses its own (inline) backend, as in Jupyter
    client = NotebookClient(notebook, km=manager, timeout=300,
                            resources={"metadata": {"path": str(LESSONS_DIR)}})  # the kernel's cwd
    try:
        client.execute(env=env)
    finally:
        # nbclient stops only the kernels it started itself; this one was given to it, so without this
        # every lesson's kernel (~130 MB each) would stay alive until the test session ends.
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    return notebook


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_a_notebook(lesson, tmp_path, kernel_spec_dir):
    notebook = run_as_notebook(lesson, tmp_path, kernel_spec_dir)   # raises CellExecutionError on error
    n = declared_steps(lesson)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("Lesson ")
    outputs = [(i, output) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    markdown = [(i, o.data["text/markdown"]) for i, o in outputs if "text/markdown" in o.get("data", {})]
    step_cells = [i for i, cell in enumerate(notebook.cells) if STEP_CALL.search(cell.source)]
    for k, cell_index in enumerate(step_cells, start=1):
        shown = [text for i, text in markdown if i == cell_index and text.startswith(f"### Step {k} of {n}: ")]
        assert len(shown) == 1, f"step {k}: its heading is not Markdown in its own cell"
        assert len(shown[0].split("\n\n", 1)[-1]) > 40, f"step {k}: its prose is missing"
    images = [i for i, o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{lesson.name} shows no inline figure"
    assert len(images) == len(list(tmp_path.glob("*.png"))), "every saved figure is also shown inline"
    text = "".join(o.get("text", "") for _, o in outputs if o.output_type == "stream")
    assert "checks passed" in text and "CHECK FAILED" not in text


# --- at the prompt --------------------------------------------------------------------------------------------

def run_in_terminal(args, keys: bytes, timeout=120):
    """Run `python args` on a pseudo-terminal, send `keys` at the first step prompt; (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:                                     # the child: its stdin and stdout are the terminal
        os.execv(sys.executable, [sys.executable, *map(str, args)])
    output = b""
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:                              # the child has exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"[Enter]" in output:
            time.sleep(0.2)                          # let input() set up the line before the key arrives
            os.write(fd, keys)
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.parametrize("key, status", [(b"\x03", 130), (b"\x04", 0)], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_prompt_stops_in_one_line(key, status, tmp_path):
    lesson = LESSONS_DIR / "05_attention_by_hand.py"
    code, output = run_in_terminal([lesson, "--out", tmp_path], key)
    assert f"stopped at step 1 of {declared_steps(lesson)}" in output, output[-2000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-2000:]
    assert "--- Step 2" not in output
    assert code == status


# --- the harness itself ------------------------------------------------------------------------------------

@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(LESSONS_DIR))
    for name in ("LESSON_QUICK", "LESSON_OUT", "LESSON_EXERCISE"):
        monkeypatch.delenv(name, raising=False)
    import _lesson
    return _lesson


def test_a_lesson_that_miscounts_its_steps_stops(harness, tmp_path):
    lesson = harness.Lesson("too many", steps=1, argv=["--out", str(tmp_path)])
    lesson.step("one")
    with pytest.raises(RuntimeError, match="says it has 1 steps but starts another"):
        lesson.step("two")
    lesson = harness.Lesson("too few", steps=3, argv=["--out", str(tmp_path)])
    lesson.step("one")
    with pytest.raises(RuntimeError, match="has 3 steps but took 1"):
        lesson.done()


def test_a_step_run_again_keeps_its_number(harness, tmp_path, capsys):
    lesson = harness.Lesson("again", steps=2, argv=["--out", str(tmp_path)])
    lesson.step("one")
    lesson.step("two")
    lesson.step("one")                               # a notebook cell run a second time
    assert "--- Step 1 of 2: one ---" in capsys.readouterr().out.split("two")[-1]
    lesson.step("two")
    lesson.done()


def test_settings_come_from_flags_or_from_the_environment(harness, tmp_path, monkeypatch):
    plain = harness.Lesson("plain", argv=["--out", str(tmp_path)])
    assert not plain.quick and not plain.exercise_mode
    assert plain.exercise("softmax", len) is len     # without --exercise: the library's function, untouched
    flags = harness.Lesson("flags", argv=["--quick", "--exercise", "--out", str(tmp_path)])
    assert flags.quick and flags.exercise_mode
    monkeypatch.setenv("LESSON_QUICK", "1")
    monkeypatch.setenv("LESSON_EXERCISE", "1")
    monkeypatch.setenv("LESSON_OUT", str(tmp_path / "from_env"))
    env = harness.Lesson("environment", argv=[])
    assert env.quick and env.exercise_mode and env.out == tmp_path / "from_env" and env.out.is_dir()


def test_median_time_is_the_median(harness):
    delays = iter([0.0, 0.03, 0.03, 0.0, 0.03, 1.0])  # a warm-up, then five timed runs
    calls = []

    def fn():
        delay = next(delays)
        calls.append(delay)
        time.sleep(delay)

    seconds = harness.Lesson.median_time(fn, repeat=5, warmup=1)
    assert len(calls) == 6
    assert 0.03 <= seconds < 0.1                     # the median: not the minimum (0), not the mean (0.22)
