"""What every lesson shares: steps that wait for Enter, checks that fail loudly, figures saved as PNG.

A lesson is a plain script:

    lesson = Lesson("04 Attention by hand", __doc__)
    lesson.step("Scores", "Each query is compared with every key by a dot product ...")
    ...compute with the library, print the numbers that matter...
    lesson.check("attention rows sum to 1", np.allclose(weights.sum(-1), 1))
    lesson.figure(fig, "attention_weights")
    lesson.done()

Command line (every lesson): ``--no-pause`` runs straight through (so does a run whose stdin is not a
terminal), ``--out DIR`` is where figures go (default lessons/figures/, which git ignores), ``--show``
also opens each figure in a window, ``--quick`` uses the small settings of the test suite where a lesson
trains or measures.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import matplotlib  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"


class LessonCheckFailed(AssertionError):
    """A claim the lesson makes did not hold: the lesson stops here."""


class Lesson:
    def __init__(self, title: str, doc: str | None = None, argv=None):
        parser = argparse.ArgumentParser(description=doc or title,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--no-pause", action="store_true", help="do not wait for Enter between steps")
        parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the figures (PNG)")
        parser.add_argument("--show", action="store_true", help="also open each figure in a window")
        parser.add_argument("--quick", action="store_true", help="small settings (used by the test suite)")
        self.args = parser.parse_args(argv)
        self.pause = not self.args.no_pause and sys.stdin.isatty()
        self.quick = self.args.quick
        self.out = self.args.out
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.args.show:
            matplotlib.use("Agg")  # save figures without ever opening a window
        self.title = title
        self.n_steps = 0
        self.n_checks = 0
        self.figures = []
        self.start = time.perf_counter()
        print("=" * 78)
        print(title)
        print("=" * 78)

    def step(self, heading: str, explanation: str = "") -> None:
        """Start a step: wait for Enter (unless --no-pause), then print its heading and explanation."""
        if self.n_steps > 0 and self.pause:
            input("\n[Enter] for the next step ")
        self.n_steps += 1
        print(f"\n--- Step {self.n_steps}: {heading} ---")
        if explanation:
            print(textwrap.fill(textwrap.dedent(explanation).strip(), width=78))

    def say(self, text: str) -> None:
        print(textwrap.fill(textwrap.dedent(text).strip(), width=78))

    def check(self, claim: str, holds: bool, detail: str = "") -> None:
        """Print the claim with ✓, or stop the lesson with LessonCheckFailed."""
        self.n_checks += 1
        if not bool(holds):
            raise LessonCheckFailed(f"CHECK FAILED: {claim}" + (f" ({detail})" if detail else ""))
        print(f"  ✓ {claim}" + (f"  [{detail}]" if detail else ""))

    def figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as <out>/<name>.png (and show it with --show)."""
        import matplotlib.pyplot as plt
        path = self.out / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        self.figures.append(path)
        print(f"  figure: {path}")
        if self.args.show:
            plt.show()
        plt.close(fig)
        return path

    def done(self) -> None:
        seconds = time.perf_counter() - self.start
        print(f"\nDone: {self.n_steps} steps, {self.n_checks} checks passed, {len(self.figures)} figure(s), "
              f"{seconds:.1f}s.")
