"""Celery signal handlers: our JSON logs for Celery's own lines, and a task's ids bound to its log lines."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from typing import Any

from celery import signals
from celery.apps import worker as celery_worker

from core import logs
from core.queue import PROCESS_EVENT
from core.settings import Settings


def connect(settings: Settings) -> None:
    """Hook our logging into Celery; idempotent (dispatch_uid), safe to call from every create_celery."""

    def setup_logging(**_: Any) -> None:
        # Connected, this replaces Celery's own logging setup altogether (its plain-text handlers on the
        # root and task loggers), so Celery's lines, the worker's and the tasks' all come out as JSON.
        logs.configure_logging(settings.log_level, redact=logs.secrets_of(settings), fmt=settings.log_format)

    signals.setup_logging.connect(setup_logging, weak=False, dispatch_uid="voucherify.setup_logging")
    signals.task_prerun.connect(bind_task, weak=False, dispatch_uid="voucherify.bind_task")
    signals.task_postrun.connect(unbind_task, weak=False, dispatch_uid="voucherify.unbind_task")
    # Celery's signal handlers write their notices ("worker: Warm shutdown (MainProcess)") as plain text
    # straight to the file descriptor, past logging and past --quiet: the one non-JSON line a worker wrote.
    # Its module looks `safe_say` up when it says something, so this makes those lines JSON too.
    celery_worker.safe_say = functools.partial(_say_as_json, fmt=settings.log_format)

    def check_mail(**_: Any) -> None:
        from workers.mailcheck import check_mail_in_background

        check_mail_in_background(settings)

    # Once per worker (its main process), when it is ready to consume: not for `celery inspect` and co.
    signals.worker_ready.connect(check_mail, weak=False, dispatch_uid="voucherify.check_mail")

    def routes(**_: Any) -> None:
        publish_routes(settings)

    signals.worker_ready.connect(routes, weak=False, dispatch_uid="voucherify.publish_routes")


def publish_routes(settings: Settings) -> None:
    """Write this worker's routes table to the store, for the intake's console (core/store/routes.py)."""
    from core.store import EventStore
    from workers import dispatch
    from workers.runtime import load_handlers

    try:
        store = EventStore.from_settings(settings, timeout=5.0)
        store.publish_routes(dispatch.routes_table(settings, load_handlers(settings)))
    except Exception as exc:
        # Only the console's dry run reads it, and it says when there is none: never stop a worker for it.
        logging.getLogger("workers.routes").warning(
            "routes table not published", extra={"reason": "routes_not_published", "error": repr(exc)}
        )


def bind_task(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    """Bind the task's id and name (and the event id of process_event) to every line the task logs."""
    fields: dict[str, Any] = {"task_id": task_id, "task": getattr(task, "name", None)}
    if getattr(task, "name", None) == PROCESS_EVENT and args:
        fields["event_id"] = args[0]
    logs.clear()
    logs.bind(**fields)


def unbind_task(**_: Any) -> None:
    """A pool process runs many tasks: nothing of one may leak into the next one's lines."""
    logs.clear()


def _say_as_json(msg: str, f: Any = sys.__stderr__, *, fmt: str = "json") -> None:
    """Celery's signal-handler notices as one JSON log line, written as Celery writes them (no locks)."""
    record = logging.makeLogRecord({"name": "celery.worker", "levelno": logging.INFO, "levelname": "INFO"})
    record.msg = msg.strip()
    line = logs.formatter(fmt).format(record) + "\n"
    # A notice lost must never stop a shutdown (Celery's own safe_say swallows it too).
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(f.fileno(), line.encode())
