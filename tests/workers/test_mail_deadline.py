"""One deadline per send (issue 10, item 4): over every SMTP step, shorter than the email's reservation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from core import examples
from ingest.dedup import dedup_key
from tests.smtp_servers import SlowSmtp, sample_message
from tests.support import wait_for
from workers import pipeline
from workers.actions.notify import RESERVATION_MARGIN_S, NotifyCustomer, reservation_for
from workers.errors import TransientError
from workers.mail import SmtpMailer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def slow() -> Iterator[SlowSmtp]:
    server = SlowSmtp(delay=0.6).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def trickle() -> Iterator[SlowSmtp]:
    server = SlowSmtp(delay=0.2, trickle=True).start()
    try:
        yield server
    finally:
        server.stop()


class TestDeadline:
    def test_each_reply_under_the_timeout_still_ends_at_the_deadline(self, slow: SlowSmtp):
        """Regression: the timeout bounded each command, so six replies 0.6 s late (timeout 1 s) made one send
        last 3.6 s whatever its budget. With a 2 s deadline the send gives up before the message is in."""
        mailer = SmtpMailer(slow.url, timeout=1, deadline_s=2)
        with pytest.raises(TransientError) as exc_info:
            mailer.send(sample_message())
        assert exc_info.value.reason == "smtp_timeout"
        assert slow.messages == []

    def test_a_reply_trickling_in_is_cut_at_the_deadline(self, trickle: SlowSmtp):
        """A server sending its greeting a byte every 0.2 s never trips the 1 s per-read timeout; the
        deadline's watchdog ends the send anyway."""
        mailer = SmtpMailer(trickle.url, timeout=1, deadline_s=1.5)
        with pytest.raises(TransientError) as exc_info:
            mailer.send(sample_message())
        assert exc_info.value.reason == "smtp_timeout"
        assert trickle.messages == []

    def test_the_callers_deadline_wins(self, slow: SlowSmtp):
        """A deadline passed to send() (the reservation's) overrides the mailer's own, longer one."""
        mailer = SmtpMailer(slow.url, timeout=1, deadline_s=60)
        with pytest.raises(TransientError) as exc_info:
            mailer.send(sample_message(), deadline=time.monotonic() + 1.5)
        assert exc_info.value.reason == "smtp_timeout"
        assert slow.messages == []

    def test_a_passed_deadline_connects_nowhere(self, slow: SlowSmtp):
        """Nothing is sent, not even a connection opened, once the deadline is behind us."""
        mailer = SmtpMailer(slow.url, timeout=1, deadline_s=60)
        with pytest.raises(TransientError) as exc_info:
            mailer.send(sample_message(), deadline=time.monotonic() - 1)
        assert exc_info.value.reason == "smtp_timeout"
        assert slow.sessions == 0

    def test_a_send_within_its_deadline_arrives(self, slow: SlowSmtp):
        """Slow but within the deadline: delivered, and the connection is kept for the next email."""
        mailer = SmtpMailer(slow.url, timeout=1, deadline_s=10)
        try:
            mailer.send(sample_message(pub="pub_1"))
            mailer.send(sample_message(pub="pub_2"))
        finally:
            mailer.close()
        assert len(slow.messages) == 2
        assert slow.sessions == 1


class TestUnconfirmed:
    def test_a_message_the_server_did_not_confirm_in_time_is_not_sent_again_at_once(self):
        """Regression: a server that confirmed a message later than the per-command timeout (a content
        scanner) got it twice from one send: the fresh-connection try meant for connections the server had
        dropped while idle sent the whole message again. Now: one copy, and smtp_unconfirmed."""
        server = SlowSmtp(delay=0.0, confirm_delay=1.5).start()
        try:
            mailer = SmtpMailer(server.url, timeout=0.5, deadline_s=10)
            with pytest.raises(TransientError) as exc_info:
                mailer.send(sample_message())
            wait_for(lambda: server.active == 0, timeout=10, what="the server's sessions to end")
        finally:
            server.stop()
        assert exc_info.value.reason == "smtp_unconfirmed"
        assert len(server.messages) == 1
        assert server.sessions == 1


def deliver(store, doc):
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(
        raw, dedup_key=dedup_key(raw, ""), headers={}, secret="secret:0", source=""
    )
    assert created
    return event_id


def publication(pub_id):
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = "alex@example.com"
    doc["data"]["publication"]["id"] = pub_id
    return doc


class DeadlineRecorder:
    """A mailer that notes how long the send was given, and how long the reservation had left then."""

    def __init__(self, store):
        self.store = store
        self.seen: list[tuple[float, float]] = []

    def send(self, message, *, deadline=None, envelope=None):
        assert deadline is not None
        left = self.store.reserved_for(f"notify:{message['Message-ID'][1:].partition('@')[0]}")
        self.seen.append((deadline - time.monotonic(), left))


class TestReservation:
    def test_the_send_ends_before_the_reservation_can_lapse(self, runtime, store):
        """notify_customer hands the mailer a deadline that ends a full margin before its reservation."""
        recorder = DeadlineRecorder(store)
        notify = NotifyCustomer(recorder, sender="shop@example.com", reservation_ttl=30, remember_s=60)
        runtime.actions = {**runtime.actions, "notify_customer": notify}
        doc = publication(pub_id="pub_r")
        assert pipeline.process_event(deliver(store, doc), runtime) == "processed"
        ((send_left, reservation_left),) = recorder.seen
        assert send_left <= 30 - RESERVATION_MARGIN_S
        assert reservation_left - send_left >= RESERVATION_MARGIN_S - 1

    def test_the_reservation_outlasts_the_configured_deadline(self):
        """SMTP_DEADLINE_SECONDS=40 reserves each email for 50 s; a fraction rounds up."""
        assert reservation_for(40) == 40 + RESERVATION_MARGIN_S
        assert reservation_for(40.2) == 41 + RESERVATION_MARGIN_S
