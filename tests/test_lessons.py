"""Every lesson runs to the end with --no-pause --quick, and every check inside it passes.

A lesson stops with a non-zero exit status when one of its checks fails (LessonCheckFailed), so a
lesson whose claim no longer holds fails here.
"""
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).resolve().parent.parent / "lessons").glob("[0-9][0-9]_*.py"))


def test_there_is_a_lesson_per_concept():
    assert len(LESSONS) >= 16
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1))  # numbered in teaching order, no gaps


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_and_its_checks_pass(lesson, tmp_path):
    result = subprocess.run([sys.executable, str(lesson), "--no-pause", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{lesson.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "CHECK FAILED" not in result.stdout + result.stderr
    assert "checks passed" in result.stdout
    assert list(tmp_path.glob("*.png")), f"{lesson.name} saved no figure"
