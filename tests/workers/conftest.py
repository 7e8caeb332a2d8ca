from __future__ import annotations

import pytest

from tests.fakes import Clock, RecordingMailer
from workers import dispatch
from workers.actions.notify import NotifyCustomer
from workers.pipeline import Runtime


@pytest.fixture
def mailer():
    return RecordingMailer()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def runtime(settings, store, mailer, clock):
    notify = NotifyCustomer(mailer, sender="shop@example.com", reservation_ttl=30, remember_s=3600)
    return Runtime(
        settings=settings,
        store=store,
        actions={dispatch.NOTIFY_CUSTOMER: notify},
        clock=clock,
        rng=lambda: 1.0,
    )
