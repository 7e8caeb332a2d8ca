"""Fault tests: real processes (Valkey, Celery workers with beat, SMTP and HTTP receivers) broken on purpose.

Timings are shortened through the same environment variables an operator would set: a 5 s outbox lease and
a reconciler every 0.5 s, so an event whose worker died is handed over again within ~6 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.helpers import FAULT_ENV
from tests.support import Proc, SmtpSink, start_worker, worker_env


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start real worker processes (`workers(redis_url, **env)`); all are stopped at teardown."""
    started: list[Proc] = []

    def start(redis_url: str, *, concurrency: int = 2, **env: str) -> Proc:
        log = tmp_path / f"worker-{len(started)}.log"
        proc = start_worker(worker_env(redis_url, **{**FAULT_ENV, **env}), log, concurrency=concurrency)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()
