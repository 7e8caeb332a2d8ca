"""A slow SMTP server, two deliveries of one publication racing through two worker processes: one email.

Regression (issue 10, item 4): the email's reservation lasted max(30, 3 x SMTP_TIMEOUT_SECONDS) while the
timeout bounded each SMTP command, not the send. A server answering every command just under the timeout
made one send outlast the reservation; the other delivery then took the lapsed reservation and emailed the
customer a second time. Now a send has one deadline (SMTP_DEADLINE_SECONDS), shorter than its reservation.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from core.store import EventStore
from tests.faults.helpers import Intake, fault_settings, publication, wait_settled
from tests.smtp_servers import SlowSmtp

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_smtp() -> Iterator[SlowSmtp]:
    # 6 s per reply, under the 7 s per-command timeout below: one send takes ~36 s, longer than the 30 s the
    # reservation used to last, shorter than the 40 s deadline (and the 50 s reservation) it has now.
    server = SlowSmtp(delay=6.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(200)
class TestSlowSmtpServer:
    def test_two_deliveries_of_one_publication_send_one_email(self, redis_url, tmp_path, workers, slow_smtp):
        """Two sources deliver one publication at once; two worker processes race; the server is slow: one
        email, and both events end processed (the loser skips: already emailed)."""
        worker = workers(
            redis_url,
            concurrency=2,
            SMTP_URL=slow_smtp.url,
            SMTP_TIMEOUT_SECONDS="7",
            SMTP_DEADLINE_SECONDS="40",
        )
        settings = fault_settings(redis_url, tmp_path)
        intake = Intake(settings)
        store = EventStore.from_settings(settings)
        doc = publication()
        del doc["source"]  # two distribution URLs: two events, one publication
        ids = [intake.post(doc, source="shop-a")["id"], intake.post(doc, source="shop-b")["id"]]

        statuses = wait_settled(store, ids, timeout=100)
        # Settled is not the end: the reconciler hands a `processing` event to another pool process after
        # its lease, and that attempt may still be talking to the server. A warm shutdown (SIGTERM to the
        # main process) lets every running task finish first.
        os.kill(worker.popen.pid, signal.SIGTERM)
        worker.popen.wait(timeout=60)

        assert len(slow_smtp.messages) == 1
        assert set(statuses.values()) == {"processed"}
        outcomes = sorted(store.document(i)["actions"]["notify_customer"]["status"] for i in ids)
        assert outcomes == ["skipped", "succeeded"]
