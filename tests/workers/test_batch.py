"""The consumer side of micro-batches (workers/batch.py): when a batch goes to the pool, what is acked when,
and what a lost pool process or a failed job does. The pool, timer and messages are recording stand-ins
here; tests/faults/test_batches.py runs the same code in real workers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from billiard.exceptions import TimeLimitExceeded, WorkerLostError

from core.queue import celery_config
from core.settings import Settings
from workers import batch, pipeline


class Pool:
    def __init__(self, processes: int = 1) -> None:
        self.num_processes = processes
        self.jobs: list[dict[str, Any]] = []

    def apply_async(self, target, args, **options):
        self.jobs.append({"target": target, "starts": args[0], **options})

    def finish(self, i: int = 0, statuses: list[str] | None = None) -> None:
        job = self.jobs.pop(i)
        job["callback"](statuses or ["processed"] * len(job["starts"]))

    def fail(self, exc: BaseException, i: int = 0) -> None:
        job = self.jobs.pop(i)
        try:
            raise exc
        except BaseException:
            # What billiard hands the error callback: the exception wrapped for the trip between processes.
            job["error_callback"](ExceptionInfo())

    def events(self, i: int = 0) -> list[str]:
        return [s[0] for s in self.jobs[i]["starts"]]


class Timer:
    def __init__(self) -> None:
        self.entries: list[SimpleNamespace] = []

    def call_after(self, secs, fun):
        entry = SimpleNamespace(secs=secs, fun=fun, cancelled=False)
        entry.cancel = lambda: setattr(entry, "cancelled", True)
        self.entries.append(entry)
        return entry


class Message:
    def __init__(self, event_id: str, **headers: Any) -> None:
        self.headers = {"id": f"msg-{event_id}", "task": "voucherify.process_event", **headers}
        self.payload = [[event_id], {}, {}]
        self.delivery_info = {"routing_key": "events"}


@pytest.fixture
def consumer():
    return SimpleNamespace(
        pool=Pool(),
        timer=Timer(),
        controller=SimpleNamespace(state=SimpleNamespace(revoked=set())),
        connection_errors=(),
    )


@pytest.fixture
def acked():
    return []


@pytest.fixture
def fallback():
    return []


@pytest.fixture
def batcher(consumer, fallback):
    return make(consumer, fallback)


def make(consumer, fallback, **settings):
    s = Settings(**{"worker_batch_size": 3, "task_time_limit_s": 60, **settings})
    return batch.Batcher(consumer, s, lambda *args, **kw: fallback.append(args[0]))


def receive(batcher, acked, *event_ids, **headers):
    for event_id in event_ids:
        batcher.on_message(
            Message(event_id, **headers), None, lambda *a, e=event_id: acked.append(e), None, None
        )


class TestSending:
    def test_a_free_process_takes_a_batch_of_one_at_once(self, batcher, consumer, acked):
        """No backlog: no wait, a batch of one, with a task's time limits."""
        receive(batcher, acked, "e1")
        (job,) = consumer.pool.jobs
        assert job["target"] is batch.run_job
        assert job["starts"] == [("e1", "msg-e1", "events")]
        assert (job["timeout"], job["soft_timeout"]) == (60, 55)

    def test_messages_wait_while_every_process_is_busy(self, batcher, consumer, acked):
        """What arrives during a batch is the next batch, up to WORKER_BATCH_SIZE; nothing acked before
        its job returns."""
        receive(batcher, acked, "e1", "e2", "e3", "e4", "e5")
        assert len(consumer.pool.jobs) == 1
        consumer.pool.finish()
        assert acked == ["e1"]
        assert consumer.pool.events() == ["e2", "e3", "e4"]
        # A batch has one task's hard limit and no soft one (it would interrupt whichever event it hit).
        assert (consumer.pool.jobs[0]["timeout"], consumer.pool.jobs[0]["soft_timeout"]) == (60, None)
        consumer.pool.finish()
        assert acked == ["e1", "e2", "e3", "e4"]
        assert consumer.pool.events() == ["e5"]

    def test_every_free_process_gets_a_batch(self, consumer, fallback, acked):
        consumer.pool.num_processes = 2
        batcher = make(consumer, fallback)
        receive(batcher, acked, "e1", "e2", "e3")
        assert [consumer.pool.events(i) for i in range(2)] == [["e1"], ["e2"]]

    def test_wait_lets_a_batch_fill(self, consumer, fallback, acked):
        """WORKER_BATCH_WAIT_MS: a batch not full waits (once) for more, and goes when full or on time."""
        batcher = make(consumer, fallback, worker_batch_wait_ms=50)
        receive(batcher, acked, "e1", "e2")
        assert consumer.pool.jobs == []
        (entry,) = consumer.timer.entries
        assert 0 < entry.secs <= 0.05
        entry.fun()
        assert consumer.pool.events() == ["e1", "e2"]
        consumer.pool.finish()
        receive(batcher, acked, "e3", "e4", "e5")  # full: no wait
        assert consumer.pool.events() == ["e3", "e4", "e5"]
        assert consumer.timer.entries[-1].cancelled

    def test_unexpected_messages_go_to_celerys_strategy(self, batcher, consumer, acked, fallback):
        """An ETA, an expiry, a revoked id or other arguments: Celery's own Request handles them."""
        receive(batcher, acked, "e1", eta="2030-01-01T00:00:00")
        receive(batcher, acked, "e2", expires="2030-01-01T00:00:00")
        consumer.controller.state.revoked.add("msg-e3")
        receive(batcher, acked, "e3")
        odd = Message("e4")
        odd.payload = [["e4"], {"queue": "x"}, {}]
        batcher.on_message(odd, None, None, None, None)
        assert [m.headers["id"] for m in fallback] == ["msg-e1", "msg-e2", "msg-e3", "msg-e4"]
        assert consumer.pool.jobs == []


class TestFailures:
    def test_a_lost_batch_runs_again_one_by_one(self, batcher, consumer, acked):
        """The pool process died mid-batch: nothing acked; each event in a job of its own."""
        receive(batcher, acked, "e1")
        consumer.pool.finish()
        receive(batcher, acked, "e2", "e3", "e4")
        consumer.pool.finish()
        consumer.pool.fail(WorkerLostError("signal 9"))
        assert acked == ["e1", "e2"]
        assert [consumer.pool.events(i) for i in range(2)] == [["e3"], ["e4"]]
        assert consumer.pool.jobs[0]["soft_timeout"] == 55  # alone: a task's limits
        receive(batcher, acked, "e5")  # waits: the pool is busy with the two
        consumer.pool.finish()
        consumer.pool.finish()
        assert acked == ["e1", "e2", "e3", "e4"]
        assert consumer.pool.events() == ["e5"]

    def test_an_event_that_keeps_losing_its_process_is_bounded(self, batcher, consumer, acked):
        """Alone, it runs again until the store refuses it (MAX_EVENT_STARTS); past MAX_ALONE tries it is
        acked (the outbox still holds it), never looping."""
        receive(batcher, acked, "e1")
        for _ in range(batch.MAX_ALONE):
            consumer.pool.fail(WorkerLostError("signal 9"))
            assert acked == []
            assert consumer.pool.events() == ["e1"]
        consumer.pool.fail(WorkerLostError("signal 9"))
        assert acked == ["e1"]
        assert consumer.pool.jobs == []

    def test_a_batch_over_its_time_limit_runs_one_by_one_and_a_single_one_is_acked(
        self, batcher, consumer, acked
    ):
        """A batch hit TASK_TIME_LIMIT_SECONDS: its events run alone, each with a task's limits; one of
        them hitting the limit again is acked, as Celery acks a task that did (the outbox covers it)."""
        receive(batcher, acked, "e1", "e2", "e3")
        consumer.pool.finish()
        assert consumer.pool.events() == ["e2", "e3"]
        consumer.pool.fail(TimeLimitExceeded(60))
        assert [consumer.pool.events(i) for i in range(2)] == [["e2"], ["e3"]]
        consumer.pool.finish()
        consumer.pool.fail(TimeLimitExceeded(60))
        assert acked == ["e1", "e2", "e3"]
        assert consumer.pool.jobs == []

    def test_a_job_that_raised_acks_its_messages(self, batcher, consumer, acked):
        """The store was unreachable, say: acked as a failed task is; the outbox lease covers each event."""
        receive(batcher, acked, "e1")
        consumer.pool.fail(ConnectionError("store down"))
        assert acked == ["e1"]


class TestStrategy:
    def test_batch_size_one_is_celerys_own_strategy(self, monkeypatch):
        default = object()
        monkeypatch.setattr(batch, "default_strategy", lambda *a, **kw: default)
        app = SimpleNamespace(settings=Settings(worker_batch_size=1))
        assert batch.strategy(None, app, None) is default

    def test_prefetch_makes_room_for_two_batches(self):
        assert celery_config(Settings(worker_batch_size=1))["worker_prefetch_multiplier"] == 1
        assert celery_config(Settings(worker_batch_size=16))["worker_prefetch_multiplier"] == 32

    def test_the_job_runs_the_pipeline_batch(self, monkeypatch):
        seen = {}
        monkeypatch.setattr(batch, "runtime_for", lambda settings: "rt")
        monkeypatch.setattr(batch, "current_app", SimpleNamespace(settings="settings"))

        def process_batch(deliveries, rt):
            seen["args"] = (deliveries, rt)
            return ["processed"]

        monkeypatch.setattr(pipeline, "process_batch", process_batch)
        assert batch.run_job([("e1", "m1", "events")]) == ["processed"]
        assert seen["args"] == ([pipeline.Delivery("e1", "m1", "events")], "rt")
