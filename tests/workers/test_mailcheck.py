"""The worker says at start what would stop every email (issue 10, item 5), and /readyz reports it."""

from __future__ import annotations

import logging

import pytest

from core import mailstatus
from ingest import create_app
from tests.smtp_servers import CREDENTIALS, PASSWORD, USER, Pki, make_pki, serving
from tests.support import start_worker, worker_env
from workers.mailcheck import check_mail

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class TestCheckMail:
    def test_credentials_without_tls_are_reported(self, settings, store, caplog):
        """A server with no STARTTLS and SMTP_URL with credentials: an error line, and /readyz says why
        (still 200: the intake keeps storing deliveries)."""
        with serving(auth_require_tls=False) as (handler, port):
            s = settings.with_(smtp_url=f"smtp://{CREDENTIALS}@127.0.0.1:{port}")
            with caplog.at_level(logging.INFO, logger="workers.mail"):
                assert check_mail(s, store) == "smtp_tls_required"
        assert handler.logins == []
        (line,) = [r for r in caplog.records if r.name == "workers.mail"]
        assert line.levelno == logging.ERROR
        assert line.reason == "smtp_tls_required"
        resp = create_app(s).test_client().get("/readyz")
        assert resp.status_code == 200
        assert resp.json["mail"] == "smtp_tls_required"

    def test_a_good_server_is_ok_and_clears_the_report(self, settings, store, pki: Pki):
        mailstatus.record(store, "smtp_tls_required")
        with serving(tls_context=pki.server_context(), auth_require_tls=True) as (handler, port):
            s = settings.with_(smtp_url=f"smtp://{CREDENTIALS}@127.0.0.1:{port}", smtp_ca_file=pki.ca)
            assert check_mail(s, store) == "ok"
        assert handler.logins == [(USER, True)]
        assert create_app(s).test_client().get("/readyz").json["mail"] == "ok"

    def test_without_smtp_url_nothing_is_checked(self, settings, store):
        assert check_mail(settings, store) is None
        assert create_app(settings).test_client().get("/readyz").json["mail"] is None


@pytest.mark.integration
class TestWorkerStart:
    def test_a_real_worker_says_so_at_start(self, redis_url, tmp_path):
        """`celery -A workers worker` logs smtp_tls_required once it is ready, without the password."""
        with serving(auth_require_tls=False) as (handler, port):
            env = worker_env(redis_url, SMTP_URL=f"smtp://{CREDENTIALS}@127.0.0.1:{port}")
            worker = start_worker(env, tmp_path / "worker.log")
            try:
                worker.wait_for_output('"reason": "smtp_tls_required"', timeout=30)
            finally:
                worker.stop()
        assert handler.logins == []
        assert PASSWORD not in worker.output()
        assert CREDENTIALS not in worker.output()
