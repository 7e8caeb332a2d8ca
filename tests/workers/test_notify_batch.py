"""notify_customer's batch path (NotifyCustomer.run_batch) through pipeline.process_batch, on a real Valkey:
each event's email and outcome are its own, one reservation round trip for the batch, and no one is emailed
twice when the worker dies mid-batch."""

from __future__ import annotations

import json
import time
from email.utils import parseaddr

import pytest

from core import examples
from core.store import StoreUnavailableError
from ingest.dedup import dedup_key
from tests.fakes import RecordingMailer
from tests.support import record_round_trips
from workers import dispatch, pipeline
from workers.actions.notify import NotifyCustomer
from workers.mail import Envelope, SmtpMailer
from workers.pipeline import Delivery


def deliver(store, doc):
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="secret:0")
    assert created
    return event_id


def publication(email, pub_id, event_type="publication.succeeded"):
    doc = examples.example_envelope(event_type)
    doc["data"]["customer"]["email"] = email
    doc["data"]["publication"]["id"] = pub_id
    doc["event"]["id"] = f"evt_{event_type}_{pub_id}_{email}"
    return doc


def run(runtime, ids):
    return pipeline.process_batch([Delivery(i, f"m{n}", "events") for n, i in enumerate(ids)], runtime)


def notify_state(store, event_id):
    return store.document(event_id)["actions"]["notify_customer"]


class Crash(BaseException):
    """The worker process dying mid-send: nothing after it runs (no release, no done mark, no settle)."""


class CrashOnSend(RecordingMailer):
    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at

    def send(self, message, *, deadline=None, envelope=None):
        if len(self.deadlines) == self.crash_at:
            self.deadlines.append(deadline)
            raise Crash
        super().send(message, deadline=deadline, envelope=envelope)


@pytest.fixture
def smtp_runtime(runtime, smtp):
    mailer = SmtpMailer(smtp.url, timeout=5, deadline_s=10)
    runtime.actions = {
        dispatch.NOTIFY_CUSTOMER: NotifyCustomer(
            mailer, sender="shop@example.com", reservation_ttl=30, remember_s=3600
        )
    }
    yield runtime
    mailer.close()


class TestMixedBatch:
    def test_each_email_settles_on_its_own(self, smtp_runtime, store, smtp):
        """Over real SMTP, one batch: a refused recipient, a publication already emailed, an address plain
        SMTP cannot carry, a publication two events carry, and good ones: each event gets its own outcome,
        every deliverable customer exactly one email, and the refusal does not stop the emails after it."""
        smtp.unknown = {"gone@example.com"}
        store.reserve("notify:pub_old", "an-earlier-attempt", 30)
        store.complete("notify:pub_old", "an-earlier-attempt", 3600)
        docs = [
            publication("a@example.com", "pub_a"),
            publication("gone@example.com", "pub_gone"),
            publication("old@example.com", "pub_old"),
            publication("zoë@example.com", "pub_zoe"),
            publication("b@example.com", "pub_b"),
            publication("b@example.com", "pub_b", event_type="voucher.published"),
            publication("c@example.com", "pub_c"),
        ]
        ids = [deliver(store, d) for d in docs]

        statuses = run(smtp_runtime, ids)

        assert statuses == ["processed", "dead", "processed", "dead", "processed", "processed", "processed"]
        states = [notify_state(store, i) for i in ids]
        assert [(s["status"], s["reason"]) for s in states] == [
            ("succeeded", "emailed 1 code(s) for publication pub_a"),
            ("dead", "smtp_recipient_refused"),
            ("skipped", "already emailed for publication pub_old"),
            ("dead", "bad_recipient"),
            ("succeeded", "emailed 1 code(s) for publication pub_b"),
            ("skipped", "already emailed for publication pub_b"),
            ("succeeded", "emailed 1 code(s) for publication pub_c"),
        ]
        assert all(s["attempts"] == 1 for s in states)
        for address, count in [("a@", 1), ("gone@", 0), ("old@", 0), ("b@", 1), ("c@", 1)]:
            assert len(smtp.to(address)) == count, address
        assert sorted(smtp.envelopes) == [("shop@example.com", [f"{c}@example.com"]) for c in "abc"]
        # The refused one is released for a later attempt; the sent ones are remembered as done.
        assert store.r.get(store.key("once", "notify:pub_gone")) is None
        for pub in ("pub_a", "pub_b", "pub_c"):
            assert store.reserve(f"notify:{pub}", "someone-else", 30) == "done"

    def test_one_reservation_round_trip_and_one_settle(self, runtime, store, mailer, monkeypatch):
        """Three emails: begin, one reservation script for all, a done mark after each send, one settle."""
        ids = [deliver(store, publication(f"{c}@example.com", f"pub_{c}")) for c in "abc"]
        trips = record_round_trips(store.r, monkeypatch, pipeline_label="PIPELINE")
        assert run(runtime, ids) == ["processed"] * 3
        assert trips == ["EVALSHA", "EVALSHA", "SET", "SET", "SET", "PIPELINE:EVALSHA EVALSHA EVALSHA"]
        assert len(mailer.sent) == 3


class TestEnvelope:
    def test_the_envelope_is_the_bare_addresses(self, runtime, store, mailer):
        """MAIL FROM is NOTIFY_FROM without its display name; RCPT TO the customer's address as SMTP carries
        it (an internationalised domain in IDNA), so the mailer need not parse the headers back."""
        runtime.actions[dispatch.NOTIFY_CUSTOMER] = NotifyCustomer(
            mailer, sender="Shop <shop@example.com>", reservation_ttl=30, remember_s=3600
        )
        ids = [
            deliver(store, publication(a, f"pub_{n}")) for n, a in enumerate(["a@example.com", "z@bücher.de"])
        ]
        assert run(runtime, ids) == ["processed", "processed"]
        assert mailer.envelopes == [
            Envelope("shop@example.com", ("a@example.com",)),
            Envelope("shop@example.com", ("z@xn--bcher-kva.de",)),
        ]
        assert pipeline.process_event(deliver(store, publication("b@example.com", "pub_b")), runtime)
        assert mailer.envelopes[-1] == Envelope("shop@example.com", ("b@example.com",))


class TestCrash:
    def test_a_crash_between_reserve_and_send_emails_no_one_twice(self, runtime, store, clock):
        """The worker dies as the second email of three is being sent: the first was sent and marked done,
        the second and third are reserved and unsent. Redelivered, the first is not emailed again; the
        others wait for the dead attempt's reservations, then go out once each."""
        ids = [deliver(store, publication(f"{c}@example.com", f"pub_{c}")) for c in "abc"]
        crashing = CrashOnSend(crash_at=1)
        runtime.actions[dispatch.NOTIFY_CUSTOMER].mailer = crashing
        with pytest.raises(Crash):
            run(runtime, ids)
        assert len(crashing.sent) == 1
        assert [store.document(i)["status"] for i in ids] == ["processing"] * 3

        again = RecordingMailer()
        runtime.actions[dispatch.NOTIFY_CUSTOMER].mailer = again
        assert run(runtime, ids) == ["processed", "failed", "failed"]
        assert notify_state(store, ids[0])["reason"] == "already emailed for publication pub_a"
        assert [notify_state(store, i)["reason"] for i in ids[1:]] == ["busy", "busy"]
        assert again.sent == []

        # Time passes: the dead attempt's reservations lapse.
        for pub in ("pub_b", "pub_c"):
            store.r.pexpire(store.key("once", f"notify:{pub}"), 1)
        time.sleep(0.01)
        clock.now += 3600
        assert run(runtime, ids) == ["processed"] * 3
        assert sorted(parseaddr(m["To"])[1] for m in crashing.sent + again.sent) == [
            "a@example.com",
            "b@example.com",
            "c@example.com",
        ]


class TestDeadlines:
    def test_each_send_is_over_before_its_reservation_can_lapse(self, runtime, store, mailer):
        """The batch's reservations are taken before its first send: each deadline counts from then."""
        ids = [deliver(store, publication(f"{c}@example.com", f"pub_{c}")) for c in "ab"]
        before = time.monotonic()
        run(runtime, ids)
        notify = runtime.actions[dispatch.NOTIFY_CUSTOMER]
        assert all(before < d <= before + notify.send_deadline_s + 1 for d in mailer.deadlines)
        assert notify.send_deadline_s + 10 == notify.reservation_ttl

    def test_a_slow_batch_takes_a_reservation_again_before_sending(self, runtime, store):
        """When half a send's time has gone by before an email's turn, its reservation is extended and
        its send gets a full deadline from then."""

        class Slow(RecordingMailer):
            def send(self, message, *, deadline=None, envelope=None):
                super().send(message, deadline=deadline, envelope=envelope)
                time.sleep(0.6)

        slow = Slow()
        runtime.actions[dispatch.NOTIFY_CUSTOMER] = NotifyCustomer(
            slow, sender="shop@example.com", reservation_ttl=11, remember_s=3600
        )
        ids = [deliver(store, publication(f"{c}@example.com", f"pub_{c}")) for c in "ab"]
        assert run(runtime, ids) == ["processed", "processed"]
        first, second = slow.deadlines
        assert second - first >= 0.6


class TestStoreAway:
    def test_no_email_is_sent_whose_done_mark_cannot_be_written(self, runtime, store, mailer, monkeypatch):
        """The first done mark fails (the store is away): the emails after it are not sent; every event
        fails and will retry."""
        ids = [deliver(store, publication(f"{c}@example.com", f"pub_{c}")) for c in "abc"]

        def complete(*args, **kwargs):
            raise StoreUnavailableError("store away")

        monkeypatch.setattr(store, "complete", complete)
        assert run(runtime, ids) == ["failed"] * 3
        assert len(mailer.sent) == 1
        assert {notify_state(store, i)["reason"] for i in ids} == {"unexpected"}
