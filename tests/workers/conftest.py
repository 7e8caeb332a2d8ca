from __future__ import annotations

import pytest

from workers import dispatch
from workers.actions import ActionResult
from workers.actions.notify import NotifyCustomer
from workers.errors import PermanentError, TransientError
from workers.pipeline import Runtime


class RecordingMailer:
    """A mailer that keeps what it was asked to send, or fails the way it is told to."""

    def __init__(self):
        self.sent = []
        self.fail_with = None

    def send(self, message):
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


class ScriptedAction:
    """An action that plays back a script of outcomes: an ActionResult, or an exception to raise."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, ctx):
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


OK = ActionResult("succeeded")
FLAKY = TransientError("downstream timed out", reason="timeout")
BROKEN = PermanentError("downstream said 400", reason="http_400")


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
