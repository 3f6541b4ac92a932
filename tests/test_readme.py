"""The README's Python snippets run as written.

Each snippet runs in a process of its own (the second tier, ``-m heavy``);
those that cross-validate or impute a whole dataset take tens of seconds and
are marked slow (``pytest -m slow tests/test_readme.py``).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
HEAVY = ("cross_val_score", "GridSearchCV", "fit_transform")


def _params():
    for i, code in enumerate(BLOCKS):
        marks = [pytest.mark.slow if any(word in code for word in HEAVY) else pytest.mark.heavy]
        yield pytest.param(code, id=f"block{i}", marks=marks)


def test_the_readme_has_snippets():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("code", _params())
def test_readme_snippet_runs(code, tmp_path):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
