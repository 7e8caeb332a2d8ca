import json

import pytest
import redis

from core import examples
from core.settings import Settings
from ingest import create_app, signature
from tests.fakes import RecordingQueue
from tests.support import SECRET, signed


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def client(settings, store, queue):
    return create_app(settings, store=store, queue=queue).test_client()


def envelope(**overrides):
    return examples.example_envelope("voucher.updated", **overrides)


class TestAccepted:
    def test_signed_delivery_is_stored_and_enqueued(self, client, store, queue):
        """A signed webhook answers 202 queued; the raw bytes are stored and the id enqueued once."""
        body, headers = signed(envelope())
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 202
        assert resp.json["status"] == "queued"
        event_id = resp.json["id"]
        assert queue.sent == [(event_id, "events")]
        stored = store.load(event_id)
        assert stored.raw == body
        assert stored.status == "queued"
        doc = store.document(event_id)
        assert doc["dedup_key"].startswith("ev:wh_test:evtest_")
        assert store.outbox_size() == 1

    def test_verdict_and_headers_are_kept_but_not_the_signature(self, client, store):
        body, headers = signed(envelope())
        headers["X-Request-Id"] = "req-1"
        event_id = client.post("/webhooks/voucherify", data=body, headers=headers).json["id"]
        fields = store.r.hgetall(store.key("ev", event_id))
        kept = json.loads(fields[b"headers"])
        assert fields[b"secret"] == b"secret:0"
        assert kept["x-request-id"] == "req-1"
        assert "x-voucherify-signature" not in kept

    def test_pretty_printed_body_signed_compact_is_accepted(self, client):
        """Voucherify signs the compact JSON; a body sent with whitespace still verifies."""
        doc = envelope()
        body = json.dumps(doc, indent=2).encode()
        _compact, headers = signed(doc)
        assert client.post("/webhooks/voucherify", data=body, headers=headers).status_code == 202

    def test_rotated_secret_is_accepted(self, settings, store, queue):
        """During rotation both secrets are accepted, and the store says which one matched."""
        app = create_app(settings.with_(webhook_secrets=("new-secret", SECRET)), store=store, queue=queue)
        body, headers = signed(envelope())
        event_id = app.test_client().post("/webhooks/voucherify", data=body, headers=headers).json["id"]
        assert store.r.hget(store.key("ev", event_id), "secret") == b"secret:1"

    @pytest.mark.parametrize("body", [b"not json at all", b"[1, 2, 3]", b'{"no": "envelope"}', b""])
    def test_authenticated_garbage_is_still_stored(self, client, store, body):
        """Not JSON, not an object, not an envelope: still 202 and stored; the worker marks it invalid."""
        headers = {"Content-Type": "application/json", signature.HEADER: signature.sign(SECRET, body)}
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 202
        assert store.load(resp.json["id"]).raw == body

    def test_source_path_is_recorded(self, client, store):
        """`/webhooks/voucherify/<source>` gives a distribution its own endpoint."""
        body, headers = signed(envelope())
        event_id = client.post("/webhooks/voucherify/newsletter", data=body, headers=headers).json["id"]
        assert store.load(event_id).source == "newsletter"

    def test_enqueue_failure_still_acknowledges(self, client, store, queue):
        """The body is stored before the enqueue: a broker hiccup is covered by the outbox, not a 5xx."""
        queue.fail = True
        body, headers = signed(envelope())
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 202
        assert store.claim_due(now=10**12) == [resp.json["id"]]

    def test_unsigned_mode(self, settings, store, queue):
        """With VOUCHERIFY_ALLOW_UNSIGNED and no secret, unsigned deliveries are accepted and marked so."""
        app = create_app(settings.with_(webhook_secrets=(), allow_unsigned=True), store=store, queue=queue)
        resp = app.test_client().post("/webhooks/voucherify", json=envelope())
        assert resp.status_code == 202
        assert store.r.hget(store.key("ev", resp.json["id"]), "secret") == b"unsigned"


class TestDuplicates:
    def test_same_delivery_twice_is_duplicate_of_the_first(self, client, store, queue):
        """A redelivery answers 202 duplicate with the original's id, is counted, and is not enqueued."""
        body, headers = signed(envelope())
        first = client.post("/webhooks/voucherify", data=body, headers=headers).json
        second = client.post("/webhooks/voucherify", data=body, headers=headers).json
        third = client.post("/webhooks/voucherify", data=body, headers=headers).json
        assert second == {"id": first["id"], "status": "duplicate"} == third
        assert len(queue.sent) == 1
        assert store.document(first["id"])["duplicates"] == 2

    def test_retry_with_new_send_out_id_is_duplicate(self, client):
        doc = envelope()
        first = client.post("/webhooks/voucherify", data=signed(doc)[0], headers=signed(doc)[1]).json
        doc2 = {**doc, "id": "whs_other"}
        body, headers = signed(doc2)
        assert client.post("/webhooks/voucherify", data=body, headers=headers).json["id"] == first["id"]


class TestRefused:
    def test_missing_signature_is_401_and_nothing_is_stored(self, client, store, queue):
        resp = client.post("/webhooks/voucherify", json=envelope())
        assert resp.status_code == 401
        assert resp.json["error"] == "missing_signature"
        assert store.counts()["queued"] == 0
        assert queue.sent == []

    def test_wrong_signature_is_401(self, client, store):
        body, headers = signed(envelope(), secret="not-the-secret")
        resp = client.post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 401
        assert resp.json["error"] == "bad_signature"
        assert store.counts()["queued"] == 0

    def test_body_over_the_limit_is_413(self, settings, store, queue):
        """Past MAX_BODY_BYTES: 413 with a JSON reason, nothing stored."""
        app = create_app(settings.with_(max_body_bytes=1000), store=store, queue=queue)
        body, headers = signed({"pad": "x" * 2000})
        resp = app.test_client().post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 413
        assert resp.json["error"] == "too_large"
        assert store.counts()["queued"] == 0

    def test_store_down_is_503_with_retry_after(self, tmp_path, queue):
        """Store unreachable: 503 and Retry-After, so Voucherify retries later."""
        from tests.support import free_port

        url = f"redis://127.0.0.1:{free_port()}/0"
        settings = Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,), data_dir=tmp_path)
        app = create_app(settings, queue=queue)
        body, headers = signed(envelope())
        resp = app.test_client().post("/webhooks/voucherify", data=body, headers=headers)
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        assert queue.sent == []

    def test_bad_source_name_is_404(self, client):
        body, headers = signed(envelope())
        assert client.post("/webhooks/voucherify/not%20ok", data=body, headers=headers).status_code == 404

    def test_get_is_405(self, client):
        assert client.get("/webhooks/voucherify").status_code == 405


class TestHealth:
    def test_healthz(self, client):
        assert client.get("/healthz").status_code == 200

    def test_readyz_when_store_answers(self, client):
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json == {
            "status": "ready",
            "store": True,
            "broker": True,
            "unsigned": False,
            "mail": None,
        }

    def test_readyz_reports_unsigned_mode(self, settings, store, queue):
        """Accepting unsigned deliveries is visible to whatever probes readiness."""
        app = create_app(settings.with_(webhook_secrets=(), allow_unsigned=True), store=store, queue=queue)
        resp = app.test_client().get("/readyz")
        assert (resp.status_code, resp.json["unsigned"]) == (200, True)

    def test_readyz_when_store_is_down(self, tmp_path, queue):
        from tests.support import free_port

        url = f"redis://127.0.0.1:{free_port()}/0"
        app = create_app(Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,)), queue=queue)
        assert app.test_client().get("/readyz").status_code == 503


class TestCreateApp:
    def test_unsigned_mode_warns_at_every_start(self, settings, store, queue, caplog):
        """Unsigned mode is loud: a warning naming the variable each time an app is built."""
        for _ in range(2):
            create_app(settings.with_(webhook_secrets=(), allow_unsigned=True), store=store, queue=queue)
        warnings = [r for r in caplog.records if "VOUCHERIFY_ALLOW_UNSIGNED" in r.getMessage()]
        assert [r.levelname for r in warnings] == ["WARNING", "WARNING"]

    def test_refuses_to_start_without_secret(self, settings):
        from core.settings import ConfigError

        with pytest.raises(ConfigError, match="VOUCHERIFY_WEBHOOK_SECRETS"):
            create_app(settings.with_(webhook_secrets=()))

    def test_store_is_untouched_at_creation(self, tmp_path):
        """Creating the app connects to nothing (it can start before Redis is up)."""
        from tests.support import free_port

        url = f"redis://127.0.0.1:{free_port()}/0"
        create_app(Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,)))


class TestStoreFull:
    def test_store_out_of_memory_is_503_not_500(self, tmp_path, queue):
        """Regression: under `noeviction` a full Redis raises OutOfMemoryError, which the intake did not
        count as unavailable, so Voucherify got a 500 instead of 503 + Retry-After."""
        from cli import embedded

        server = embedded.start(tmp_path / "valkey")
        try:
            url = f"{server.connection_url}/0"
            client = redis.Redis.from_url(url)
            client.config_set("maxmemory", "2mb")
            filler = "x" * 10_000
            i = 0
            while True:
                try:
                    client.set(f"fill:{i}", filler)
                except redis.exceptions.OutOfMemoryError:
                    break
                i += 1
            settings = Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,), data_dir=tmp_path)
            app = create_app(settings, queue=queue)
            body, headers = signed(envelope())
            resp = app.test_client().post("/webhooks/voucherify", data=body, headers=headers)
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "5"
        finally:
            server.stop()


class TestOneSignatureOneBody:
    """A captured signature authenticates the bytes Voucherify signed, and no other spelling of them."""

    @staticmethod
    def post(client, body, headers, source=""):
        path = "/webhooks/voucherify" + (f"/{source}" if source else "")
        return client.post(path, data=body, headers=headers)

    def test_pretty_printed_body_is_stored_as_the_signed_compact_bytes(self, client, store):
        """The whitespace fallback stores (so processes and forwards) what was signed, not the wire form."""
        doc = envelope()
        compact, headers = signed(doc)
        resp = self.post(client, json.dumps(doc, indent=2).encode(), headers)
        assert resp.status_code == 202
        assert store.load(resp.json["id"]).raw == compact
        assert store.r.hget(store.key("ev", resp.json["id"]), "size") == str(len(compact)).encode()

    def test_designer_body_respelled_with_whitespace_is_a_duplicate(self, client):
        """Without ids the dedup key is the body's hash: of the signed bytes, so re-spellings collide."""
        doc = examples.load("customer.publication.succeeded-3")
        compact, headers = signed(doc)
        first = self.post(client, compact, headers, "newsletter")
        again = self.post(client, json.dumps(doc, indent=1).encode(), headers, "newsletter")
        assert (first.json["status"], again.json["status"]) == ("queued", "duplicate")
        assert again.json["id"] == first.json["id"]

    @pytest.mark.parametrize(
        ("signed_bytes", "variant"),
        [
            (b'{"to":"alex@example.com"}', b'{"to":"\\u0061lex@example.com"}'),
            (b'{"amount":1.5}', b'{"amount":1.50}'),
            (b'{"amount":1.5}', b'{"amount":15e-1}'),
            (b'{"to":"good"}', b'{"to":"evil","to":"good"}'),
            (b'{"to":"good"}', '{"to":"good"}'.encode("utf-16")),
        ],
        ids=["u-escape", "trailing-zero", "exponent", "duplicate-key", "utf-16"],
    )
    def test_other_spellings_of_a_signed_body_are_refused(self, client, store, signed_bytes, variant):
        """\\u escapes, number spellings, a duplicate key that loses on parse, another encoding: all 401."""
        headers = {"Content-Type": "application/json", signature.HEADER: signature.sign(SECRET, signed_bytes)}
        resp = self.post(client, variant, headers)
        assert (resp.status_code, resp.json["error"]) == (401, "bad_signature")
        assert store.counts()["queued"] == 0

    def test_signed_body_with_duplicate_keys_is_refused_with_its_reason(self, client, store):
        """Even when the compact form matches, an object naming a key twice is ambiguous: 401."""
        compact = b'{"to":"evil","to":"good"}'
        headers = {"Content-Type": "application/json", signature.HEADER: signature.sign(SECRET, compact)}
        resp = self.post(client, b'{"to": "evil", "to": "good"}', headers)
        assert (resp.status_code, resp.json["error"]) == (401, "duplicate_keys")
        assert store.counts()["queued"] == 0

    def test_compact_fallback_is_bounded_by_size(self, settings, store, queue):
        """Past SIGNATURE_FALLBACK_MAX_BYTES only the raw bytes are checked (0 turns the fallback off)."""
        doc = envelope()
        compact, headers = signed(doc)
        pretty = json.dumps(doc, indent=2).encode()
        for limit, expected in ((len(pretty), 202), (len(pretty) - 1, 401), (0, 401)):
            app = create_app(settings.with_(signature_fallback_max_bytes=limit), store=store, queue=queue)
            resp = app.test_client().post("/webhooks/voucherify", data=pretty, headers=headers)
            assert resp.status_code == expected, limit
        assert (
            app.test_client().post("/webhooks/voucherify", data=compact, headers=headers).status_code == 202
        )
