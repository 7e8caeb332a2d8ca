"""Late deliveries and the long memory of side effects (issue 10, item 6).

After an outage a merchant re-sends failed send-outs from Voucherify's audit log, days later: real events,
processed, but flagged `late` and kept by each action's own memory from acting twice.
"""

from __future__ import annotations

import copy
import json

import pytest

from core import examples
from core.settings import ForwardDestination
from core.store import iso
from ingest.dedup import dedup_key
from workers import pipeline
from workers.runtime import build_runtime

DAY = 86400


def deliver(store, doc, source=""):
    """Store a delivery the way the intake does and return its event id."""
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(
        raw, dedup_key=dedup_key(raw, source), headers={}, secret="secret:0", source=source
    )
    assert created
    return event_id


def publication(pub_id="pub_1"):
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = "alex@example.com"
    doc["data"]["publication"]["id"] = pub_id
    return doc


@pytest.fixture
def rt(settings, store, mailer, sink, clock):
    """The real wiring (build_runtime): notify and a forward to `sink`; short retention and dedup window."""
    s = settings.with_(
        forward_destinations=(ForwardDestination("crm", sink.url),),
        retention_processed_s=60,
        retention_failed_s=60,
        dedup_window_s=3600,
    )
    runtime = build_runtime(s, store=store, mailer=mailer)
    runtime.clock = clock
    return runtime


def created(doc, at: float):
    doc = copy.deepcopy(doc)
    doc["event"]["created_at"] = iso(at)
    return doc


def resend(store, doc, clock, *, days: float):
    """The same event re-sent from the audit log `days` later: a new send-out id, the dedup claim gone."""
    clock.now += days * DAY
    store.r.delete(*store.r.keys(f"{store.p}:dd:*"))
    again = copy.deepcopy(doc)
    again["id"] = "whs_resent_from_the_audit_log"
    return deliver(store, again)


class TestLate:
    def test_an_event_older_than_the_dedup_window_is_flagged_and_processed(self, rt, store, mailer, clock):
        """Signed event.created_at 4 days old, window 1 h: processed (it may be real), flagged, counted."""
        event_id = deliver(store, created(publication(pub_id="pub_old"), clock.now - 4 * DAY))
        assert pipeline.process_event(event_id, rt) == "processed"
        assert store.document(event_id)["late"] is True
        assert store.worker_counters().late == 1
        assert len(mailer.sent) == 1

    def test_a_replay_does_not_count_it_again(self, rt, store, clock):
        event_id = deliver(store, created(publication(pub_id="pub_old"), clock.now - 4 * DAY))
        pipeline.process_event(event_id, rt)
        assert store.reset_for_replay(event_id, all_actions=True)
        assert pipeline.process_event(event_id, rt) == "processed"
        assert store.worker_counters().late == 1

    def test_a_fresh_event_is_not_late(self, rt, store, clock):
        event_id = deliver(store, created(publication(pub_id="pub_new"), clock.now - 60))
        assert pipeline.process_event(event_id, rt) == "processed"
        assert store.document(event_id)["late"] is False
        assert store.worker_counters().late == 0

    def test_the_late_counter_is_exported(self, rt, store, clock, settings):
        from ingest import create_app
        from tests.support import parse_metrics

        pipeline.process_event(deliver(store, created(publication(), clock.now - 4 * DAY)), rt)
        text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
        assert parse_metrics(text)[("voucherify_ingest_late_deliveries_total", ())] == 1


class TestResentDaysLater:
    def test_a_resend_is_neither_emailed_nor_forwarded_again(self, rt, store, mailer, sink, clock):
        """The first delivery emails and forwards; the same event re-sent 5 days later (past the dedup
        window and the retention) is stored, flagged late, and both actions skip it."""
        doc = created(publication(pub_id="pub_twice"), clock.now - 60)
        first = deliver(store, doc)
        assert pipeline.process_event(first, rt) == "processed"
        late = resend(store, doc, clock, days=5)

        assert pipeline.process_event(late, rt) == "processed"
        assert store.document(late)["late"] is True
        actions = store.document(late)["actions"]
        assert {name: a["status"] for name, a in actions.items()} == {
            "notify_customer": "skipped",
            "forward:crm": "skipped",
        }
        assert len(mailer.sent) == 1
        assert len(sink.requests) == 1

    def test_already_emailed_and_forwarded_outlive_retention_and_the_dedup_window(self, rt, store):
        """Regression: "already emailed" lasted max(RETENTION_FAILED_SECONDS, DEDUP_WINDOW_SECONDS) (here an
        hour) and "already forwarded" 90 days; both now last NOTIFY_REMEMBER_SECONDS (400 days)."""
        event_id = deliver(store, publication(pub_id="pub_memory"))
        assert pipeline.process_event(event_id, rt) == "processed"
        event = pipeline.parse(store.raw(event_id)).envelope.event.id
        for key in ("notify:pub_memory", f"forward:crm:{event}"):
            assert store.r.ttl(store.key("once", key)) > 399 * DAY, key

    def test_without_a_publication_id_one_email_per_voucherify_event(self, rt, store, mailer):
        """Regression: with no publication id the email was keyed by our event id, which differs for each
        source (and for a resend): two sources, two emails. Keyed by Voucherify's event id now."""
        doc = publication()
        del doc["data"]["publication"]
        del doc["source"]
        ids = [deliver(store, doc, source="shop-a"), deliver(store, doc, source="shop-b")]
        assert [pipeline.process_event(i, rt) for i in ids] == ["processed", "processed"]
        assert len(mailer.sent) == 1
