"""The /metrics series, in one process: the intake's counters, and the workers' as the store keeps them.

The intake's counters are per process and the test process makes many apps, so these tests compare
before/after; tests/e2e/test_metrics.py checks exact values across real processes.
"""

import json
import time

import pytest

from core import examples
from core.queue import TaskQueue
from core.settings import Settings
from core.states import ActionState, ActionStatus
from ingest import create_app
from tests.fakes import RecordingQueue
from tests.support import SECRET, free_port, parse_metrics, sample, signed

P = "voucherify_ingest"


def scrape(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    return parse_metrics(resp.data.decode())


def delta(before, after, name, **labels):
    return sample(after, name, **labels) - sample(before, name, **labels)


def post(client, doc, secret=SECRET):
    body, headers = signed(doc, secret)
    return client.post("/webhooks/voucherify", data=body, headers=headers)


@pytest.fixture
def client(settings, store):
    return create_app(settings, store=store, queue=RecordingQueue()).test_client()


class TestIntakeSeries:
    def test_every_outcome_is_counted(self, settings, store, client):
        """accepted, duplicate, unauthorized, too_large, not_found, each counted once per answer."""
        before = scrape(client)
        doc = examples.example_envelope("voucher.updated")
        assert post(client, doc).status_code == 202
        assert post(client, doc).status_code == 202
        assert client.post("/webhooks/voucherify", json=doc).status_code == 401
        assert post(client, doc, secret="not-the-secret").status_code == 401
        assert client.post("/webhooks/voucherify/bad%20source", data=b"{}").status_code == 404
        small = create_app(settings.with_(max_body_bytes=100), store=store, queue=RecordingQueue())
        assert post(small.test_client(), {"pad": "x" * 200}).status_code == 413
        after = scrape(client)
        expected = {"accepted": 1, "duplicate": 1, "unauthorized": 2, "too_large": 1, "not_found": 1}
        for outcome, n in expected.items():
            assert delta(before, after, f"{P}_requests_total", outcome=outcome) == n, outcome
        assert delta(before, after, f"{P}_request_duration_seconds_count") == 6

    def test_store_down_is_counted_and_metrics_still_answer(self, tmp_path):
        """503 is counted by the process that answered it; /metrics answers with store_up 0."""
        url = f"redis://127.0.0.1:{free_port()}/0"
        settings = Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,), data_dir=tmp_path)
        down = create_app(settings, queue=RecordingQueue()).test_client()
        before = scrape(down)
        assert post(down, examples.example_envelope("voucher.updated")).status_code == 503
        after = scrape(down)
        assert delta(before, after, f"{P}_requests_total", outcome="unavailable") == 1
        assert sample(after, f"{P}_store_up") == 0
        assert not any(name.startswith(f"{P}_events") for name, _ in after)

    def test_matched_secret_is_counted_by_index_never_by_value(self, settings, store):
        """During a rotation the counter says whether the old secret (index 1 here) is still in use."""
        rotated = settings.with_(webhook_secrets=("the-new-secret-value", SECRET))
        client = create_app(rotated, store=store, queue=RecordingQueue()).test_client()
        before = scrape(client)
        post(client, examples.example_envelope("voucher.updated"), secret=SECRET)
        post(client, examples.example_envelope("voucher.updated"), secret="the-new-secret-value")
        post(client, examples.example_envelope("voucher.updated"), secret=SECRET)
        after = scrape(client)
        assert delta(before, after, f"{P}_secret_matches_total", secret="0") == 1
        assert delta(before, after, f"{P}_secret_matches_total", secret="1") == 2
        text = client.get("/metrics").data.decode()
        assert SECRET not in text
        assert "the-new-secret-value" not in text

    def test_unsigned_deliveries_are_counted_as_unsigned(self, settings, store):
        """With no secrets configured (VOUCHERIFY_ALLOW_UNSIGNED=1) the verdict is `unsigned`, counted too."""
        unsigned = settings.with_(webhook_secrets=(), allow_unsigned=True)
        client = create_app(unsigned, store=store, queue=RecordingQueue()).test_client()
        before = scrape(client)
        assert (
            client.post("/webhooks/voucherify", json=examples.example_envelope("voucher.updated")).status_code
            == 202
        )
        after = scrape(client)
        # The `unsigned` series exists only once such a delivery was counted in this process.
        key = (f"{P}_secret_matches_total", (("secret", "unsigned"),))
        assert after[key] - before.get(key, 0) == 1
        assert delta(before, after, f"{P}_requests_total", outcome="accepted") == 1

    def test_failed_enqueue_is_counted(self, settings, store):
        queue = RecordingQueue()
        queue.fail = True
        client = create_app(settings, store=store, queue=queue).test_client()
        before = scrape(client)
        assert post(client, examples.example_envelope("voucher.updated")).status_code == 202
        after = scrape(client)
        assert delta(before, after, f"{P}_enqueue_failures_total") == 1
        assert delta(before, after, f"{P}_requests_total", outcome="accepted") == 1

    def test_other_routes_are_not_counted(self, client):
        """Health checks and scrapes are not webhook deliveries."""
        before = scrape(client)
        client.get("/healthz")
        client.get("/readyz")
        after = scrape(client)
        assert delta(before, after, f"{P}_request_duration_seconds_count") == 0

    def test_outcome_series_exist_at_zero(self, client):
        """Every outcome is exposed from the start, so rate() and alerts work before the first 401."""
        m = scrape(client)
        for outcome in (
            "accepted",
            "duplicate",
            "unauthorized",
            "too_large",
            "unavailable",
            "timeout",
            "limited",
        ):
            assert (f"{P}_requests_total", (("outcome", outcome),)) in m


def accept(store, raw=b"{}", now=None):
    event_id, _ = store.accept(raw, dedup_key=f"k-{time.monotonic_ns()}", headers={}, secret="s", now=now)
    return event_id


class TestWorkerSeries:
    def test_settling_counts_by_type_and_status(self, store, client):
        """Each final status reached counts once, by event type; an unparsed event's type is `unknown`."""
        a, b, c = accept(store), accept(store), accept(store)
        store.set_status(a, "processing")
        store.set_status(a, "processed", event_type="voucher.published")
        store.set_status(a, "processed", event_type="voucher.published")  # a redelivery: no change
        store.set_status(b, "ignored", event_type="voucher.created")
        store.set_status(c, "invalid", reason="not_json")
        m = scrape(client)
        settled = f"{P}_events_settled_total"
        assert sample(m, settled, event_type="voucher.published", status="processed") == 1
        assert sample(m, settled, event_type="voucher.created", status="ignored") == 1
        assert sample(m, settled, event_type="unknown", status="invalid") == 1
        assert sample(m, f"{P}_events", status="processed") == 1
        assert sample(m, f"{P}_events", status="queued") == 0

    def test_latency_lands_in_its_bucket(self, store, client):
        """Received -> final status: 3 s after receipt is in the 5 s bucket, not the 2.5 s one."""
        t0 = time.time() - 100
        event_id = accept(store, now=t0)
        store.set_status(event_id, "processed", now=t0 + 3, event_type="voucher.created")
        m = scrape(client)
        h = f"{P}_event_latency_seconds"
        assert sample(m, f"{h}_bucket", le="2.5") == 0
        assert sample(m, f"{h}_bucket", le="5.0") == 1
        assert sample(m, f"{h}_bucket", le="+Inf") == 1
        assert sample(m, f"{h}_count") == 1
        assert sample(m, f"{h}_sum") == pytest.approx(3, abs=0.01)

    def test_replay_counts_the_status_again_but_not_the_latency(self, store, client):
        """A replayed event settling again is a second outcome, not a second (week-long) latency."""
        event_id = accept(store)
        store.set_status(event_id, "dead", event_type="voucher.updated")
        assert store.reset_for_replay(event_id)
        store.set_status(event_id, "processed", event_type="voucher.updated")
        m = scrape(client)
        settled = f"{P}_events_settled_total"
        assert sample(m, settled, event_type="voucher.updated", status="dead") == 1
        assert sample(m, settled, event_type="voucher.updated", status="processed") == 1
        assert sample(m, f"{P}_event_latency_seconds_count") == 1

    def test_action_attempts_by_outcome(self, store, client):
        """Every recorded attempt counts under its outcome; a plain state save counts nothing."""
        event_id = accept(store)
        store.put_action(event_id, "forward:crm", ActionState(ActionStatus.FAILED), count=True)
        store.put_action(event_id, "forward:crm", ActionState(ActionStatus.DEAD), count=True)
        store.put_action(event_id, "notify_customer", ActionState(ActionStatus.SUCCEEDED), count=True)
        store.put_action(event_id, "notify_customer", ActionState(ActionStatus.PENDING))
        m = scrape(client)
        attempts = f"{P}_action_attempts_total"
        assert sample(m, attempts, action="forward:crm", outcome="failed") == 1
        assert sample(m, attempts, action="forward:crm", outcome="dead") == 1
        assert sample(m, attempts, action="notify_customer", outcome="succeeded") == 1
        saved = store.r.hget(store.key("act", event_id), "notify_customer")
        assert json.loads(saved)["status"] == "pending"

    def test_reconciler_hand_offs(self, store, client):
        """Every message the reconciler sends is counted, by the script that records it on the event."""
        assert sample(scrape(client), f"{P}_reconciler_handoffs_total") == 0
        accept(store, now=1000.0)
        claim = store.hand_over({"events": 0, "replay": 0}, now=1000.0 + store.settings.outbox_lease_s)
        assert len(claim.handoffs) == 1
        assert sample(scrape(client), f"{P}_reconciler_handoffs_total") == 1

    def test_backlog(self, settings, store):
        """Unfinished events, the outbox, each broker queue's length and the oldest unfinished event's age."""
        queue = TaskQueue(settings)
        client = create_app(settings, store=store, queue=queue).test_client()
        old = accept(store, now=time.time() - 120)
        accept(store)
        queue.process_event(old)
        queue.process_event(old, queue="replay")
        queue.process_event(old, queue="replay")
        m = scrape(client)
        assert sample(m, f"{P}_events", status="queued") == 2
        assert sample(m, f"{P}_outbox_events") == 2
        assert sample(m, f"{P}_queue_messages", queue="events") == 1
        assert sample(m, f"{P}_queue_messages", queue="replay") == 2
        assert sample(m, f"{P}_broker_up") == 1
        assert sample(m, f"{P}_store_up") == 1
        assert 120 <= sample(m, f"{P}_oldest_unfinished_age_seconds") < 600

    def test_empty_store_has_no_backlog(self, store, client):
        m = scrape(client)
        assert sample(m, f"{P}_oldest_unfinished_age_seconds") == 0
        assert sample(m, f"{P}_outbox_events") == 0


class TestSampleHelper:
    def test_absent_series_fails_instead_of_reading_zero(self):
        """tests.support.sample: a `== 0` check must not pass because the series is gone."""
        m = parse_metrics('# TYPE x gauge\nx{a="1"} 0.0\n')
        assert sample(m, "x", a="1") == 0
        with pytest.raises(AssertionError, match="no series x"):
            sample(m, "x", a="2")
        with pytest.raises(AssertionError, match="no series y"):
            sample(m, "y")
