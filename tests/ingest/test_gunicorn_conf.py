"""The gunicorn config's hooks (run in a child process: freezing the collector is process-wide)."""

import subprocess
import sys

from tests.support import ROOT


def test_each_worker_freezes_what_it_loaded():
    """After the app loads, its long-lived objects leave the cyclic collector's reach (the p99 fix)."""
    code = (
        "import gc; from ingest import create_app; from ingest import gunicorn_conf\n"
        "before = gc.get_freeze_count(); gunicorn_conf.post_worker_init(None)\n"
        "print(before, gc.get_freeze_count())"
    )
    env = {"VOUCHERIFY_WEBHOOK_SECRETS": "s" * 16, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, after = map(int, out.stdout.split())
    assert before == 0
    assert after > 10_000  # the modules and the objects they built
