"""The disk archive through the real intake and real Celery workers: with a short ARCHIVE_AFTER_SECONDS,
settled events leave Redis, and are still listed, shown (attempts, errors) and replayed through the admin API
and the CLI, on SQLite and on a real PostgreSQL; a duplicate of an archived event is still a duplicate."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

import cli
from core import examples
from core.archive import Archive
from core.store import EventStore
from ingest import create_app
from tests.faults.helpers import FAULT_ENV, Intake, fault_settings, wait_settled
from tests.support import HttpSink, signed, wait_for

pytestmark = pytest.mark.integration
ADMIN = "admin-token-" + "a" * 20
# Settled events are archived a second after they settle; the archiver runs twice a second.
ARCHIVE_ENV = {"ARCHIVE_AFTER_SECONDS": "1", "ARCHIVE_INTERVAL_SECONDS": "0.5"}


def run_cli(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def gone_from_redis(store: EventStore, ids: list[str]) -> bool:
    return not any(store.r.exists(store.key(kind, i)) for i in ids for kind in ("ev", "raw", "act"))


def test_archived_events_are_listed_shown_and_replayed(
    redis_url, mirror_url, tmp_path, workers, sink: HttpSink, monkeypatch
):
    """Events settle (processed, dead after a refused forward, invalid), leave Redis for the archive, and
    the admin API and the CLI list, show and replay them as before; a replayed one runs again from Redis
    and is archived again (one row)."""
    sink.status = 400  # the forward destination refuses: the action is dead at its first attempt
    forward = f"crm={sink.url}"
    settings = fault_settings(
        redis_url,
        tmp_path,
        admin_token=ADMIN,
        archive_database_url=mirror_url,
        archive_after_s=1,
    )
    store, intake = EventStore.from_settings(settings), Intake(settings)
    env = {**FAULT_ENV, **ARCHIVE_ENV, "ARCHIVE_DATABASE_URL": mirror_url, "FORWARD_URLS": forward}
    workers(redis_url, **env, FORWARD_CRM_EVENTS="voucher.*")
    pub = examples.example_envelope("publication.succeeded")
    voucher = examples.example_envelope("voucher.updated")
    bad = {"source": {"object": "webhook"}, "event": {"id": "evt_bad_1"}, "data": 1}
    ids = {"pub": intake.post(pub)["id"], "dead": intake.post(voucher)["id"], "bad": intake.post(bad)["id"]}
    statuses = wait_settled(store, ids.values(), timeout=30)
    assert statuses == {ids["pub"]: "processed", ids["dead"]: "dead", ids["bad"]: "invalid"}
    before = {i: store.document(i) for i in ids.values()}
    wait_for(lambda: gone_from_redis(store, list(ids.values())), timeout=20, what="the events to be archived")
    archive = Archive.from_url(mirror_url)
    assert archive.count() == 3

    client = create_app(settings).test_client()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    listed = client.get("/admin/events?limit=10", headers=auth).json["events"]
    assert [d["id"] for d in listed] == [ids["bad"], ids["dead"], ids["pub"]]
    assert all(d["archived_at"] for d in listed)
    # Only `archived_at` tells an archived event from the one it was.
    for doc in listed:
        assert {**doc, "archived_at": None} == before[doc["id"]]
    dead = client.get(f"/admin/events/{ids['dead']}", headers=auth).json
    assert dead["actions"]["forward:crm"]["status"] == "dead"
    assert dead["actions"]["forward:crm"]["attempts"] == 1
    assert dead["actions"]["forward:crm"]["last_error"]
    invalid = client.get(f"/admin/events/{ids['bad']}", headers=auth).json
    assert invalid["errors"]
    assert [d["id"] for d in client.get("/admin/events?status=dead", headers=auth).json["events"]] == [
        ids["dead"]
    ]
    assert client.post("/admin/replay", json={"status": "dead", "dry_run": True}, headers=auth).json == {
        "count": 1,
        "dry_run": True,
    }

    cli_env = {"REDIS_URL": redis_url, "ARCHIVE_DATABASE_URL": mirror_url, "DATA_DIR": str(tmp_path)}
    code, out, _ = run_cli(monkeypatch, cli_env, "events", "list", "--json")
    assert code == 0
    assert [e["id"] for e in json.loads(out)["events"]] == [ids["bad"], ids["dead"], ids["pub"]]
    code, out, _ = run_cli(monkeypatch, cli_env, "events", "show", ids["pub"], "--raw")
    assert code == 0
    assert json.loads(json.loads(out)["raw"]) == pub

    # A duplicate delivery of an archived event is still answered `duplicate`, with the original's id.
    body, headers = signed(voucher)
    again = intake.client.post("/webhooks/voucherify", data=body, headers=headers)
    assert again.json == {"id": ids["dead"], "status": "duplicate"}

    # Replays: the dead one through the admin API (the destination accepts now), the invalid one by the CLI.
    sink.status = 200
    replayed = client.post(f"/admin/events/{ids['dead']}/replay", headers=auth)
    assert replayed.status_code == 202
    code, _, err = run_cli(monkeypatch, cli_env, "replay", ids["bad"])
    assert code == 0, err
    wait_for(
        lambda: (store.document(ids["dead"]) or {}).get("status") == "processed",
        timeout=30,
        what="the replayed event to run again from Redis",
    )
    assert len(sink.requests) == 1
    wait_for(lambda: gone_from_redis(store, [ids["dead"], ids["bad"]]), timeout=20, what="re-archiving")
    assert archive.count() == 3
    shown = client.get(f"/admin/events/{ids['dead']}", headers=auth).json
    assert shown["status"] == "processed"
    assert shown["archived_at"]
    assert shown["actions"]["forward:crm"]["replays"] == 1
    assert client.get("/admin/events/evt_none", headers=auth).status_code == 404
    archive.engine.dispose()
    client.application.extensions["voucherify"].events.close()


def test_the_console_shows_archived_events(redis_url, mirror_url, tmp_path, workers):
    """The console's list and event page read the archive too, and say when the event was archived."""
    settings = fault_settings(
        redis_url, tmp_path, admin_token=ADMIN, archive_database_url=mirror_url, archive_after_s=1
    )
    store, intake = EventStore.from_settings(settings), Intake(settings)
    workers(redis_url, **FAULT_ENV, **ARCHIVE_ENV, ARCHIVE_DATABASE_URL=mirror_url)
    event_id = intake.post(examples.example_envelope("voucher.updated"))["id"]
    wait_for(lambda: gone_from_redis(store, [event_id]), timeout=30, what="the event to be archived")
    client = create_app(settings).test_client()
    login = client.get("/console/login")
    token = _csrf(login.get_data(as_text=True))
    assert client.post("/console/login", data={"token": ADMIN, "csrf": token}).status_code == 303
    page = client.get("/console/events").get_data(as_text=True)
    assert event_id in page
    shown = client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert "Archived" in shown
    assert client.get(f"/console/events?q={event_id}").status_code == 303
    # The overview counts what the list holds: the archived event is counted, and said to be archived.
    overview = client.get("/console/").get_data(as_text=True)
    assert '<span class="n" data-status="ignored">1</span>' in overview
    assert "Of these, 1 are in the archive (ignored 1)" in overview
    client.application.extensions["voucherify"].events.close()


def _csrf(html: str) -> Any:
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None, html
    return m.group(1)


def test_without_an_archive_settled_bodies_are_compressed_in_redis(redis_url, tmp_path, workers, sink):
    """No ARCHIVE_DATABASE_URL: events stay in Redis, their bodies compressed by the same periodic task;
    the body reads back as received, and a replay runs from it."""
    settings = fault_settings(redis_url, tmp_path, admin_token=ADMIN)
    store, intake = EventStore.from_settings(settings), Intake(settings)
    workers(redis_url, **FAULT_ENV, **ARCHIVE_ENV, FORWARD_URLS=f"crm={sink.url}")
    doc = examples.example_envelope("voucher.updated")
    event_id = intake.post(doc)["id"]
    wait_for(
        lambda: store.r.hget(store.key("ev", event_id), "raw_codec") is not None,
        timeout=30,
        what="the body to be compressed",
    )
    body, _ = signed(doc)
    assert store.raw(event_id) == body
    assert len(store.r.get(store.key("raw", event_id))) < len(body) * 0.6
    client = create_app(settings).test_client()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert client.post(f"/admin/events/{event_id}/replay?all=1", headers=auth).status_code == 202
    # The worker parsed the body again (a compressed one would make the event `invalid`); the forward is
    # not sent twice: it was already.
    wait_for(
        lambda: (
            (store.document(event_id) or {}).get("attempts") == 2
            and store.document(event_id)["status"] != "queued"
        ),
        timeout=30,
        what="the replay to run",
    )
    wait_settled(store, [event_id], timeout=30)
    assert store.document(event_id)["status"] == "processed"
    assert len(sink.requests) == 1
    assert json.loads(sink.requests[0][1]) == doc
