"""Every benchmark script runs, in its --quick mode (tiny inputs, the report to a temporary
file): a renamed function or a broken import fails here, not in the next person's `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in ("common", "copies"))


def test_every_script_is_checked():
    assert len(SCRIPTS) >= 11 and "train_eval" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_quick(script, tmp_path, request, helsinki_built):
    """(helsinki_built: the session's tag classifier is in the user cache the scripts share.)"""
    out = tmp_path / f"{script}.md"
    command = [sys.executable, str(BENCH / f"{script}.py"), "--quick", "--out", str(out)]
    if script == "serve":  # a database with pairs and an index
        command += ["--db", str(request.getfixturevalue("embedded_db"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert report.startswith("#") and "|---" in report, report[:500]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
