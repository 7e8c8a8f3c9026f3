"""What every lesson shares: steps, checks that fail loudly, figures; in a terminal or in a notebook.

A lesson is a plain script, and at the same time a Jupyter notebook in jupytext's "percent" format: each
`# %%` line starts a cell, so Jupyter (with jupytext), VS Code and PyCharm open it as cells. Its prose is
in Markdown cells (lessons/_prose.py says how they are written and read); each step is a Markdown cell
whose first line is its `## heading`, then the code cell that starts with ``lesson.step`` and that heading:

    # %%
    lesson = Lesson("05 Attention by hand", steps=7)

    # %% [markdown]
    # ## Scores
    #
    # Each query is compared with every key by a dot product ...

    # %%
    lesson.step("Scores")
    ...compute with the library, print the numbers that matter...
    lesson.check("attention rows sum to 1", np.allclose(weights.sum(-1), 1))
    lesson.figure(fig, "attention_weights")

The lesson says how many steps it has (`steps=N`), so that every heading reads "step k of N"; a lesson
that takes more or fewer steps than it says stops with an error, so the number cannot drift.

In a terminal (`python lessons/NN_name.py`): the lesson prints its introduction, then waits for Enter
between steps (Ctrl-C or Ctrl-D at the prompt ends it with one line, "stopped at step k of N"), prints
each step's Markdown as plain text (read from the lesson's own file: one text for both) and each
figure's path in the step that makes it. Options: ``--no-pause`` runs straight through (so does a run
whose stdin is not a terminal), ``--out DIR`` is where figures go (default lessons/figures/, which git
ignores), ``--show`` also opens each figure in a window, ``--quick`` uses the small settings of the test
suite where a lesson trains or measures, ``--exercise`` runs the lesson on the learner's own functions.

In a notebook kernel (or any IPython) the command line belongs to the kernel, so it is not read; the same
settings come from environment variables, which a terminal run reads too (a flag wins over its variable):
LESSON_QUICK=1, LESSON_OUT=DIR, LESSON_EXERCISE=1. In a notebook the Markdown cells render themselves
and each figure is shown inline, in the cell that makes it (and also saved as PNG).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent     # the checkout (a lesson in a notebook has no __file__)
sys.path.insert(0, str(REPO))                     # run from a checkout without installing

import matplotlib  # noqa: E402
from _prose import plain, read_cells  # noqa: E402

DEFAULT_OUT = REPO / "lessons" / "figures"
TRUE_WORDS = ("1", "true", "yes", "on")


class LessonCheckFailed(AssertionError):
    """A claim the lesson makes did not hold: the lesson stops here."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def _ipython_shell():
    """The running IPython shell (a notebook kernel or the IPython terminal), or None in plain Python."""
    if "IPython" not in sys.modules:               # IPython is never imported just to find out
        return None
    from IPython import get_ipython
    return get_ipython()


class Lesson:
    def __init__(self, title: str, steps: int | None = None, argv=None, source: Path | None = None):
        shell = _ipython_shell()
        self.in_ipython = shell is not None and argv is None
        # A notebook kernel can display Markdown and images; the IPython terminal cannot, so it gets text.
        self.rich = self.in_ipython and getattr(shell, "kernel", None) is not None
        # The prose is read from the lesson's own file: the script being run (a notebook kernel has no
        # such file, and needs none: Jupyter shows the Markdown cells itself).
        script = getattr(sys.modules.get("__main__"), "__file__", None)
        if source is None and script and Path(script).suffix == ".py":
            source = Path(script)
        self.source = source
        self.cells = read_cells(source) if source is not None and not self.rich else []
        self.next_cell = 1 if self.cells and self.cells[0].kind == "markdown" else 0   # printed up to here
        intro = self.cells[0] if self.next_cell else None      # "# Lesson NN: ..." and what it is about
        parser = argparse.ArgumentParser(description=plain(intro.text) if intro else title,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--no-pause", action="store_true", help="do not wait for Enter between steps")
        parser.add_argument("--out", type=Path, default=Path(os.environ.get("LESSON_OUT") or DEFAULT_OUT),
                            help="folder for the figures (PNG); env LESSON_OUT")
        parser.add_argument("--show", action="store_true", help="also open each figure in a window")
        parser.add_argument("--quick", action="store_true", default=_env_flag("LESSON_QUICK"),
                            help="small settings (used by the test suite); env LESSON_QUICK=1")
        parser.add_argument("--exercise", action="store_true", default=_env_flag("LESSON_EXERCISE"),
                            help="use your own functions from lessons/exercises/; env LESSON_EXERCISE=1")
        # The kernel's argv (-f kernel.json) is not the lesson's: in IPython only the environment counts.
        self.args = parser.parse_args([] if self.in_ipython else argv)
        self.pause = not self.args.no_pause and not self.in_ipython and sys.stdin.isatty()
        self.quick = self.args.quick
        self.exercise_mode = self.args.exercise
        self.out = self.args.out
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.args.show and not self.in_ipython:
            matplotlib.use("Agg")  # save figures without ever opening a window
        self.title = title
        self.total_steps = steps
        self.n_steps = 0
        self.headings = []  # in the order first taken
        self.n_checks = 0
        self.figures = []
        self.start = time.perf_counter()
        if not self.rich:                  # a notebook shows its introduction as its first cell
            print("=" * 78)
            print(plain(intro.text.split("\n", 1)[0].lstrip("# ")) if intro else title)
            print("=" * 78)
            if intro and intro.body:
                print(plain(intro.body))

    # --- output -------------------------------------------------------------------------------------------
    def _markdown(self, text: str) -> None:
        from IPython.display import Markdown, display
        display(Markdown(text))

    def _of_n(self) -> str:
        return f"step {self.n_steps} of {self.total_steps}" if self.total_steps else f"step {self.n_steps}"

    def step(self, heading: str) -> None:
        """Start a step: wait for Enter (in a terminal, unless --no-pause), then print heading and prose.

        In a terminal the prose is the Markdown from the lesson's `## heading` cell up to this code cell;
        Markdown cells after the previous step's code (what it showed) are printed before the wait."""
        start = self._heading_cell(heading)
        self._print_markdown(self.next_cell, start)
        if self.n_steps > 0 and self.pause:
            self._wait_for_enter()
        if heading in self.headings:            # a notebook cell run again keeps its number
            self.n_steps = self.headings.index(heading) + 1
        else:
            if self.total_steps is not None and len(self.headings) >= self.total_steps:
                raise RuntimeError(f"{self.title} says it has {self.total_steps} steps but starts another "
                                   f"({heading!r}): fix steps= in its Lesson(...)")
            self.headings.append(heading)
            self.n_steps = len(self.headings)
        if self.rich:                      # the notebook already shows the step's Markdown cells
            return
        title = f"Step {self.n_steps}" + (f" of {self.total_steps}" if self.total_steps else "") + f": {heading}"
        print(f"\n--- {title} ---")
        if start is not None:
            end = next((i for i in range(start + 1, len(self.cells)) if self.cells[i].kind == "code"),
                       len(self.cells))
            body = "\n\n".join([self.cells[start].body] + [c.text for c in self.cells[start + 1:end]])
            if body.strip():
                print(plain(body))
            self.next_cell = end

    def _heading_cell(self, heading: str) -> int | None:
        """The index of the Markdown cell `## heading` (None when the lesson has no file to read)."""
        if not self.cells:
            return None
        for i, cell in enumerate(self.cells):
            if cell.heading == heading:
                return i
        raise RuntimeError(f"{self.source}: lesson.step({heading!r}) has no Markdown cell '## {heading}' "
                           "before it: give the step its cell, or make the two headings the same")

    def _print_markdown(self, start: int, end: int | None) -> None:
        """Print the Markdown cells in [start, end) as plain text (what the steps before said last)."""
        if not self.cells or self.rich:
            return
        for cell in self.cells[start:end]:
            if cell.kind == "markdown" and cell.text:
                print()
                print(plain(cell.text))

    def _wait_for_enter(self) -> None:
        """Wait for Enter; Ctrl-C or Ctrl-D ends the lesson with one line instead of a traceback."""
        try:
            input("\n[Enter] for the next step (Ctrl-C or Ctrl-D stops) ")
        except (KeyboardInterrupt, EOFError) as stop:
            print(f"\nstopped at {self._of_n()}")
            # 130 = 128 + SIGINT, the shell's status for Ctrl-C; end of input is an ordinary way to leave.
            sys.exit(130 if isinstance(stop, KeyboardInterrupt) else 0)

    def say(self, text: str) -> None:
        text = textwrap.dedent(text).strip()
        if self.rich:
            self._markdown(text)
        else:
            print(textwrap.fill(text, width=78))

    def check(self, claim: str, holds: bool, detail: str = "") -> None:
        """Print the claim with ✓, or stop the lesson with LessonCheckFailed."""
        self.n_checks += 1
        if not bool(holds):
            raise LessonCheckFailed(f"CHECK FAILED: {claim}" + (f" ({detail})" if detail else ""))
        print(f"  ✓ {claim}" + (f"  [{detail}]" if detail else ""))

    def figure(self, fig, name: str) -> None:
        """Save a figure as <out>/<name>.png and show it here: inline in a notebook, as a path in a terminal."""
        import matplotlib.pyplot as plt
        path = self.out / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        self.figure_file(path)
        if self.args.show:
            plt.show()
        plt.close(fig)  # in a notebook the inline backend would otherwise draw it a second time
        # Nothing is returned, so that a cell ending with lesson.figure(...) shows no Out[] line.

    def figure_file(self, path: Path, note: str = "") -> None:
        """Show a PNG that is already saved (by the lesson, or by a script it calls) in the current step."""
        self.figures.append(Path(path))
        if self.rich:
            from IPython.display import Image, display
            display(Image(filename=str(path)))
        else:
            print(f"  figure{f' ({note})' if note else ''}: {path}")

    def done(self) -> None:
        if self.total_steps is not None and len(self.headings) != self.total_steps:
            raise RuntimeError(f"{self.title} says it has {self.total_steps} steps but took {len(self.headings)}: "
                               f"fix steps= in its Lesson(...)")
        self._print_markdown(self.next_cell, None)     # the lesson's closing words, if it has any
        self.next_cell = len(self.cells)
        seconds = time.perf_counter() - self.start
        print(f"\nDone: {len(self.headings)} steps, {self.n_checks} checks passed, {len(self.figures)} figure(s), "
              f"{seconds:.1f}s.")

    # --- exercises --------------------------------------------------------------------------------------
    def exercise(self, name: str, library_fn):
        """The library's function, or with --exercise the learner's version of it from lessons/exercises/."""
        if not self.exercise_mode:
            return library_fn
        import _exercises  # only needed, and only imported, when the learner asks for exercises
        return _exercises.load(name, library_fn)

    # --- timing -----------------------------------------------------------------------------------------
    @staticmethod
    def median_time(fn, repeat: int = 5, warmup: int = 1, synchronize=None) -> float:
        """Seconds one call of fn takes: the median of `repeat` timed calls, after `warmup` untimed ones.

        `synchronize` (e.g. backend.synchronize) is called before the timer starts and before it stops,
        so that work still queued on a GPU is counted (lesson 22).

        On a busy machine a single run can be slowed many times over by another process; the median of
        several ignores the unlucky runs where the minimum would hide a real cost and the mean would
        absorb every hiccup."""
        synchronize = synchronize or (lambda: None)
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeat):
            synchronize()
            t0 = time.perf_counter()
            fn()
            synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
