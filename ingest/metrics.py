"""Prometheus metrics. `GET /metrics` on the intake renders the intake's own series and the workers'.

Intake series are counted inside the intake's processes, in prometheus_client's multiprocess mode: gunicorn
runs several worker processes, each writes its counters to mmap'd files in PROMETHEUS_MULTIPROC_DIR (default
`$DATA_DIR/metrics`), and a scrape answered by any one of them sums every file. That costs the accept path
no Redis round trip (it stays at one), and it counts what Redis never sees: 401s, 413s, and the 503s
answered because Redis is down. `ingest.gunicorn_conf` empties the directory when gunicorn starts.

Worker series live in Redis (`{p}:metrics`, kept by the store's status script in the same round trip that
records an event's and its actions' state), so every worker process on every machine adds to one set of
counters; the backlog gauges are read from the store and the broker at scrape time. They describe the whole
deployment: every intake instance reports the same values, so aggregate them with `max`, never `sum`.
Every series and the alerts worth setting: docs/metrics.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from flask import Blueprint, Flask, Response, current_app

from core.queue import queue_lengths
from core.settings import Settings
from core.store import LATENCY_BUCKETS, STATUSES

if TYPE_CHECKING:
    from celery import Celery

    from core.store import EventStore
    from ingest.intake import Answer

PREFIX = "voucherify_ingest"
ENV = "PROMETHEUS_MULTIPROC_DIR"
# What the intake answered, by status code; 202 is accepted or duplicate (the view says which). "timeout"
# and "limited" are connections the server closed before a request reached the app: too slow to send it
# (408), or one too many from one address (429); ingest/buffered_worker.py counts those.
OUTCOMES = (
    "accepted",
    "duplicate",
    "unauthorized",
    "too_large",
    "unavailable",
    "not_found",
    "incomplete",
    "error",
    "timeout",
    "limited",
)
INTAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

bp = Blueprint("metrics", __name__)


def multiproc_dir(settings: Settings) -> Path:
    """Where the intake's processes keep their counters: $PROMETHEUS_MULTIPROC_DIR, else $DATA_DIR/metrics."""
    return Path(os.environ.get(ENV) or settings.data_dir / "metrics").resolve()


def reset_dir(path: Path) -> None:
    """Empty the counters directory; only before any intake process of this run has started."""
    path.mkdir(parents=True, exist_ok=True)
    for f in path.glob("*.db"):
        f.unlink(missing_ok=True)


@dataclass(frozen=True)
class IntakeMetrics:
    """The intake's own series; one set per process, summed over processes at scrape time."""

    requests: Any
    duration: Any
    secrets: Any
    enqueue_failures: Any


_intake: dict[str, IntakeMetrics] = {}


def intake_metrics(path: Path) -> IntakeMetrics:
    """This process's intake metrics, writing to `path` (the first call in a process decides the path)."""
    if "m" in _intake:
        return _intake["m"]
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
    from prometheus_client import Counter, Histogram, values

    # prometheus_client picks how it stores values once, when first imported, from PROMETHEUS_MULTIPROC_DIR.
    # Something may have imported it before this factory ran, so have it pick again, now that it is set.
    values.ValueClass = values.get_value_class()
    _intake["m"] = IntakeMetrics(
        requests=Counter(
            f"{PREFIX}_requests",
            "Webhook deliveries by what the intake answered.",
            ["outcome"],
            registry=None,
        ),
        duration=Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time the intake took to answer a webhook delivery (from the request reaching the app to its "
            "answer).",
            buckets=INTAKE_BUCKETS,
            registry=None,
        ),
        secrets=Counter(
            f"{PREFIX}_secret_matches",
            "Authenticated deliveries by which configured secret matched (its index, never the secret).",
            ["secret"],
            registry=None,
        ),
        enqueue_failures=Counter(
            f"{PREFIX}_enqueue_failures",
            "Stored deliveries whose enqueue failed; the reconciler hands them over after the lease.",
            registry=None,
        ),
    )
    return _intake["m"]


class IntakeCounters:
    """Counts what the intake answered each delivery (ingest/intake.py calls `count` once per delivery)."""

    def __init__(self, m: IntakeMetrics, secrets: int) -> None:
        self.m = m
        # Series exist at zero from the start, so rate() and absent-series alerts work before the first
        # event. The labelled children are kept: `labels()` costs as much as the increment itself.
        self.by_outcome = {outcome: m.requests.labels(outcome) for outcome in OUTCOMES}
        self.by_secret = {str(i): m.secrets.labels(str(i)) for i in range(secrets)}

    def count(self, answer: Answer, seconds: float) -> None:
        self.by_outcome[answer.outcome].inc()
        self.m.duration.observe(seconds)
        if answer.secret:
            (self.by_secret.get(answer.secret) or self.m.secrets.labels(answer.secret)).inc()
        if answer.enqueue_failed:
            self.m.enqueue_failures.inc()


def init_app(app: Flask, settings: Settings, store: EventStore, celery: Celery | None) -> IntakeCounters:
    """Serve `GET /metrics`; the intake's counters, for ingest.intake to count its answers with. Touches
    no network: Redis is read per scrape."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    path = multiproc_dir(settings)
    counters = IntakeCounters(intake_metrics(path), len(settings.webhook_secrets))
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    registry.register(WorkerCollector(store, (lambda: queue_lengths(celery)) if celery else None))
    app.extensions["voucherify.metrics"] = registry
    app.register_blueprint(bp)
    return counters


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: the intake's series (all its processes) and the workers' (from Redis)."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    return Response(
        generate_latest(current_app.extensions["voucherify.metrics"]), content_type=CONTENT_TYPE_PLAIN_0_0_4
    )


class WorkerCollector:
    """Renders the workers' counters and the backlog from Redis (and the broker) at each scrape."""

    def __init__(self, store: EventStore, lengths: Callable[[], dict[str, int] | None] | None) -> None:
        self.store = store
        self.lengths = lengths

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        try:
            counters = self.store.worker_counters()
            counts = self.store.counts()
            outbox = self.store.outbox_size()
            oldest = self.store.oldest_unfinished()
            settings = self.store.settings
            lag = (
                self.store.archive_lag(after_s=settings.archive_after_s)
                if settings.archive_database_url
                else None
            )
        except redis.RedisError:
            counters = None
        yield GaugeMetricFamily(
            f"{PREFIX}_store_up",
            "1 if the store answered this scrape (the worker and backlog series need it), else 0.",
            0.0 if counters is None else 1.0,
        )
        if counters is not None:
            settled = CounterMetricFamily(
                f"{PREFIX}_events_settled",
                "Events reaching a final status, by event type (a replayed event counts again).",
                labels=["event_type", "status"],
            )
            for (status, event_type), n in sorted(counters.settled.items()):
                settled.add_metric([event_type or "unknown", status], n)
            yield settled

            actions = CounterMetricFamily(
                f"{PREFIX}_action_attempts",
                "Action attempts by outcome: succeeded, skipped, failed (will retry) or dead (gave up).",
                labels=["action", "outcome"],
            )
            for (outcome, name), n in sorted(counters.actions.items()):
                actions.add_metric([name, outcome], n)
            yield actions

            yield CounterMetricFamily(
                f"{PREFIX}_late_deliveries",
                "Deliveries whose signed event.created_at was older than the dedup window (still processed).",
                counters.late,
            )
            yield CounterMetricFamily(
                f"{PREFIX}_reconciler_handoffs",
                "Messages the reconciler sent: lost enqueues, workers lost mid-event, actions' retries.",
                counters.handoffs,
            )

            yield CounterMetricFamily(
                f"{PREFIX}_archived_events",
                "Events moved from Redis to the disk archive (one replayed and archived again counts again).",
                counters.archived,
            )
            if lag is not None:
                yield GaugeMetricFamily(
                    f"{PREFIX}_archive_lag_seconds",
                    "How long the oldest settled event due for the archive has waited past "
                    "ARCHIVE_AFTER_SECONDS (0: the archiver is keeping up).",
                    lag,
                )

            stale = CounterMetricFamily(
                f"{PREFIX}_mirror_stale",
                "Mirror snapshots older than their row (not applied; the action ends skipped), by table.",
                labels=["table"],
            )
            for table, n in sorted(counters.mirror_stale.items()):
                stale.add_metric([table], n)
            yield stale

            buckets, total = [], 0
            for bound in (*(f"{b:g}" for b in LATENCY_BUCKETS), "+Inf"):
                total += counters.latency_buckets.get(bound, 0)
                buckets.append((bound if bound == "+Inf" else repr(float(bound)), total))
            yield HistogramMetricFamily(
                f"{PREFIX}_event_latency_seconds",
                "From receipt to an event's first final status (processed, ignored, invalid or dead).",
                buckets=buckets,
                sum_value=counters.latency_sum,
            )

            by_status = GaugeMetricFamily(
                f"{PREFIX}_events", "Events in the store now, by status.", labels=["status"]
            )
            for status in STATUSES:
                by_status.add_metric([status], counts.get(status, 0))
            yield by_status
            yield GaugeMetricFamily(
                f"{PREFIX}_outbox_events",
                "Unfinished events in the outbox (waiting for a worker, a lease or an action's retry).",
                outbox,
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_oldest_unfinished_age_seconds",
                "Age of the oldest event not yet in a final status (0 when there is none).",
                max(0.0, time.time() - oldest) if oldest else 0.0,
            )

        if self.lengths is None:
            return
        lengths = self.lengths()
        yield GaugeMetricFamily(
            f"{PREFIX}_broker_up", "1 if the broker answered this scrape, else 0.", float(lengths is not None)
        )
        if lengths is not None:
            queued = GaugeMetricFamily(
                f"{PREFIX}_queue_messages", "Task messages waiting in each broker queue.", labels=["queue"]
            )
            for name, n in lengths.items():
                queued.add_metric([name], n)
            yield queued
