"""Builds the pipeline's collaborators from settings: once per worker process, after the fork."""

from __future__ import annotations

import os

from core.settings import Settings
from core.store import EventStore
from workers import dispatch
from workers.actions import Action
from workers.actions.notify import NotifyCustomer, reservation_for
from workers.mail import LogMailer, Mailer, SmtpMailer
from workers.pipeline import Runtime

_cache: dict[int, Runtime] = {}


def build_runtime(
    settings: Settings, *, store: EventStore | None = None, mailer: Mailer | None = None
) -> Runtime:
    """A Runtime with the real implementations picked by configuration."""
    store = store or EventStore.from_settings(settings)
    if mailer is None:
        mailer = SmtpMailer.from_settings(settings) if settings.smtp_url else LogMailer()
    actions: dict[str, Action] = {
        dispatch.NOTIFY_CUSTOMER: NotifyCustomer(
            mailer,
            sender=settings.notify_from,
            reservation_ttl=reservation_for(settings.smtp_deadline_s),
            remember_s=settings.notify_remember_s,
        ),
    }
    from workers.actions.forward import Forwarder

    for dest in settings.forward_destinations:
        actions[dispatch.forward_action(dest.name)] = Forwarder(
            dest, timeout=settings.forward_timeout_s, remember_s=settings.notify_remember_s
        )
    return Runtime(settings=settings, store=store, actions=actions)


def runtime_for(settings: Settings) -> Runtime:
    """This process's Runtime (connections must not be shared across a fork)."""
    pid = os.getpid()
    rt = _cache.get(pid)
    if rt is None:
        _cache.clear()
        rt = _cache[pid] = build_runtime(settings)
    return rt
