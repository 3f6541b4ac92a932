"""The gallery scripts run, with reduced sizes, so they never rot.

Each ``examples/plot_*.py`` runs in its own process with
``SKHOP_EXAMPLES_QUICK=1`` (reduced sizes, seconds each) and the
non-interactive matplotlib backend, from the ``examples/`` directory as
sphinx-gallery runs it. An example whose optional dependency is not
installed is skipped.
"""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))

pytestmark = pytest.mark.heavy  # a process per script
# Imports that are extras rather than dependencies of skhop.
OPTIONAL = {"matplotlib", "pandas", "dask", "distributed", "skorch", "faiss", "skops"}
# A hang guard, far above what any example needs in quick mode.
TIMEOUT_S = 300


def _optional_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return sorted(names & OPTIONAL)


def test_there_are_examples():
    assert SCRIPTS, f"no plot_*.py in {EXAMPLES}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_in_quick_mode(script):
    for module in _optional_imports(script):
        pytest.importorskip(module)
    env = dict(
        os.environ,
        SKHOP_EXAMPLES_QUICK="1",
        MPLBACKEND="Agg",
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, script.name],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{script.name} failed after {elapsed:.1f} s:\n{result.stdout[-2000:]}\n"
        f"{result.stderr[-4000:]}"
    )
