"""The benchmark keeps working: a tiny run (seconds) of the real harness. Numbers are not checked here."""

import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
def test_tiny_benchmark_runs_end_to_end(tmp_path):
    """`python -m benchmarks.run --tiny` starts everything, measures every scenario and writes its table."""
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    for row in (
        "intake at saturation",
        "ceiling app at saturation",
        "Celery no-op",
        "pipeline (a)",
        "pipeline (b)",
        "end-to-end",
        "worker RSS",
        "in every run",
        "Batch size sweep",
    ):
        assert row in table
    # The sweep measured each of --tiny's batch sizes; the intake table has its one run.
    assert "\n| 1 | " in table
    assert "\n| 16 | " in table


def test_a_rewrite_keeps_the_commentary_below_the_table(tmp_path):
    """docs/benchmarks.md: the run rewrites the header and tables, and keeps the `## ` sections after them."""
    from benchmarks.run import _commentary

    doc = tmp_path / "benchmarks.md"
    assert _commentary(doc) == ""  # no file yet
    doc.write_text("# Benchmarks\n\n| old | table |\n\n## How to read it\n\nBy hand.\n\n## More\n\nAlso.\n")
    assert _commentary(doc) == "\n## How to read it\n\nBy hand.\n\n## More\n\nAlso.\n"
    doc.write_text("# Benchmarks\n\n| a table only |\n")
    assert _commentary(doc) == ""
