"""gunicorn settings for the intake: `gunicorn -c python:ingest.gunicorn_conf 'ingest:create_app()'`.

Only what the command line cannot say, and what must hold however the intake is started: the worker class
that keeps slow clients away from the request threads (ingest/buffered_worker.py), so any command naming
this config file gets it. The intake's processes keep their metrics in files under one
directory (see ingest/metrics.py); the master empties it when it starts, so a run's counters start at zero
rather than adding up the files of every process any earlier run had.
"""

from __future__ import annotations

import gc
from typing import Any

from gunicorn.glogging import Logger

from core.logs import formatter, secrets_of
from core.settings import Settings
from ingest import metrics


class JsonLogger(Logger):
    """gunicorn's own lines (start, workers booting and dying, the access log if asked for) as JSON, or
    readable on a terminal (LOG_FORMAT)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # The same secrets the app's formatter blanks (core/logs.py): gunicorn's lines quote request
        # lines and exception messages too. A bad variable fails here, at start, naming itself.
        settings = Settings.from_env()
        lines = formatter(settings.log_format, redact=secrets_of(settings))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(lines)


logger_class = JsonLogger


def worker_class_for(settings: Settings) -> str:
    """Our buffering worker, or gunicorn's own gthread with INTAKE_BUFFERING=0 (the off switch)."""
    return "ingest.buffered_worker.BufferedThreadWorker" if settings.intake_buffering else "gthread"


worker_class = worker_class_for(Settings.from_env())


def on_starting(server: Any) -> None:
    """In the master, before any worker: a fresh metrics directory for this run."""
    metrics.reset_dir(metrics.multiproc_dir(Settings.from_env()))


def post_worker_init(worker: Any) -> None:
    """In each worker, once the app is loaded: move everything alive now out of the collector's reach.

    A full (gen 2) collection walks every tracked object, and the intake's heap is mostly modules (Flask,
    Celery's client, redis, prometheus) that live as long as the process. Each request leaves a few
    reference cycles behind (werkzeug's URL matcher makes one), so full collections do come, and walking
    that heap took 4-10 ms each: stalls that set the intake's p99 at half saturation. Frozen, a full
    collection walks only what requests created (docs/benchmarks.md has the numbers).
    """
    gc.collect()
    gc.freeze()
