"""The gunicorn config's hooks (run in a child process: freezing the collector is process-wide)."""

import subprocess
import sys

from tests.support import ROOT, SECRET


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


class TestGunicornLines:
    def test_secrets_are_blanked_in_gunicorns_own_lines(self, tmp_path, monkeypatch):
        """Regression: gunicorn's formatter knew no secrets, so the README's claim that they are redacted
        from every log line was false for gunicorn's own (a request line quoting a token, an error)."""
        from gunicorn.config import Config

        from ingest import gunicorn_conf

        monkeypatch.setenv("VOUCHERIFY_WEBHOOK_SECRETS", SECRET)
        monkeypatch.setenv("ADMIN_TOKEN", "admin-token-0123456789")
        cfg = Config()
        cfg.set("errorlog", str(tmp_path / "error.log"))
        cfg.set("accesslog", str(tmp_path / "access.log"))
        logger = gunicorn_conf.JsonLogger(cfg)
        logger.error("bad request line: GET /admin/events?token=%s", "admin-token-0123456789")
        logger.warning("signature %s did not match", SECRET)
        logger.access_log.info("GET /healthz?secret=%s", SECRET)
        for handler in (*logger.error_log.handlers, *logger.access_log.handlers):
            handler.flush()
        text = (tmp_path / "error.log").read_text() + (tmp_path / "access.log").read_text()
        assert len(text.splitlines()) == 3
        assert SECRET not in text
        assert "admin-token-0123456789" not in text
        assert text.count("[redacted]") == 3
