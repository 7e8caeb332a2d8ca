"""Micro-batches (docs/batches.md): process_event messages run as one pool job per batch.

Celery's own cost per message (a Request in the consumer, a pool job, the child's task tracing) was most of
a worker's time. This task strategy (Celery's public `Task.Strategy` hook) keeps the messages process_event
receives in the consumer and sends them to the pool a batch at a time; the child runs the batch with
pipeline.process_batch, and each message is acknowledged only once that job says its event's outcome is
written. What makes it safe:

- A batch goes to the pool as soon as a pool process is free (after WORKER_BATCH_WAIT_MS at most, if that
  is set and the batch is not full). While every process is busy, arriving messages wait for the next
  batch: with no backlog a batch is one message and adds no latency; under load batches grow by themselves.
- A job whose pool process died (a poison event, the OOM killer) or hit the hard time limit: its messages
  run again, each in a job of its own, so one event cannot take its batch-mates down. An event that keeps
  killing its process is refused by the store after MAX_EVENT_STARTS starts and ends `dead`.
- A job that raised (the store unreachable, say) acknowledges its messages, as a failed task does: every
  event it may have begun has its outbox lease, and the reconciler hands it over again.
- Messages never acknowledged (a worker killed, a warm shutdown with messages still waiting here) go back
  to the broker, as Celery's own unacknowledged messages do.

A message this strategy does not expect (an ETA, an expiry, a revoked id, protocol 1, other arguments)
goes to Celery's default strategy, as does every message when WORKER_BATCH_SIZE is 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import TimeLimitExceeded, WorkerLostError
from celery import current_app
from celery.worker.strategy import default as default_strategy

from core import logs
from core.settings import Settings
from workers import pipeline
from workers.runtime import runtime_for

log = logging.getLogger("workers.batch")

# A message whose job lost its process is run alone again at most this many times: by then the store has
# refused the event (MAX_EVENT_STARTS), unless the store never counted its starts; the outbox still holds it.
MAX_ALONE = pipeline.MAX_EVENT_STARTS + 1

Start = tuple[str, str, str]  # (event id, message id, queue): what a job gets per message


def strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Callable[..., None]:
    """The task strategy of process_event: batches, unless WORKER_BATCH_SIZE is 1."""
    fallback = default_strategy(task, app, consumer, **kwargs)
    settings: Settings = app.settings
    if settings.worker_batch_size <= 1:
        return fallback  # exactly Celery's per-message handling
    return Batcher(consumer, settings, fallback).on_message


def run_job(starts: Sequence[Start]) -> list[str]:
    """In a pool process: run one batch; each event's status afterwards ("error" when it raised)."""
    logs.clear()
    try:
        rt = runtime_for(current_app.settings)  # a WorkerApp
        return pipeline.process_batch([pipeline.Delivery(*s) for s in starts], rt)
    finally:
        logs.clear()


@dataclass
class _Message:
    start: Start
    ack: Callable[..., Any]
    at: float  # when it arrived (monotonic)


class Batcher:
    """In the consumer process: buffers process_event messages, sends them to the pool in batches."""

    def __init__(self, consumer: Any, settings: Settings, fallback: Callable[..., None]) -> None:
        self.pool = consumer.pool
        self.timer = consumer.timer
        self.revoked = consumer.controller.state.revoked
        self.connection_errors = consumer.connection_errors
        self.fallback = fallback
        self.size = settings.worker_batch_size
        self.wait_s = settings.worker_batch_wait_ms / 1000
        self.time_limit = settings.task_time_limit_s
        self.soft_limit = max(1, settings.task_time_limit_s - 5)  # as core.queue.celery_config
        self.buffer: list[_Message] = []
        self.busy = 0  # jobs of ours in the pool
        self.waiting: Any = None  # the timer entry of a batch waiting to fill

    def on_message(self, message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any) -> None:
        """Celery's strategy call for one received message."""
        start = self._start_of(message, body)
        if start is None:
            self.fallback(message, body, ack, reject, callbacks, **kw)
            return
        self.buffer.append(_Message(start, ack, time.monotonic()))
        self._dispatch()

    def _start_of(self, message: Any, body: Any) -> Start | None:
        headers = message.headers or {}
        if body is not None or headers.get("eta") or headers.get("expires"):
            return None  # protocol 1, or a message Celery's own Request must time (ETA, expiry)
        task_id = headers.get("id") or ""
        if task_id in self.revoked:
            return None
        payload = message.payload  # protocol 2: [args, kwargs, embed]
        try:
            args, kwargs = payload[0], payload[1]
        except (TypeError, KeyError, IndexError):
            return None
        if kwargs or not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], str):
            return None
        queue = (message.delivery_info or {}).get("routing_key") or ""
        return (args[0], task_id, queue)

    def _dispatch(self, *, waited: bool = False) -> None:
        """Send batches while a pool process is free; a batch not full may wait up to wait_s to fill."""
        while self.buffer and self.busy < max(1, self.pool.num_processes):
            if len(self.buffer) < self.size and self.wait_s and not waited:
                left = self.wait_s - (time.monotonic() - self.buffer[0].at)
                if left > 0:
                    if self.waiting is None:
                        self.waiting = self.timer.call_after(left, self._waited)
                    return
            batch, self.buffer = self.buffer[: self.size], self.buffer[self.size :]
            self._submit(batch, alone=0)
        if self.waiting is not None and not self.buffer:
            self.waiting.cancel()
            self.waiting = None

    def _waited(self) -> None:
        self.waiting = None
        self._dispatch(waited=True)

    def _submit(self, batch: list[_Message], *, alone: int) -> None:
        """One pool job for `batch`; `alone` counts the tries of a message run alone after a lost job."""
        self.busy += 1
        sent = time.monotonic()

        def done(statuses: list[str]) -> None:
            self.busy -= 1
            for m in batch:
                m.ack(log, self.connection_errors)
            # In place of Celery's two lines per task (received, succeeded): one per batch.
            log.info(
                "batch done",
                extra={"events": len(batch), "ms": round((time.monotonic() - sent) * 1000, 1)},
            )
            self._dispatch()

        def failed(info: Any) -> None:
            self.busy -= 1
            exc = info.exception
            self._failed(batch, exc.exc if isinstance(exc, ExceptionWithTraceback) else exc, alone)
            self._dispatch()

        one = len(batch) == 1
        self.pool.apply_async(
            run_job,
            args=([m.start for m in batch],),
            callback=done,
            error_callback=failed,
            # A batch has one task's hard limit: one over it runs again message by message, each with the
            # limits of a task (a batch's soft limit would interrupt whichever event it landed in).
            timeout=self.time_limit,
            soft_timeout=self.soft_limit if one else None,
            correlation_id=batch[0].start[1],
        )

    def _failed(self, batch: list[_Message], exc: BaseException, alone: int) -> None:
        ids = [m.start[0] for m in batch]
        # A batch that lost its process or its time runs again message by message; a message alone runs
        # again after a lost process (up to MAX_ALONE), but not after its time limit: as Celery acks a task
        # that hit it, and the reconciler hands it over after its lease, so it cannot hog a process.
        lost = isinstance(exc, WorkerLostError) or (isinstance(exc, TimeLimitExceeded) and len(batch) > 1)
        if lost and (len(batch) > 1 or alone < MAX_ALONE):
            # Which event was it? Each runs alone now: the others finish, the culprit's starts add up.
            log.warning(
                "batch lost its pool process; its events run one by one",
                extra={"reason": "worker_lost", "events": ids, "error": repr(exc), "tries": alone},
            )
            for m in batch:
                self._submit([m], alone=alone + 1)
            return
        # The job raised, or one event kept losing its process: acknowledged as a failed task is. Every
        # event the job began holds an outbox lease: the reconciler hands it over again.
        log.error(
            "batch failed",
            extra={"reason": "batch_failed", "events": ids, "error": repr(exc)},
        )
        for m in batch:
            m.ack(log, self.connection_errors)
