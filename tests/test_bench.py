"""Every benchmark script runs, in its --quick mode (tiny inputs, the report to a temporary
file): a renamed function or a broken import fails here, not in the next person's `make bench`.
The scripts run two at a time (most of a quick run is one core importing libraries)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in ("common", "copies"))
AT_ONCE = 2


def test_every_script_is_checked():
    assert len(SCRIPTS) >= 11 and "train_eval" in SCRIPTS


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory, helsinki_built: Path,
               embedded_db: Path) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """(helsinki_built: the session's tag classifier is in the user cache the scripts share;
    embedded_db: a database with pairs and an index, for serve.)"""
    folder = tmp_path_factory.mktemp("bench")

    def run(script: str) -> tuple[subprocess.CompletedProcess, Path]:
        out = folder / f"{script}.md"
        command = [sys.executable, str(BENCH / f"{script}.py"), "--quick", "--out", str(out)]
        if script == "serve":
            command += ["--db", str(embedded_db)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300), out

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return dict(zip(SCRIPTS, pool.map(run, SCRIPTS)))


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_quick(script, quick_runs):
    done, out = quick_runs[script]
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert report.startswith("#") and "|---" in report, report[:500]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
