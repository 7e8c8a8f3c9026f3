"""Every lesson runs to the end, as a script and as a notebook, and every check inside it passes.

A lesson stops with a non-zero exit status (as a script) or an error in a cell (as a notebook) when one
of its checks fails (LessonCheckFailed), so a lesson whose claim no longer holds fails here. Both ways
run in quick mode: `--quick` on the command line, LESSON_QUICK=1 in the kernel's environment.
"""
import importlib.util
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
sys.path.insert(0, str(LESSONS_DIR))
import _prose  # noqa: E402  (lessons/_prose.py: how a lesson's Markdown cells are read and shown)
from test_exercises import CORRECT, EXERCISES, one_blas_thread_env, write_solutions  # noqa: E402


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
def test_lesson_is_a_percent_notebook_with_its_prose_in_markdown_cells(lesson):
    """The introduction is a Markdown cell; each step is a `## heading` Markdown cell and then the code cell
    that starts with lesson.step(heading); a step's Markdown comes before its code or after all of it,
    never between two of its code cells (a terminal prints it at the step's start or end)."""
    source = lesson.read_text()
    assert re.match(r"# ---\n# jupyter:\n#   kernelspec:\n", source), "a jupytext header naming the kernel"
    assert "    lesson.step(" not in source, "a step inside a block cannot have a cell of its own"
    cells = _prose.read_cells(lesson)
    assert cells[0].kind == "markdown" and cells[0].text.startswith(f"# Lesson {lesson.name[:2]}: ")
    headings = [cell.heading for cell in cells if cell.heading is not None]
    assert len(headings) == len(set(headings)) == declared_steps(lesson)
    code = [i for i, cell in enumerate(cells) if cell.kind == "code"]
    for i in code:
        called = STEP_CALL.findall(cells[i].text)
        assert len(called) <= 1, "one step per cell"
        if called:
            assert cells[i].text.startswith("lesson.step("), f"cell {i}: lesson.step comes first in its cell"
    for previous, i in zip(code, code[1:]):
        between = cells[previous + 1:i]
        step_call = re.match(r'lesson\.step\("([^"]*)"\)', cells[i].text)
        if step_call:
            assert between and between[-1].heading == step_call.group(1), \
                f"lesson.step({step_call.group(1)!r}) is not right after its '## ' Markdown cell"
        elif cells[i].text != "lesson.done()":
            assert not between, f"Markdown between two code cells of one step, before: {cells[i].text[:60]!r}"
    assert cells[code[-1]].text == "lesson.done()", "the last cell ends the lesson"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_the_terminal_shows_every_formula_in_plain_text(lesson):
    """LaTeX is for the notebook; the terminal's rendering of every Markdown cell has none left."""
    for cell in _prose.read_cells(lesson):
        if cell.kind == "markdown":
            shown = _prose.plain(cell.text)
            assert "\\" not in shown and "$" not in shown, f"{lesson.name}: {shown[:300]}"


# --- run to the end: as a script and as a notebook, side by side ------------------------------------------

@pytest.fixture(scope="module")
def kernel_spec_dir(tmp_path_factory):
    """A kernelspec that starts the kernel with this very interpreter (not whatever `python` is on PATH);
    None without the notebooks extra."""
    if not all(importlib.util.find_spec(name) for name in ("jupytext", "nbclient", "ipykernel")):
        return None
    kernels = tmp_path_factory.mktemp("kernels")
    (kernels / "lesson-python").mkdir()
    (kernels / "lesson-python" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (lessons)", "language": "python"}))
    return kernels


def start_as_script(lesson: Path, out: Path, env: dict):
    """Start the lesson as a script with --quick; (the process, the exercises it grades). A lesson that
    grades exercises runs them too (--exercise), on correct solutions (tests/test_exercises.py's, each the
    library's own function): one run shows both that its checks pass and that its exercises plug in."""
    exercises = [name for name, file in EXERCISES.items() if file == lesson.name]
    env = {key: value for key, value in env.items() if key != "LESSON_EXERCISES_DIR"}
    flags = []
    if exercises:
        folder = write_solutions(out / "exercises", {name: CORRECT[name] for name in exercises})
        env["LESSON_EXERCISES_DIR"], flags = str(folder), ["--exercise"]
    # Its output is read once the notebook is done. A lesson prints about 15 kB, less than a pipe holds
    # (64 kB on Linux), so it never stops to wait for that; a much longer one would lose the overlap.
    process = subprocess.Popen([sys.executable, str(lesson), "--no-pause", "--quick", *flags, "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, env=env)
    return process, exercises


def check_script_run(lesson: Path, out: Path, exercises: list, returncode: int, stdout: str, stderr: str):
    assert returncode == 0, f"{lesson.name} failed as a script:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert "CHECK FAILED" not in stdout + stderr
    assert "checks passed" in stdout
    assert list(out.glob("*.png")), f"{lesson.name} saved no figure"
    n = declared_steps(lesson)
    headings = re.findall(r"^--- Step (\d+) of (\d+): ", stdout, re.MULTILINE)
    assert headings == [(str(k), str(n)) for k in range(1, n + 1)]
    # the terminal prints the lesson's Markdown: its introduction first, then every cell, in order
    cells = [cell for cell in _prose.read_cells(lesson) if cell.kind == "markdown"]
    at = 0
    for cell in cells:
        shown = _prose.plain(cell.body if cell.heading is not None or cell is cells[0] else cell.text)
        first_line = shown.split("\n", 1)[0]
        found = stdout.find(first_line, at)
        assert found >= 0, f"{lesson.name}: this Markdown was not printed in its place:\n{first_line}"
        at = found
    for name in exercises:            # the lesson really ran on the exercise files
        assert f"[exercise] {name}: yours, from {out / 'exercises' / name}.py" in stdout
    # each figure's path is printed in the step that makes it, so before the next step's heading
    for png in out.glob("*.png"):
        assert "figure" in stdout and str(png) in stdout, f"{png.name} was never announced"


def run_as_notebook(lesson: Path, out: Path, kernel_spec_dir: Path, env: dict):
    import jupytext
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    notebook = jupytext.read(lesson)
    manager = KernelManager(kernel_name="lesson-python",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)]))
    env = {**env, "LESSON_QUICK": "1", "LESSON_OUT": str(out)}
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


def check_notebook_run(lesson: Path, out: Path, notebook):
    n = declared_steps(lesson)
    assert notebook.metadata["kernelspec"]["language"] == "python"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# Lesson ")
    outputs = [(i, output) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    # the prose is Markdown cells, there before anything runs: a heading per step, and none printed again
    step_cells = [i for i, cell in enumerate(notebook.cells) if STEP_CALL.search(cell.source)]
    assert len(step_cells) == n
    for k, cell_index in enumerate(step_cells, start=1):
        above = notebook.cells[cell_index - 1]
        assert above.cell_type == "markdown" and above.source.startswith("## "), f"step {k} has no heading cell"
        shown_again = [o for i, o in outputs if i == cell_index and "text/markdown" in o.get("data", {})
                       and above.source.split("\n", 1)[0][3:] in o.data["text/markdown"]]
        assert not shown_again, f"step {k}: its heading is shown again as an output"
    assert not [o for _, o in outputs if o.output_type == "execute_result"
                and "PosixPath(" in o.get("data", {}).get("text/plain", "")], "a cell shows Out[]: PosixPath"
    images = [i for i, o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{lesson.name} shows no inline figure"
    assert len(images) == len(list(out.glob("*.png"))), "every saved figure is also shown inline"
    text = "".join(o.get("text", "") for _, o in outputs if o.output_type == "stream")
    assert "checks passed" in text and "CHECK FAILED" not in text


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_a_script_and_as_a_notebook(lesson, tmp_path, kernel_spec_dir):
    """Both in quick mode: as a script with `--quick`, as a notebook with LESSON_QUICK=1 in the kernel's
    environment. They are two processes, started together, so on two cores the pair takes about as long
    as the slower of the two. Each has one BLAS thread: with two each, four threads would take turns on
    the two cores, and what a lesson times would include the turns (lesson 21 checks that attention's time
    grows with the length)."""
    env = one_blas_thread_env()
    script, exercises = start_as_script(lesson, tmp_path / "script", env)
    notebook = None
    try:
        if kernel_spec_dir is not None:   # meanwhile, in a kernel of its own
            notebook = run_as_notebook(lesson, tmp_path / "notebook", kernel_spec_dir, env)
        stdout, stderr = script.communicate(timeout=180)
    finally:
        script.kill()                 # if the notebook failed, or the script ran past its time
        script.wait()
    check_script_run(lesson, tmp_path / "script", exercises, script.returncode, stdout, stderr)
    if notebook is None:
        pytest.skip("ran as a script; running it as a notebook needs the notebooks extra: "
                    "pip install -e '.[notebooks]'")
    check_notebook_run(lesson, tmp_path / "notebook", notebook)


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


# --- the prose: Markdown cells, shown as plain text in a terminal -------------------------------------------

def test_a_formula_reads_the_same_in_a_terminal():
    assert _prose.latex_to_unicode(r"\mathrm{softmax}(QK^\top/\sqrt{d_k})V") == "softmax(QKᵀ/√d_k)V"
    assert _prose.latex_to_unicode(r"\frac{\partial L}{\partial W} = X^\top dY") == "∂L/∂W = Xᵀ dY"
    assert _prose.latex_to_unicode(r"\hat{m} = m / (1 - \beta_1^t)") == "m̂ = m / (1 - β₁ᵗ)"
    assert _prose.latex_to_unicode(r"dW_v = \sum_{t:\ \mathrm{idx}_t = v} dY_t") == "dW_v = Σ_(t: idx_t = v) dY_t"
    assert _prose.latex_to_unicode(r"x \in \mathbb{R}^{d}, \quad \{1, 2\}") == "x ∈ ℝ^d,   {1, 2}"
    shown = _prose.plain("A **bold** `name`, and $a^2 + b^2$.\n\n- one\n- two\n  lines\n\n$$e^{i\\pi}$$")
    assert shown == "A bold name, and a²\u00a0+\u00a0b².\n\n  - one\n  - two lines\n\ne^(iπ)"


LESSON_WITH_PROSE = '''\
# %% [markdown]
# # Lesson 99: a lesson about nothing
#
# The introduction, with $x^2$.

# %%
from _lesson import Lesson
lesson = Lesson("99 Nothing", steps=2)

# %% [markdown]
# ## First
#
# Prose of the first step.

# %%
lesson.step("First")
print("output of the first step")

# %% [markdown]
# What the first step showed.

# %% [markdown]
# ## Second
#
# Prose of the second step.

# %%
lesson.step("Second")
print("output of the second step")

# %% [markdown]
# Closing words.

# %%
lesson.done()
'''


def test_the_terminal_prints_each_markdown_cell_in_its_place(tmp_path):
    lesson = tmp_path / "99_nothing.py"
    lesson.write_text(LESSON_WITH_PROSE)
    result = subprocess.run([sys.executable, str(lesson), "--no-pause", "--out", str(tmp_path)], text=True,
                            capture_output=True, env={**os.environ, "PYTHONPATH": str(LESSONS_DIR)})
    assert result.returncode == 0, result.stderr
    order = ["Lesson 99: a lesson about nothing", "The introduction, with x².", "--- Step 1 of 2: First ---",
             "Prose of the first step.", "output of the first step", "What the first step showed.",
             "--- Step 2 of 2: Second ---", "Prose of the second step.", "output of the second step",
             "Closing words.", "Done: 2 steps"]
    at = [result.stdout.find(text) for text in order]
    assert -1 not in at and at == sorted(at), result.stdout
    assert result.stdout.count("Prose of the first step.") == 1


def test_a_step_without_its_markdown_cell_stops(tmp_path):
    lesson = tmp_path / "99_nothing.py"
    lesson.write_text(LESSON_WITH_PROSE.replace('lesson.step("Second")', 'lesson.step("Third")'))
    result = subprocess.run([sys.executable, str(lesson), "--no-pause", "--out", str(tmp_path)], text=True,
                            capture_output=True, env={**os.environ, "PYTHONPATH": str(LESSONS_DIR)})
    assert result.returncode != 0
    assert "lesson.step('Third') has no Markdown cell '## Third' before it" in result.stderr
