"""Celery tasks: thin wrappers over plain functions. Arguments are ids, never payloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task

from core.queue import PROCESS_EVENT, RECONCILE, queue_lengths
from workers import pipeline, reconciler
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


@task(PROCESS_EVENT)
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
    return handed
