"""The whole service: signed intake -> Valkey -> Celery worker -> schema -> action -> real SMTP."""

import uuid

import pytest

from core import examples
from tests.support import signed, wait_for

pytestmark = pytest.mark.integration


def post(intake, doc):
    body, headers = signed(doc)
    resp = intake.post("/webhooks/voucherify", data=body, headers=headers)
    assert resp.status_code == 202, resp.json
    return resp.json


def settled(store, event_id, timeout=30):
    terminal = {"processed", "ignored", "invalid", "dead"}
    return wait_for(
        lambda: (d := store.document(event_id)) and d["status"] in terminal and d,
        timeout=timeout,
        what=f"event {event_id} to settle",
    )


def publication_for(email):
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = email
    doc["data"]["publication"]["id"] = f"pub_{uuid.uuid4().hex}"
    return doc


class TestPublicationEmail:
    def test_customer_receives_exactly_one_email(self, intake, e2e_store, smtp_sink):
        """A signed publication.succeeded ends with that exact email in the SMTP server, once."""
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        ack = post(intake, publication_for(email))
        assert ack["status"] == "queued"
        doc = settled(e2e_store, ack["id"])
        assert doc["status"] == "processed"
        assert doc["actions"]["notify_customer"]["status"] == "succeeded"
        (msg,) = wait_for(lambda: smtp_sink.to(email), what="the email")
        assert msg["From"] == "shop@example.com"
        text, html = msg.get_payload()  # the packaged templates: multipart/alternative, text then HTML
        assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        assert "ZERO-8" in text.get_payload(decode=True).decode()
        assert "ZERO-8" in html.get_payload(decode=True).decode()
        assert "Free product zero items-test" in msg["Subject"]

    def test_same_delivery_twice_sends_one_email(self, intake, e2e_store, smtp_sink):
        """Posted twice: the second is a duplicate; still one email."""
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        doc = publication_for(email)
        first = post(intake, doc)
        second = post(intake, doc)
        assert second == {"id": first["id"], "status": "duplicate"}
        settled(e2e_store, first["id"])
        wait_for(lambda: smtp_sink.to(email), what="the email")
        assert len(smtp_sink.to(email)) == 1
        assert e2e_store.document(first["id"])["duplicates"] == 1


class TestRouting:
    @pytest.mark.parametrize(
        "name",
        ["voucher.created", "voucher.updated", "voucher.enabled", "campaign.vouchers.generation.completed"],
    )
    def test_seed_events_end_as_routed(self, intake, e2e_store, name):
        ack = post(intake, examples.example_envelope(name))
        doc = settled(e2e_store, ack["id"])
        assert doc["status"] == "ignored"
        assert doc["event_type"] == name

    def test_bad_payload_is_invalid_and_worker_keeps_going(self, intake, e2e_store, smtp_sink):
        """An invalid event ends `invalid`; the next good one is still processed."""
        bad = examples.example_envelope("voucher.updated")
        del bad["event"]["type"]
        doc = settled(e2e_store, post(intake, bad)["id"])
        assert doc["status"] == "invalid"
        assert doc["errors"] == {"event": {"type": ["Missing data for required field."]}}
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        assert settled(e2e_store, post(intake, publication_for(email))["id"])["status"] == "processed"


class TestReconciler:
    def test_event_whose_enqueue_was_lost_is_processed(self, e2e_store, worker, smtp_sink):
        """Stored but never enqueued (broker hiccup): the reconciler hands it over after the lease."""
        import json

        from ingest.dedup import dedup_key

        email = f"{uuid.uuid4().hex[:8]}@example.com"
        raw = json.dumps(publication_for(email)).encode()
        event_id, _ = e2e_store.accept(
            raw, dedup_key=dedup_key(raw), headers={}, secret="secret:0", now=__import__("time").time() - 60
        )
        doc = settled(e2e_store, event_id, timeout=30)
        assert doc["status"] == "processed"
        assert len(wait_for(lambda: smtp_sink.to(email))) == 1
