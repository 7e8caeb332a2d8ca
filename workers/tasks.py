"""Celery tasks: thin wrappers over plain functions. Arguments are ids, never payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task

from core import replay
from core.queue import ARCHIVE, PROCESS_EVENT, RECONCILE, REPLAY_JOB, REPLAY_QUEUE, queue_lengths
from workers import archiver, pipeline, reconciler
from workers.actions import mirror as mirror_action
from workers.runtime import runtime_for


def task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """Our one task decorator: a stable name, late acks, no results, bounded worker-lost redelivery."""
    return shared_task(
        name=name,
        bind=True,
        acks_late=True,
        ignore_result=True,
        max_retries=5,
        default_retry_delay=1,
        **options,
    )


# Its messages are run in batches (workers/batch.py) unless WORKER_BATCH_SIZE is 1.
@task(PROCESS_EVENT, Strategy="workers.batch:strategy")
def process_event(self: Task, event_id: str) -> str:
    # Which message this is and where it came from: the reconciler's rules need both (lua/hand_over.lua).
    queue = (self.request.delivery_info or {}).get("routing_key") or ""
    return pipeline.process_event(
        event_id, runtime_for(self.app.settings), message_id=self.request.id or "", queue=queue
    )


@task(RECONCILE)
def reconcile(self: Task) -> int:
    rt = runtime_for(self.app.settings)
    handed = reconciler.reconcile(
        rt.store,
        lambda h: self.app.send_task(PROCESS_EVENT, args=[h.event_id], queue=h.queue, task_id=h.message_id),
        lengths=lambda: queue_lengths(self.app),
    )
    # Retention: every run also drops a bounded slice of the index entries of expired events.
    rt.store.prune_expired()
    mirror = rt.actions.get(mirror_action.NAME)
    if isinstance(mirror, mirror_action.MirrorAction):
        # mirror_history is kept as long as events are: the longest retention.
        mirror.prune_history(max(rt.settings.retention_processed_s, rt.settings.retention_failed_s))
    return handed


class _SendOnReplay:
    """What replay.run_job sends with: process_event by name, from inside a worker."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def process_event(self, event_id: str, *, queue: str = REPLAY_QUEUE) -> None:
        self.app.send_task(PROCESS_EVENT, args=[event_id], queue=queue)


@task(REPLAY_JOB)
def replay_job(self: Task, job_id: str) -> str | None:
    settings = self.app.settings
    # A slice well inside the task's time limit; a job longer than that goes on in a fresh message, which
    # also lets live traffic and other replays in between (workers take the live queue first).
    state = replay.run_job(
        runtime_for(settings).store,
        _SendOnReplay(self.app),
        job_id,
        slice_s=max(1.0, min(20.0, settings.task_time_limit_s / 3)),
        archive=archiver.archive_for(settings),
    )
    if state == "running":
        self.app.send_task(REPLAY_JOB, args=[job_id], queue=REPLAY_QUEUE)
    return state


@task(ARCHIVE)
def archive(self: Task) -> int:
    settings = self.app.settings
    store = runtime_for(settings).store
    found = archiver.archive_for(settings)
    if found is None:
        return archiver.compact_pass(store)
    # A pass well inside the task's time limit; what is left is taken by the next one.
    return archiver.archive_or_wait(
        store, found, budget_s=max(1.0, min(20.0, settings.task_time_limit_s / 3))
    )
