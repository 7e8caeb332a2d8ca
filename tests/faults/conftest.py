"""Fault tests: real processes (Valkey, Celery workers with beat, SMTP and HTTP receivers) broken on purpose.

Timings are shortened through the same environment variables an operator would set: a 5 s outbox lease and
a reconciler every 0.5 s, so an event whose worker died is handed over again within ~6 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.faults.helpers import FAULT_ENV
from tests.support import Proc, SmtpSink


@pytest.fixture
def workers(workers: Callable[..., Proc]) -> Callable[..., Proc]:
    """The suite's `workers`, with the fault tests' short timings (FAULT_ENV) unless a test overrides them."""

    def start(redis_url: str, *, concurrency: int = 2, **env: str) -> Proc:
        return workers(redis_url, concurrency=concurrency, **{**FAULT_ENV, **env})

    return start


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()
