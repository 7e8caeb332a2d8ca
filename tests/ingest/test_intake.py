"""The intake's route answered ahead of Flask (ingest/intake.py): what it owns, and what it leaves to Flask.

What a delivery is answered (202, 401, 413, 503, duplicates) is tests/ingest/test_views.py; here, that moving
the route out of Flask's request machinery kept everything Flask gave it.
"""

import json
import logging

import pytest
from werkzeug.datastructures import EnvironHeaders
from werkzeug.test import EnvironBuilder, run_wsgi_app

from core import examples
from ingest import create_app, intake
from tests.fakes import RecordingQueue
from tests.support import parse_metrics, sample, signed

P = "voucherify_ingest"


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def client(settings, store, queue):
    return create_app(settings, store=store, queue=queue).test_client()


def kept_headers(store, event_id):
    return json.loads(store.r.hget(store.key("ev", event_id), "headers"))


def delivery():
    return signed(examples.example_envelope("voucher.updated"))


class TestWhatTheRouteOwns:
    @pytest.mark.parametrize(
        ("path", "source"),
        [
            ("/webhooks/voucherify", ""),
            ("/webhooks/voucherify/shop-1", "shop-1"),
            ("/webhooks/voucherify/", None),
            ("/webhooks/voucherify/a/b", None),
            ("/webhooks/voucherifyx", None),
            ("/webhooks", None),
            ("/webhooks/voucherify/caf\xc3\xa9", "café"),  # WSGI's latin-1 spelling of UTF-8 bytes
            ("/webhooks/voucherify/\xff", None),  # not UTF-8: Flask's to answer
        ],
    )
    def test_the_paths_of_flasks_two_rules(self, path, source):
        assert intake._source({"PATH_INFO": path}) == source

    @pytest.mark.parametrize("path", ["/webhooks/voucherify/", "/webhooks/voucherify/a/b"])
    def test_other_paths_are_flasks_404(self, client, store, queue, path):
        body, headers = delivery()
        resp = client.post(path, data=body, headers=headers)
        assert resp.status_code == 404
        assert resp.json["error"] == "not_found"
        assert queue.sent == []
        assert store.counts().get("queued", 0) == 0

    def test_get_is_405_with_allow(self, client):
        resp = client.get("/webhooks/voucherify/shop-1")
        assert resp.status_code == 405
        assert set(resp.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
        assert resp.json["error"] == "method_not_allowed"

    def test_options_lists_post(self, client):
        resp = client.options("/webhooks/voucherify")
        assert resp.status_code == 200
        assert "POST" in resp.headers["Allow"]

    def test_non_ascii_source_is_404(self, client, queue):
        body, headers = delivery()
        resp = client.post("/webhooks/voucherify/caf%C3%A9", data=body, headers=headers)
        assert resp.status_code == 404
        assert resp.json == {"error": "not_found", "message": "unknown webhook source"}
        assert queue.sent == []

    def test_answer_headers(self, client):
        body, headers = delivery()
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 202
        assert resp.headers["Content-Type"] == "application/json"
        assert int(resp.headers["Content-Length"]) == len(resp.data)
        assert json.loads(resp.data)["status"] == "queued"


class TestWhatFlaskGaveIt:
    def test_kept_headers_are_werkzeugs_less_credentials(self, client, store):
        """The stored headers are exactly the request's as Werkzeug lists them, lower-cased, without the
        credentials and the signature."""
        body, headers = delivery()
        sent = {
            **headers,
            "Authorization": "Bearer not-kept",
            "Cookie": "session=not-kept",
            "Proxy-Authorization": "Basic not-kept",
            "X-Request-Id": "req-1",
            "User-Agent": "Voucherify-Webhooks/1.0",
        }
        resp = client.post("/webhooks/voucherify", data=body, headers=sent)
        kept = kept_headers(store, resp.json["id"])
        environ = EnvironBuilder(
            path="/webhooks/voucherify", method="POST", data=body, headers=sent
        ).get_environ()
        dropped = {"authorization", "cookie", "proxy-authorization", "x-voucherify-signature"}
        werkzeug = {k.lower(): v for k, v in EnvironHeaders(environ).items() if k.lower() not in dropped}
        assert kept.pop("remote_addr") == "127.0.0.1"
        assert kept == werkzeug
        assert kept["x-request-id"] == "req-1"
        assert kept["content-length"] == str(len(body))

    @pytest.mark.parametrize(("trusted", "addr"), [(0, "127.0.0.1"), (1, "203.0.113.9")])
    def test_forwarded_for_is_believed_only_from_trusted_proxies(self, settings, store, trusted, addr):
        """ProxyFix sits outside the intake's route, so it keeps the client's address Flask's views see."""
        app = create_app(settings.with_(trusted_proxies=trusted), store=store, queue=RecordingQueue())
        body, headers = delivery()
        resp = app.test_client().post(
            "/webhooks/voucherify", data=body, headers={**headers, "X-Forwarded-For": "203.0.113.9"}
        )
        assert kept_headers(store, resp.json["id"])["remote_addr"] == addr

    def test_a_failure_is_a_logged_counted_json_500(self, client, store, monkeypatch, caplog):
        """An unexpected exception: what Flask did for a view (logged with its traceback, a JSON 500 the
        sender retries), and counted as an `error`."""

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        before = parse_metrics(client.get("/metrics").data.decode())
        monkeypatch.setattr(store, "accept", broken)
        body, headers = delivery()
        with caplog.at_level(logging.ERROR, logger="ingest.intake"):
            resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 500
        assert resp.json["error"] == "internal_server_error"
        record = next(r for r in caplog.records if r.getMessage() == "intake failed")
        assert record.exc_info is not None
        assert record.exc_info[0] is RuntimeError
        after = parse_metrics(client.get("/metrics").data.decode())
        name = f"{P}_requests_total"
        assert sample(after, name, outcome="error") - sample(before, name, outcome="error") == 1

    def test_store_down_still_counts_the_secret(self, settings, tmp_path, queue):
        """A 503 counts which secret matched, as it did when Flask's hooks counted it."""
        from core.store import EventStore

        down = settings.with_(redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path)
        store = EventStore.from_settings(down, timeout=0.2)
        client = create_app(down, store=store, queue=queue).test_client()
        before = parse_metrics(client.get("/metrics").data.decode())
        body, headers = delivery()
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        after = parse_metrics(client.get("/metrics").data.decode())
        name = f"{P}_secret_matches_total"
        assert sample(after, name, secret="0") - sample(before, name, secret="0") == 1
        store.r.close()

    def test_a_body_cut_short_is_a_400_not_a_500(self, client, store, queue, caplog):
        """The sender went away mid-body (fewer bytes than its Content-Length, under a server that does not
        terminate the input stream): a 400 saying so, a warning without a traceback, nothing stored, and
        counted as `incomplete`, not as an intake bug. (Regression: it was a logged `intake failed` 500.)"""
        before = parse_metrics(client.get("/metrics").data.decode())
        body, headers = delivery()
        environ = EnvironBuilder(
            path="/webhooks/voucherify", method="POST", data=body, headers=headers
        ).get_environ()
        environ["CONTENT_LENGTH"] = str(len(body) + 100)  # the rest never comes
        with caplog.at_level(logging.WARNING, logger="ingest.intake"):
            answer, status, _ = run_wsgi_app(client.application, environ, buffered=True)
        assert status == "400 Bad Request"
        assert json.loads(b"".join(answer))["error"] == "incomplete_body"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        refused = next(r for r in caplog.records if r.getMessage() == "webhook refused")
        assert (refused.reason, refused.exc_info) == ("incomplete_body", None)
        assert sum(store.counts().values()) == 0
        assert queue.sent == []
        after = parse_metrics(client.get("/metrics").data.decode())
        name = f"{P}_requests_total"
        assert sample(after, name, outcome="incomplete") - sample(before, name, outcome="incomplete") == 1
        assert sample(after, name, outcome="error") == sample(before, name, outcome="error")
