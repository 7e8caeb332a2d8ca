"""Duplicates and disorder, through the real intake and a real worker: one side effect per business key."""

from __future__ import annotations

import copy
import uuid
from collections import Counter

import pytest

from cli import embedded
from core import examples
from core.store import EventStore
from tests.faults.helpers import FAULT_ENV, Intake, email_of, fault_settings, publication, wait_settled
from tests.support import HttpSink, SmtpSink, start_worker, wait_for, worker_env

pytestmark = pytest.mark.integration

DESTINATIONS = ("crm", "erp")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A Valkey, an SMTP server, two forward destinations and one worker for the whole module."""
    tmp = tmp_path_factory.mktemp("duplicates")
    server = embedded.start(tmp / "valkey")
    smtp = SmtpSink().start()
    sinks = {name: HttpSink().start() for name in DESTINATIONS}
    url = server.connection_url + "/0"
    env = worker_env(
        url,
        **FAULT_ENV,
        SMTP_URL=smtp.url,
        FORWARD_URLS=",".join(f"{name}={sink.url}" for name, sink in sinks.items()),
    )
    worker = None
    try:
        worker = start_worker(env, tmp / "worker.log")
        settings = fault_settings(url, tmp)
        yield Intake(settings), EventStore.from_settings(settings), smtp, sinks
    finally:
        if worker is not None:
            worker.stop()
        for sink in sinks.values():
            sink.stop()
        smtp.stop()
        server.terminate()


def forwards(sinks, event_id: str) -> dict[str, int]:
    """How many times each destination accepted Voucherify event `event_id`."""
    return {
        name: sum(1 for headers, _ in sink.requests if headers["idempotency-key"] == event_id)
        for name, sink in sinks.items()
    }


def settle(store, ids, timeout=20):
    statuses = wait_settled(store, ids, timeout=timeout)
    assert set(statuses.values()) == {"processed"}, statuses


@pytest.mark.timeout(60)
class TestDuplicates:
    def test_same_delivery_three_times_has_one_effect(self, world):
        """Voucherify retrying one send-out: 3 x 202 with one id; one email, one forward per destination."""
        intake, store, smtp, sinks = world
        doc = publication()
        answers = [intake.post(doc) for _ in range(3)]
        assert [a["status"] for a in answers] == ["queued", "duplicate", "duplicate"]
        assert len({a["id"] for a in answers}) == 1
        settle(store, [answers[0]["id"]])
        wait_for(lambda: smtp.to(email_of(doc)), what="the email")
        wait_for(lambda: all(forwards(sinks, doc["event"]["id"]).values()), what="the forwards")
        assert store.document(answers[0]["id"])["duplicates"] == 2
        assert len(smtp.to(email_of(doc))) == 1
        assert forwards(sinks, doc["event"]["id"]) == dict.fromkeys(DESTINATIONS, 1)

    def test_one_event_through_two_endpoints(self, world):
        """One Voucherify event sent to two webhook endpoints (two source ids): two stored events, both
        processed; one email (per publication) and one forward per destination (per event id)."""
        intake, store, smtp, sinks = world
        first = publication()
        second = copy.deepcopy(first)
        second["id"] = f"whs_{uuid.uuid4().hex[:18]}"
        second["source"]["id"] = "wh_second_endpoint"
        ids = [intake.post(first)["id"], intake.post(second)["id"]]
        assert ids[0] != ids[1]
        settle(store, ids)
        assert len(smtp.to(email_of(first))) == 1
        assert forwards(sinks, first["event"]["id"]) == dict.fromkeys(DESTINATIONS, 1)
        outcomes = Counter(
            store.document(i)["actions"]["notify_customer"]["status"] for i in ids
        )  # one sent it, the other saw it was sent
        assert outcomes == {"succeeded": 1, "skipped": 1}

    def test_one_event_through_two_source_urls(self, world):
        """No source id in the body, posted to /webhooks/voucherify/a and /b: still one of each effect."""
        intake, store, smtp, sinks = world
        doc = publication()
        del doc["source"]
        ids = [intake.post(doc, source="shop-a")["id"], intake.post(doc, source="shop-b")["id"]]
        assert ids[0] != ids[1]
        assert {store.document(i)["source"] for i in ids} == {"shop-a", "shop-b"}
        settle(store, ids)
        assert len(smtp.to(email_of(doc))) == 1
        assert forwards(sinks, doc["event"]["id"]) == dict.fromkeys(DESTINATIONS, 1)

    def test_same_publication_from_both_event_types(self, world):
        """voucher.published and publication.succeeded announce one publication: one email."""
        intake, store, smtp, _ = world
        pub = publication()
        vp = examples.example_envelope("voucher.published-2")
        vp["event"]["id"] = f"evvou_{uuid.uuid4().hex[:18]}"
        vp["data"]["publication"]["id"] = pub["data"]["publication"]["id"]
        vp["data"]["customer"]["email"] = email_of(pub)
        ids = [intake.post(vp)["id"], intake.post(pub)["id"]]
        settle(store, ids)
        assert len(smtp.to(email_of(pub))) == 1


@pytest.mark.timeout(60)
class TestDisorder:
    def test_voucher_updates_out_of_order(self, world):
        """Five voucher.updated for one voucher, delivered newest first: every one is processed and
        forwarded once to each destination; no action depends on arrival order."""
        intake, store, _, sinks = world
        base = examples.example_envelope("voucher.updated")
        docs = []
        for minute in range(5):
            doc = copy.deepcopy(base)
            doc["id"] = f"whs_{uuid.uuid4().hex[:18]}"
            doc["event"]["id"] = f"evvou_{uuid.uuid4().hex[:18]}"
            doc["event"]["created_at"] = f"2024-02-09T11:1{minute}:00.000Z"
            docs.append(doc)
        ids = [intake.post(doc)["id"] for doc in reversed(docs)]
        settle(store, ids)
        for doc in docs:
            assert forwards(sinks, doc["event"]["id"]) == dict.fromkeys(DESTINATIONS, 1)
        for event_id in ids:
            actions = store.document(event_id)["actions"]
            assert {a["status"] for a in actions.values()} == {"succeeded"}
            assert set(actions) == {f"forward:{name}" for name in DESTINATIONS}
