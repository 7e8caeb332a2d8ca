"""Micro-batches through real Celery worker processes (workers/batch.py): each event of a batch keeps its own
outcome, and an event that kills its pool process takes only itself down.

The events are stored and queued before the worker starts, and the worker waits a little for a batch to fill
(WORKER_BATCH_WAIT_MS), so they really share batches: the worker's "batch done" lines say how many events each
batch had, and the tests check a batch of several was run.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from core import examples
from core.queue import TaskQueue
from core.states import TERMINAL, Status
from tests.faults.helpers import FAULT_ENV, Intake, fault_settings, wait_settled
from tests.support import ROOT

pytestmark = pytest.mark.integration

MODULE = """
import os
import signal

import redis

from workers.handlers import TransientError, on

r = redis.Redis.from_url(os.environ["REDIS_URL"])


@on("voucher.updated")
def record(event):
    code = event.data.voucher.code
    r.rpush("calls", code)
    if code == "POISON":
        os.kill(os.getpid(), signal.SIGKILL)  # what a segfaulting C extension or the OOM killer does
    if code == "FLAKY":
        raise TransientError("downstream busy", reason="busy_downstream")
    if code == "BOOM":
        raise RuntimeError("a bug in the handler")
    return "recorded"
"""


@pytest.fixture
def batch_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "handlers"
    folder.mkdir()
    (folder / "batch_handlers.py").write_text(textwrap.dedent(MODULE))
    return {
        **FAULT_ENV,
        "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}",
        "HANDLERS": "batch_handlers",
        "WORKER_BATCH_SIZE": "16",
        "WORKER_BATCH_WAIT_MS": "500",
    }


def updated(code: str) -> dict:
    doc = examples.example_envelope("voucher.updated")
    doc["data"]["voucher"]["code"] = code
    doc["event"]["id"] = f"evt_{code}_{os.urandom(4).hex()}"
    return doc


def batch_sizes(output: str) -> list[int]:
    sizes = []
    for line in output.splitlines():
        if '"batch done"' in line:
            sizes.append(json.loads(line)["events"])
    return sizes


def calls(store) -> list[str]:
    return [c.decode() for c in store.r.lrange("calls", 0, -1)]


@pytest.mark.timeout(90)
def test_mixed_batch_settles_each_on_its_own(redis_url, tmp_path, workers, batch_env, store):
    """Valid events, an invalid body, a handler failing, a handler raising, a duplicate delivery and a
    duplicate message, in one batch: each settles on its own, the valid ones once, at once."""
    settings = fault_settings(redis_url, tmp_path)
    intake = Intake(settings)
    a, b = updated("A"), updated("B")
    ids = {
        "A": intake.post(a)["id"],
        "FLAKY": intake.post(updated("FLAKY"))["id"],
        "invalid": intake.post({"not": "an event"})["id"],
        "BOOM": intake.post(updated("BOOM"))["id"],
        "B": intake.post(b)["id"],
    }
    assert intake.post(a)["status"] == "duplicate"
    TaskQueue(settings).process_event(ids["B"])  # a second message for one event

    worker = workers(redis_url, concurrency=1, **batch_env)
    wanted = frozenset({*TERMINAL, Status.FAILED})
    wait_settled(store, [ids["A"], ids["B"], ids["invalid"]], timeout=30)
    statuses = wait_settled(store, ids.values(), timeout=30, statuses=wanted)
    assert statuses == {
        ids["A"]: "processed",
        ids["FLAKY"]: "failed",
        ids["invalid"]: "invalid",
        ids["BOOM"]: "failed",
        ids["B"]: "processed",
    }
    handler = "handler:batch_handlers.record"
    assert store.document(ids["FLAKY"])["actions"][handler]["reason"] == "busy_downstream"
    assert store.document(ids["BOOM"])["actions"][handler]["reason"] == "unexpected"
    for code in "AB":
        assert calls(store).count(code) == 1
        doc = store.document(ids[code])
        assert (doc["attempts"], doc["actions"][handler]["attempts"]) == (1, 1)
    assert max(batch_sizes(worker.output())) >= 5


@pytest.mark.timeout(150)
def test_poison_event_takes_only_itself_down(redis_url, tmp_path, workers, batch_env, store):
    """An event that kills its pool process every time, in a batch: its batch-mates run again one by one
    and are processed; it is dead after MAX_EVENT_STARTS starts, and the worker goes on."""
    settings = fault_settings(redis_url, tmp_path)
    intake = Intake(settings)
    codes = ["A", "B", "POISON", "C", "D"]
    ids = {code: intake.post(updated(code))["id"] for code in codes}

    worker = workers(redis_url, concurrency=1, **batch_env)
    statuses = wait_settled(store, ids.values(), timeout=120)
    assert {code: statuses[ids[code]] for code in codes} == {
        "A": "processed",
        "B": "processed",
        "POISON": "dead",
        "C": "processed",
        "D": "processed",
    }
    poison = store.document(ids["POISON"])
    assert poison["reason"] == "too_many_starts"
    output = worker.output()
    assert "batch lost its pool process; its events run one by one" in output
    assert max(batch_sizes(output)) >= 1

    # The worker still works, in batches.
    later = [intake.post(updated(f"L{i}"))["id"] for i in range(3)]
    assert set(wait_settled(store, later, timeout=30).values()) == {"processed"}
