"""A bulk replay job whose worker process is SIGKILLed mid-job: redelivered, resumed, counted exactly once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from core import examples
from core.queue import TaskQueue
from core.replay import ReplayFilter, job_view, start_job
from core.store.jobs import JOB_PAGE
from tests.faults.helpers import FAULT_ENV, Stopwatch, fault_settings
from tests.support import start_worker, wait_for, worker_env

pytestmark = pytest.mark.integration

EVENTS = 3000


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.timeout(120)
def test_a_job_whose_worker_dies_resumes_and_counts_each_event_once(redis_url, tmp_path, store):
    settings = fault_settings(redis_url, tmp_path)
    # Dead events, written straight into the store (the job only needs them to exist and be indexed).
    ids = []
    for i in range(EVENTS):
        body = json.dumps(examples.example_envelope("voucher.updated")).encode()
        event_id, _ = store.accept(body, dedup_key=f"job:{i}", headers={}, secret="s", now=1_700_000_000 + i)
        ids.append(event_id)
    pipe = store.r.pipeline(transaction=False)
    for event_id in ids:
        pipe.hset(store.key("ev", event_id), "status", "dead")
        pipe.zrem(f"{store.p}:st:queued", event_id)
        pipe.zadd(f"{store.p}:st:dead", {event_id: store.r.zscore(f"{store.p}:all", event_id)})
        pipe.zrem(f"{store.p}:outbox", event_id)
    pipe.execute()

    # One pool process and no beat, so the worker's only child is the one running the job.
    worker = start_worker(
        worker_env(redis_url, **FAULT_ENV), tmp_path / "worker.log", concurrency=1, beat=False
    )
    try:
        clock = Stopwatch()
        job_id = start_job(store, TaskQueue(settings), ReplayFilter(status="dead"))["job"]
        view = wait_for(
            lambda: (v := job_view(store, job_id))["done"] >= JOB_PAGE + 50 and v,
            timeout=30,
            interval=0.01,
            what="the job to be under way",
        )
        assert view["state"] == "running", view
        (child,) = children(worker.popen.pid)
        os.kill(child, signal.SIGKILL)
        killed_at, done_at_kill = clock(), job_view(store, job_id)["done"]

        view = wait_for(
            lambda: (v := job_view(store, job_id))["state"] == "done" and v,
            timeout=90,
            interval=0.1,
            what="the job to finish after the kill",
        )
        finished_at = clock()
    finally:
        worker.stop()

    assert view["count"] == view["total"] == EVENTS
    replays = [int(store.r.hget(store.key("ev", i), "replays") or 0) for i in ids]
    assert min(replays) == 1  # none missed
    twice = sum(1 for n in replays if n > 1)
    assert twice <= JOB_PAGE  # only the interrupted page can have been replayed again
    print(
        f"\nreplay job: {EVENTS} events; pool process SIGKILLed at {killed_at}s with {done_at_kill} done; "
        f"resumed and done at {finished_at}s, count {view['count']}; {twice} replayed twice"
    )
