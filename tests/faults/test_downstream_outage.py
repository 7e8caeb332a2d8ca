"""Downstreams down while events arrive: retried until they are back, or dead and then replayed; once each."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.faults.helpers import Intake, Stopwatch, email_of, fault_settings, publication, wait_settled
from tests.support import HttpSink, wait_for

pytestmark = pytest.mark.integration

EVENTS = 40
TOKEN = "admin-token-" + "o" * 20
DEST_SECRET = "crm-secret-" + "c" * 16


@pytest.fixture
def crm():
    """The forward destination; tests replace it with a new server on the same port to model an outage."""
    sinks = [HttpSink().start()]
    try:
        yield sinks
    finally:
        for sink in sinks:
            sink.stop()


def forward_env(sink: HttpSink) -> dict[str, str]:
    return {"FORWARD_URLS": f"crm={sink.url}", "FORWARD_CRM_SECRET": DEST_SECRET}


def forwarded(sinks: list[HttpSink]) -> Counter[str]:
    """How many times each Voucherify event id was accepted by the destination, over all its lives."""
    return Counter(h["idempotency-key"] for s in sinks for h, _ in s.requests)


def bring_back(sinks: list[HttpSink]) -> HttpSink:
    sink = HttpSink(port=sinks[0].port).start()
    sinks.append(sink)
    return sink


def assert_once_each(docs, smtp_sink, crm) -> None:
    assert len(smtp_sink.messages) == len(docs)
    assert [d for d in docs if len(smtp_sink.to(email_of(d))) != 1] == []
    assert forwarded(crm) == Counter({d["event"]["id"]: 1 for d in docs})


@pytest.mark.timeout(60)
def test_outage_within_the_retry_budget(redis_url, tmp_path, workers, smtp_sink, crm, store):
    """SMTP and the forward destination both refuse connections while 40 publications arrive; the
    actions retry with backoff, and once both are back every email and every forward arrives once."""
    workers(
        redis_url,
        SMTP_URL=smtp_sink.url,
        ACTION_MAX_ATTEMPTS="100",
        ACTION_BACKOFF_CAP_SECONDS="1",
        **forward_env(crm[0]),
    )
    intake = Intake(fault_settings(redis_url, tmp_path))
    smtp_sink.stop()
    crm[0].stop()
    clock = Stopwatch()

    docs = [publication() for _ in range(EVENTS)]
    ids = [intake.post(doc)["id"] for doc in docs]
    wait_settled(store, ids, timeout=20, statuses=frozenset({"failed"}))
    wait_for(
        lambda: all(a.attempts >= 3 for i in ids for a in store.actions(i).values()),  # several retries each
        timeout=20,
        what="three attempts of every action",
    )
    time.sleep(max(0.0, 5 - clock()))  # a 5 s outage at least
    doc = store.document(ids[0])
    assert doc["status"] == "failed"
    assert doc["actions"]["notify_customer"]["reason"] == "smtp_unreachable"
    assert doc["actions"]["forward:crm"]["reason"] == "forward_unreachable"
    down_s = clock()

    smtp_sink.start()
    bring_back(crm)
    statuses = wait_settled(store, ids, timeout=30)
    recovered_s = clock()

    assert set(statuses.values()) == {"processed"}
    assert_once_each(docs, smtp_sink, crm)
    attempts = [a.attempts for i in ids for a in store.actions(i).values()]
    print(
        f"\noutage within budget: {EVENTS} events, both downstreams down {down_s}s "
        f"({min(attempts)}-{max(attempts)} attempts per action); all delivered once "
        f"{round(recovered_s - down_s, 1)}s after they came back"
    )


@pytest.mark.timeout(60)
def test_outage_past_the_retry_budget_then_bulk_replay(redis_url, tmp_path, workers, smtp_sink, crm, store):
    """Down longer than 3 attempts: every action goes dead, nothing is lost; once the downstreams are
    back, POST /admin/replay {"status": "dead"} (a job on a worker) delivers each email and forward once,
    and replaying an event again (all actions) sends nothing twice."""
    workers(
        redis_url,
        SMTP_URL=smtp_sink.url,
        ACTION_MAX_ATTEMPTS="3",
        ACTION_BACKOFF_BASE_SECONDS="0.1",
        ACTION_BACKOFF_CAP_SECONDS="0.2",
        **forward_env(crm[0]),
    )
    intake = Intake(fault_settings(redis_url, tmp_path, admin_token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    smtp_sink.stop()
    crm[0].stop()
    clock = Stopwatch()

    docs = [publication() for _ in range(EVENTS)]
    ids = [intake.post(doc)["id"] for doc in docs]
    statuses = wait_settled(store, ids, timeout=20)
    dead_s = clock()
    assert set(statuses.values()) == {"dead"}
    dead = intake.client.get(f"/admin/events?status=dead&limit={EVENTS + 1}", headers=auth).json["events"]
    assert sorted(e["id"] for e in dead) == sorted(ids)
    for action in dead[0]["actions"].values():
        assert (action["status"], action["attempts"]) == ("dead", 3)
        assert [h["outcome"] for h in action["history"]] == ["failed", "failed", "dead"]

    smtp_sink.start()
    bring_back(crm)
    assert intake.client.post("/admin/replay", headers=auth, json={"status": "dead", "dry_run": True}).json[
        "count"
    ] == len(ids)
    assert smtp_sink.messages == []
    resp = intake.client.post("/admin/replay", headers=auth, json={"status": "dead"})
    assert (resp.status_code, resp.json["total"]) == (202, len(ids))
    # The replay is a job a worker runs; its final count says how many it replayed.
    location = resp.headers["Location"]
    job = wait_for(
        lambda: (j := intake.client.get(location, headers=auth).json)["state"] == "done" and j,
        timeout=20,
        what="the replay job",
    )
    assert job["count"] == len(ids)
    statuses = wait_settled(store, ids, timeout=30)
    replayed_s = clock()
    assert set(statuses.values()) == {"processed"}
    assert_once_each(docs, smtp_sink, crm)

    # Replaying every action of a delivered event re-runs them, and they see it was done already.
    again = ids[0]
    assert intake.client.post(f"/admin/events/{again}/replay?all=1", headers=auth).status_code == 202
    doc = wait_for(
        lambda: (
            (d := store.document(again))["status"] == "processed"
            and all(a.get("replays") == 2 for a in d["actions"].values())
            and d
        ),
        timeout=20,
        what="the second replay",
    )
    assert {a["status"] for a in doc["actions"].values()} == {"skipped"}
    assert_once_each(docs, smtp_sink, crm)
    print(
        f"\noutage past budget: {EVENTS} events dead after {dead_s}s (3 attempts each); bulk replay "
        f"delivered each once in {round(replayed_s - dead_s, 1)}s; a replay of all actions sent nothing"
    )
