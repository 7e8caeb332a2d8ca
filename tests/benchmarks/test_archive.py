"""The archive's benchmark keeps working: a tiny run (seconds). Numbers are not checked here."""

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_tiny_archive_benchmark_runs_end_to_end():
    """`python -m benchmarks.archive --tiny` measures every figure of docs/benchmarks.md's Archive section."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.archive", "--tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout)
    keys = ("hot", "compacted", "after", "disk_sqlite", "moved_per_s_sqlite")
    keys += ("throughput_ratio_archiving", "throughput_ratio_competing", "total_cpu_ratio_archiving")
    for key in keys:
        assert key in figures
