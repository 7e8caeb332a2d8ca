"""Handlers through real Celery workers: a handler module on PYTHONPATH, named in HANDLERS.

Each handler records what it did in Redis (the test's side channel), so the test counts real side effects
across worker processes, retries and replays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from cli.replay import would_run
from core import examples
from core.queue import TaskQueue
from core.replay import ReplayFilter, replay_many, replay_one
from core.states import Status
from core.store import EventStore
from tests.faults.helpers import FAULT_ENV, Intake, fault_settings, wait_settled
from tests.support import ROOT, worker_env, worker_start_refused

pytestmark = pytest.mark.integration

MODULE = """
import os
import time

import redis

from workers.handlers import PermanentError, Skip, TransientError, on

r = redis.Redis.from_url(os.environ["REDIS_URL"])


@on("voucher.updated")
def record(event):
    r.rpush("calls:record", event.id)
    return "recorded"


@on("voucher.enabled")
def flaky(event):
    n = r.incr(f"attempts:flaky:{event.id}")
    if n <= 2:
        raise TransientError(f"downstream busy (attempt {n})", reason="busy_downstream")
    return f"ok after {n} attempts"


@on("voucher.disabled")
def picky(event):
    r.rpush("calls:picky", event.id)
    if not r.exists("picky:fixed"):
        raise PermanentError("the CRM refused the voucher", reason="crm_refused")
    return "accepted now"


@on("voucher.disabled")
def steady(event):
    r.rpush("calls:steady", event.id)


@on("voucher.deleted")
def once_only(event):
    def effect():
        time.sleep(1.0)  # long enough for the other worker to try the same key meanwhile
        r.incr("effects:once")

    return "ran" if event.once(event.data.voucher.code, effect) else Skip("already done")
"""


@pytest.fixture
def handler_env(tmp_path: Path) -> dict[str, str]:
    """Where the handler module lives and how a worker finds it."""
    folder = tmp_path / "handlers"
    folder.mkdir()
    (folder / "shop_handlers.py").write_text(textwrap.dedent(MODULE))
    return {
        **FAULT_ENV,
        "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}",
        "HANDLERS": "shop_handlers",
        "ACTION_BACKOFF_BASE_SECONDS": "0.1",
        "ACTION_BACKOFF_CAP_SECONDS": "0.3",
    }


def event(event_type: str, code: str | None = None) -> dict:
    doc = examples.example_envelope(event_type)
    if code is not None:
        doc["data"]["voucher"]["code"] = code
    return doc


class TestHandlersInAWorker:
    def test_runs_once_per_event_even_delivered_three_times(self, redis_url, tmp_path, handler_env, workers):
        """Three deliveries of one event: one event, one handler run."""
        settings = fault_settings(redis_url, tmp_path)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        workers(redis_url, **handler_env)
        doc = event("voucher.updated")
        answers = [intake.post(doc) for _ in range(3)]
        assert [a["status"] for a in answers] == ["queued", "duplicate", "duplicate"]
        event_id = answers[0]["id"]
        assert wait_settled(store, [event_id], timeout=30) == {event_id: Status.PROCESSED}
        assert store.r.lrange("calls:record", 0, -1) == [event_id.encode()]
        action = store.document(event_id)["actions"]["handler:shop_handlers.record"]
        assert (action["status"], action["history"][-1]["detail"]) == ("succeeded", "recorded")

    def test_raises_twice_then_succeeds(self, redis_url, tmp_path, handler_env, workers):
        """Two transient failures, then success: processed, three attempts in the handler's history."""
        settings = fault_settings(redis_url, tmp_path)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        workers(redis_url, **handler_env)
        event_id = intake.post(event("voucher.enabled"))["id"]
        assert wait_settled(store, [event_id], timeout=45) == {event_id: Status.PROCESSED}
        action = store.document(event_id)["actions"]["handler:shop_handlers.flaky"]
        assert [h["outcome"] for h in action["history"]] == ["failed", "failed", "succeeded"]
        assert action["history"][0]["error"] == "downstream busy (attempt 1)"

    def test_permanent_error_is_dead_and_replay_reruns_only_that_handler(
        self, redis_url, tmp_path, handler_env, workers
    ):
        """Two handlers on one type: one dead, the other succeeded once; a replay reruns only the dead one."""
        settings = fault_settings(redis_url, tmp_path)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        workers(redis_url, **handler_env)
        event_id = intake.post(event("voucher.disabled"))["id"]
        assert wait_settled(store, [event_id], timeout=30) == {event_id: Status.DEAD}
        doc = store.document(event_id)
        assert doc["reason"] == "crm_refused"
        assert doc["actions"]["handler:shop_handlers.picky"]["status"] == "dead"
        assert doc["actions"]["handler:shop_handlers.steady"]["status"] == "succeeded"

        store.r.set("picky:fixed", 1)  # the operator fixed the cause
        assert replay_one(store, TaskQueue(settings), event_id)
        assert wait_settled(store, [event_id], timeout=30) == {event_id: Status.PROCESSED}
        assert store.r.llen("calls:picky") == 2
        assert store.r.llen("calls:steady") == 1

    def test_once_across_two_worker_processes(self, redis_url, tmp_path, handler_env, workers):
        """Two events with the same once-key, handled at the same time by two workers: one side effect."""
        settings = fault_settings(redis_url, tmp_path)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        workers(redis_url, **handler_env, concurrency=1)
        workers(redis_url, **handler_env, concurrency=1, beat=False)
        code = f"ONCE-{uuid.uuid4().hex[:8]}"
        ids = [intake.post(event("voucher.deleted", code))["id"] for _ in range(2)]
        assert set(wait_settled(store, ids, timeout=45).values()) == {Status.PROCESSED}
        assert store.r.get("effects:once") == b"1"
        outcomes = sorted(
            store.document(i)["actions"]["handler:shop_handlers.once_only"]["status"] for i in ids
        )
        assert outcomes == ["skipped", "succeeded"]


class TestBackfill:
    def test_replaying_ignored_events_runs_a_new_handler_once(
        self, redis_url, tmp_path, handler_env, workers, monkeypatch
    ):
        """Events stored `ignored` before the handler existed: a replay runs it once each; again, nothing.
        The dry run says per action what would run."""
        monkeypatch.syspath_prepend(str(tmp_path / "handlers"))
        monkeypatch.setitem(sys.modules, "shop_handlers", None)  # imported afresh here, forgotten after
        del sys.modules["shop_handlers"]
        monkeypatch.setenv("REDIS_URL", redis_url)  # what the module reads when the dry run imports it
        settings = fault_settings(redis_url, tmp_path, handlers=("shop_handlers",))
        store, intake = EventStore.from_settings(settings), Intake(settings)
        queue = TaskQueue(settings)
        before = workers(redis_url, **{k: v for k, v in handler_env.items() if k != "HANDLERS"})
        ids = [intake.post(event("voucher.updated"))["id"] for _ in range(3)]
        assert set(wait_settled(store, ids, timeout=30).values()) == {Status.IGNORED}
        before.stop()

        workers(redis_url, **handler_env)
        flt = ReplayFilter(status="ignored", event_type="voucher.updated")
        assert would_run(store, flt) == {"handler:shop_handlers.record": 3}
        assert replay_many(store, queue, flt) == 3
        assert set(wait_settled(store, ids, timeout=30).values()) == {Status.PROCESSED}
        assert sorted(store.r.lrange("calls:record", 0, -1)) == sorted(i.encode() for i in ids)

        assert would_run(store, ReplayFilter(event_type="voucher.updated")) == {"(nothing)": 3}
        assert replay_many(store, queue, ReplayFilter(event_type="voucher.updated")) == 3
        assert set(wait_settled(store, ids, timeout=30).values()) == {Status.PROCESSED}
        assert store.r.llen("calls:record") == 3  # the handler succeeded for each already: nothing new


class TestStartRefusals:
    @pytest.mark.parametrize(
        ("source", "said", "line"),
        [
            ("import nowhere_to_be_found\n", "failed to import", 1),
            (
                "from workers.handlers import on\n@on('voucher.udpated')\ndef f(e): pass\n",
                "matches no event type",
                2,
            ),
        ],
        ids=["import-error", "unknown-type"],
    )
    def test_worker_exits_2_and_says_why(self, redis_url, tmp_path, source, said, line):
        """A broken HANDLERS module stops the worker at start with exit code 2, the module and the line."""
        folder = tmp_path / "bad"
        folder.mkdir()
        (folder / "bad_handlers.py").write_text(source)
        env = worker_env(redis_url, PYTHONPATH=f"{folder}{os.pathsep}{ROOT}", HANDLERS="bad_handlers")
        done = worker_start_refused(env)
        assert done.returncode == 2
        assert said in done.stderr
        assert "bad_handlers" in done.stderr
        assert f"bad_handlers.py:{line}" in done.stderr


def test_routes_lists_the_handlers(redis_url, handler_env):
    """`voucherify-ingest routes` shows each type's actions, handlers included, with where they are."""
    env = worker_env(redis_url, PYTHONPATH=handler_env["PYTHONPATH"], HANDLERS="shop_handlers")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "routes", "--json"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["routes"]["voucher.disabled"] == [
        "handler:shop_handlers.picky",
        "handler:shop_handlers.steady",
    ]
    assert out["routes"]["publication.succeeded"] == ["notify_customer"]
    assert "campaign.created" in out["ignored"]
    assert out["handlers"]["handler:shop_handlers.record"].endswith("shop_handlers.py:12")
