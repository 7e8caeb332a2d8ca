"""Builds the pipeline's collaborators from settings: once per worker process, after the fork."""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.settings import Settings
from core.store import EventStore
from workers import dispatch, handlers
from workers.actions import Action
from workers.actions import mirror as mirror_action
from workers.actions.notify import RESERVATION_MARGIN_S, NotifyCustomer, reservation_for
from workers.actions.templates import templates_for
from workers.handlers import HandlerAction, HandlerSpec
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
            templates=templates_for(settings.notify_templates_dir),
        ),
    }
    from workers.actions.forward import Forwarder

    for dest in settings.forward_destinations:
        actions[dispatch.forward_action(dest.name)] = Forwarder(
            dest, timeout=settings.forward_timeout_s, remember_s=settings.notify_remember_s
        )
    if settings.mirror_database_url:
        from core.mirror import Mirror
        from workers.actions.mirror import MirrorAction

        actions[mirror_action.NAME] = MirrorAction(
            Mirror.from_url(settings.mirror_database_url, async_commit=settings.mirror_async_commit), store
        )
    user = load_handlers(settings, builtin=actions)
    for spec in user:
        if spec.name in actions:
            continue  # a built-in handler (the mirror), built above
        # A `once` in progress keeps others off its key for as long as the attempt can possibly last.
        hold = settings.task_time_limit_s + RESERVATION_MARGIN_S
        actions[spec.name] = HandlerAction(spec, hold_s=hold, remember_s=settings.notify_remember_s)
    return Runtime(settings=settings, store=store, actions=actions, handlers=user)


def load_handlers(
    settings: Settings, *, builtin: Mapping[str, Action] | None = None
) -> tuple[HandlerSpec, ...]:
    """The user's handlers (HANDLERS), checked; raises HandlerError saying what is wrong and where."""
    reserved = set(builtin or ()) | {dispatch.NOTIFY_CUSTOMER, mirror_action.NAME}
    reserved |= {dispatch.forward_action(d.name) for d in settings.forward_destinations}
    user = handlers.load(settings.handlers, reserved=reserved, max_timeout=settings.task_time_limit_s)
    # The mirror is a built-in handler: it routes like one, first, when it has a database.
    builtin_specs = (mirror_action.spec(),) if settings.mirror_database_url else ()
    return (*builtin_specs, *user)


def runtime_for(settings: Settings) -> Runtime:
    """This process's Runtime (connections must not be shared across a fork)."""
    pid = os.getpid()
    rt = _cache.get(pid)
    if rt is None:
        _cache.clear()
        rt = _cache[pid] = build_runtime(settings)
    return rt
