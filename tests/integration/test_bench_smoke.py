"""Every bench starts and finishes at its tiny size (``python -m bench all --tiny``); no numbers
are checked here, the benches themselves are run by hand (README, Performance)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_bench_runs_at_tiny_size(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--tiny"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "BENCH_DIR": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = ("rollup-query", "history", "table-writes", "report-latency", "cold-start", "backfill", "org-report",
             "scale-run", "backfill-scale")
    for name in names:
        assert f"## {name}" in done.stdout
    assert done.stdout.count("RESULT ") >= 2 * len(names)
