"""The seam between intake and workers: task names, queues and the Celery configuration both sides share.

The intake never imports worker code; it sends tasks by these stable names.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings

PROCESS_EVENT = "voucherify.process_event"
RECONCILE = "voucherify.reconcile"
ARCHIVE = "voucherify.archive"  # move settled events to the disk archive (workers/archiver.py)
REPLAY_JOB = "voucherify.replay_job"  # a bulk replay, run by a worker a page at a time (ingest/replay.py)

LIVE_QUEUE = "events"  # fresh deliveries from the intake
REPLAY_QUEUE = "replay"  # replays, retries and reconciler hand-offs: live traffic keeps its latency
# The reconciler's own periodic task, alone: behind a backlog of `replay` it would expire unrun, and the
# backlog is exactly when lost messages must still be noticed.
RECONCILE_QUEUE = "reconcile"
# The archiver's periodic task, alone too: an archive database that is slow or down must not hold back the
# reconciler's.
ARCHIVE_QUEUE = "archive"


def is_amqp(broker_url: str) -> bool:
    """True for a RabbitMQ broker URL."""
    return urlsplit(broker_url).scheme in ("amqp", "amqps", "pyamqp")


def queues(settings: Settings) -> tuple[Queue, ...]:
    """The queues, declared identically by the intake's client and the workers.

    On RabbitMQ they are durable quorum queues (replicated, and the type RabbitMQ recommends for data
    that must not be lost). RabbitMQ refuses (PRECONDITION_FAILED) to redeclare a queue with other
    arguments, so both sides must declare them from here.
    """
    args = {"x-queue-type": "quorum"} if is_amqp(settings.broker_url) else None
    # Each queue its own direct exchange and key (by default Celery binds `replay` to the `events` exchange
    # and key, which on RabbitMQ delivers a live message to both queues). A worker takes turns between
    # its queues (kombu's Redis transport moves the queue it last took from to the back of its BRPOP; on
    # RabbitMQ each queue has its own consumer): a replay backlog gets a fair share of the turns, so live
    # deliveries never wait behind the whole of it. Not a strict priority, on purpose: that would starve
    # `replay` and the reconciler's queue under sustained live traffic.
    return tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name, durable=True, queue_arguments=args)
        for name in (LIVE_QUEUE, REPLAY_QUEUE, RECONCILE_QUEUE, ARCHIVE_QUEUE)
    )


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for at-least-once delivery; the same for the intake's client and the workers."""
    visibility = max(3600, settings.task_time_limit_s * 4)
    amqp = is_amqp(settings.broker_url)
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": (
            # RabbitMQ: publisher confirms, so a send returns only once the broker has the message.
            {"confirm_publish": True}
            if amqp
            # Redis transport: a message not acked within this is redelivered. Longer than any task
            # (tasks never wait on an ETA: retries are scheduled through the store's outbox).
            else {"visibility_timeout": visibility}
        ),
        "task_queues": queues(settings),
        # Any other queue a task is sent to gets the same type (Celery >= 5.5).
        "task_default_queue_type": "quorum" if amqp else "classic",
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Celery 5.7: a task whose worker process died is re-sent like a retry, so max_retries bounds it
        # (a task that kills its worker every time stops after that many tries instead of looping).
        "task_retry_on_worker_lost": True,
        "task_default_queue": LIVE_QUEUE,
        "task_create_missing_queues": True,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": max(1, settings.task_time_limit_s - 5),
        # One message at a time per pool process; with micro-batches (workers/batch.py), room for a batch
        # running and the next one filling. Set here, before the consumer starts: RabbitMQ applies a
        # per-consumer prefetch (quorum queues have no global one) only to consumers created after it.
        "worker_prefetch_multiplier": 2 * settings.worker_batch_size if settings.worker_batch_size > 1 else 1,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_pool_limit": 10,
        "timezone": "UTC",
    }


def celery_message(task: str, args: list[Any], queue: str) -> bytes:
    """A Celery task message (protocol 2) as kombu's Redis transport keeps it on the queue's list.

    The intake builds this itself so the message goes into Redis inside the same Lua script that stores the
    event: one round trip instead of two, atomic with the store write, and without `send_task`'s overhead,
    which costs more than the rest of the intake. Same layout as kombu writes (kombu.transport.redis
    `Channel._put`; Celery's `amqp.as_task_v2`); the anonymous exchange with routing key = queue name is
    what Celery itself uses, and what kombu restores an unacked message to. Rendered from a template: this
    runs once per webhook.
    """
    # Two version-4 UUIDs, as uuid.uuid4() makes them, from one system call instead of two.
    rand = os.urandom(32)
    task_id, tag = str(uuid.UUID(bytes=rand[:16], version=4)), str(uuid.UUID(bytes=rand[16:], version=4))
    args_json = json.dumps(args)
    body = base64.b64encode(f"[{args_json}, {{}}, {_EMBED}]".encode()).decode()
    task_json, origin, queue_json = _quoted(task, queue, os.getpid())
    return _TEMPLATE.format(
        body=body,
        task=task_json,
        id=task_id,
        argsrepr=json.dumps(repr(args)),
        origin=origin,
        queue=queue_json,
        tag=tag,
    ).encode()


@functools.lru_cache(maxsize=32)
def _quoted(task: str, queue: str, pid: int) -> tuple[str, str, str]:
    # The same few names on every message; the pid is in the key, so a forked process gets its own origin.
    return json.dumps(task), json.dumps(f"gen{pid}@{_HOST}"), json.dumps(queue)


_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'
_TEMPLATE = (
    '{{"body": "{body}", "content-encoding": "utf-8", "content-type": "application/json", '
    '"headers": {{"lang": "py", "task": {task}, "id": "{id}", "shadow": null, "eta": null, "expires": null, '
    '"group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id": "{id}", '
    '"parent_id": null, "argsrepr": {argsrepr}, "kwargsrepr": "{{}}", "origin": {origin}, '
    '"ignore_result": true, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {{}}}}, '
    '"properties": {{"correlation_id": "{id}", "reply_to": "", "delivery_mode": 2, '
    '"delivery_info": {{"exchange": "", "routing_key": {queue}}}, "priority": 0, "body_encoding": "base64", '
    '"delivery_tag": "{tag}"}}}}'
)


_HOST = socket.gethostname()


class TaskQueue:
    """Sends tasks by name through a Celery client that knows no tasks."""

    def __init__(self, settings: Settings) -> None:
        self.celery = Celery("voucherify-ingest", set_as_current=False)
        self.celery.conf.update(celery_config(settings))
        # When the broker is the store's own Redis, the intake writes the message in its store script.
        self.inline = (
            settings.broker_url == settings.redis_url
            and urlsplit(settings.broker_url).scheme in ("redis", "rediss", "unix")
            and not self.celery.conf.broker_transport_options.get("global_keyprefix")
        )

    def inline_message(self, event_id: str) -> tuple[str, bytes]:
        """(list key, message) handing `event_id` to a worker on the live queue, for a Lua script to push."""
        return LIVE_QUEUE, celery_message(PROCESS_EVENT, [event_id], LIVE_QUEUE)

    def process_event(self, event_id: str, *, queue: str = LIVE_QUEUE) -> None:
        """Hand an event to a worker. At-least-once: the outbox covers a send that is lost."""
        self.celery.send_task(PROCESS_EVENT, args=[event_id], queue=queue, retry=False)

    def replay_job(self, job_id: str) -> None:
        """Hand a bulk replay job to a worker, on the replay queue."""
        self.celery.send_task(REPLAY_JOB, args=[job_id], queue=REPLAY_QUEUE, retry=False)

    def ping(self) -> bool:
        """True when the broker accepts a connection."""
        try:
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:
            return False


def queue_lengths(
    celery: Celery, names: tuple[str, ...] = (LIVE_QUEUE, REPLAY_QUEUE)
) -> dict[str, int] | None:
    """Messages waiting in each broker queue (any Celery transport), or None if the broker does not answer."""
    try:
        with celery.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            out: dict[str, int] = {}
            for name in names:
                # A fresh channel each: on AMQP a passive declare of a missing queue closes its channel.
                channel = conn.channel()
                try:
                    out[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except conn.channel_errors:
                    out[name] = 0  # never declared yet, so nothing is waiting in it
                finally:
                    channel.close()
            return out
    except Exception:
        return None
