"""Your own code on any event type: `@on("voucher.updated")` functions, durable like the built-in actions.

    from workers.handlers import on, Event, Skip, TransientError, PermanentError

    @on("voucher.updated", "voucher.enabled")      # exact types, or globs like "voucher.*"
    def sync_voucher(event: Event) -> str | None:
        crm.upsert(event.data.voucher.code, active=event.data.voucher.active)
        return "synced"                           # optional detail for the attempt history

Name the modules in `HANDLERS` (comma-separated, importable from the worker's PYTHONPATH); the worker imports
them at start and refuses to start (exit code 2) when one does not import, registers a type pattern that
matches no type Voucherify documents, or reuses an action name. Each handler is an action named
`handler:<module>.<function>` (or `name=`) with its own state, retries with backoff, dead letter, replay and
metrics. Returning ends it `succeeded` (a returned string is the detail in its history), `Skip("why")` ends it
`skipped`, `TransientError` or any unexpected exception retries it, `PermanentError` ends it `dead`.
Built-in actions run first, then handlers in registration order, then forwards. docs/handlers.md has more.
"""

from __future__ import annotations

import importlib
import json
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any, TypeVar

from core.states import ActionStatus
from schemas import ParsedEvent, event_types
from workers.actions import ActionContext, ActionLimits, ActionResult, once
from workers.errors import PermanentError, TransientError

__all__ = [
    "Event",
    "HandlerError",
    "HandlerSpec",
    "PermanentError",
    "Skip",
    "TransientError",
    "load",
    "on",
]

PREFIX = "handler:"
_MARK = "__voucherify_handler__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Skip:
    """Return this from a handler when there is nothing to do: the action ends `skipped`, not an error."""

    reason: str = ""


@dataclass(frozen=True)
class Source:
    """Where the delivery came from: `source.id` and `source.object` ("webhook" or "distribution")."""

    id: str | None
    object: str | None


class Event:
    """What a handler gets: one validated event, read-only, and `once` for its side effects."""

    __slots__ = ("__dict__", "_ctx", "_once")

    def __init__(self, ctx: ActionContext, once_: Callable[[str, Callable[[], Any]], bool]) -> None:
        self._ctx = ctx
        self._once = once_

    @property
    def id(self) -> str:
        """Our event id (`evt_...`): what the intake answered and the admin API shows."""
        return self._ctx.event_id

    @property
    def type(self) -> str:
        """The event type routed on (`event.type`), e.g. `voucher.updated`."""
        return self._ctx.event_type

    @property
    def parsed(self) -> ParsedEvent | None:
        return self._ctx.parsed

    @property
    def voucherify_id(self) -> str | None:
        """Voucherify's `event.id`: the same in every delivery of this event, from any endpoint."""
        return self._ctx.parsed.envelope.event.id if self._ctx.parsed else None

    @property
    def created_at(self) -> datetime | None:
        """When the event happened (`event.created_at`, an aware datetime)."""
        return self._ctx.parsed.envelope.event.created_at if self._ctx.parsed else None

    @property
    def source(self) -> Source:
        """The delivery's `source`: its id and object."""
        src = self._ctx.parsed.envelope.source if self._ctx.parsed else None
        return Source(getattr(src, "id", None), getattr(src, "object", None))

    @property
    def data(self) -> Any:
        """The validated, typed `data` (attribute access), or None for a type we have no schema for."""
        return self._ctx.parsed.data if self._ctx.parsed else None

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The whole body as parsed JSON (a copy: changing it changes nothing stored)."""
        doc = json.loads(self._ctx.raw)
        return doc if isinstance(doc, dict) else {}

    def once(self, key: str, fn: Callable[[], Any]) -> bool:
        """Run `fn` at most once per `key` across retries, replays, duplicates and workers.

        Returns True when `fn` ran now, False when it had already run (for this handler and key). While one
        attempt runs it, another is told to retry later; if `fn` raises, the key is free again.
        """
        return self._once(key, fn)

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, type={self.type!r}, voucherify_id={self.voucherify_id!r})"


Handler = Callable[[Event], "str | Skip | None"]


@dataclass(frozen=True)
class HandlerSpec:
    """One registered handler: what `on` recorded."""

    name: str
    func: Handler
    patterns: tuple[str, ...]
    max_attempts: int | None = None
    max_age: float | None = None
    timeout: float | None = None
    undocumented: bool = False  # patterns may name types Voucherify has not documented yet
    # Prefix of its `once` keys in the store. Built-in handlers keep the keys they always had.
    once_prefix: str = ""
    where: str = field(default="", compare=False)  # "module.py:line", for error messages

    def wants(self, event_type: str) -> bool:
        """True if one of its patterns matches `event_type`."""
        return any(fnmatchcase(event_type, p) for p in self.patterns)


def on(
    *patterns: str,
    name: str | None = None,
    max_attempts: int | None = None,
    max_age: float | None = None,
    timeout: float | None = None,
    undocumented: bool = False,
) -> Callable[[F], F]:
    """Register the decorated function as a handler for event types matching `patterns` (exact or globs).

    `max_attempts` and `max_age` (seconds) override ACTION_MAX_ATTEMPTS and ACTION_MAX_AGE_SECONDS for it;
    `timeout` (seconds) bounds one attempt (a transient failure, retried); `undocumented=True` allows
    patterns that match no type Voucherify documents yet.
    """
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise TypeError("on() needs at least one event type or pattern, e.g. @on('voucher.updated')")

    def register(func: F) -> F:
        code = getattr(func, "__code__", None)
        where = f"{getattr(code, 'co_filename', '?')}:{getattr(code, 'co_firstlineno', '?')}"
        spec = HandlerSpec(
            name=name or f"{PREFIX}{func.__module__}.{func.__qualname__}",
            func=func,
            patterns=tuple(patterns),
            max_attempts=max_attempts,
            max_age=max_age,
            timeout=timeout,
            undocumented=undocumented,
            where=where,
        )
        setattr(func, _MARK, spec)
        return func

    return register


class HandlerError(Exception):
    """A handler module cannot be used: the worker refuses to start and says why."""


def load(
    modules: Iterable[str], *, reserved: Iterable[str] = (), max_timeout: float | None = None
) -> tuple[HandlerSpec, ...]:
    """Import each module and collect its handlers, in module order then definition order.

    Raises HandlerError naming the module, the line and the reason when a module does not import or
    registers nothing, a pattern matches no documented type (without `undocumented=True`), two actions share
    a name (`reserved`: the built-in actions' names), or a timeout is not below `max_timeout` (the task's).
    """
    specs: list[HandlerSpec] = []
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            frame = _culprit(module_name, traceback.extract_tb(exc.__traceback__))
            where = f" ({frame.filename}:{frame.lineno})" if frame else ""
            raise HandlerError(
                f"HANDLERS: module {module_name!r} failed to import{where}: {type(exc).__name__}: {exc}"
            ) from exc
        found = [v for v in vars(module).values() if isinstance(getattr(v, _MARK, None), HandlerSpec)]
        if not found:
            raise HandlerError(f"HANDLERS: module {module_name!r} registers no handler (no @on function)")
        specs += [getattr(v, _MARK) for v in found]
    seen: dict[str, HandlerSpec] = {}
    taken = set(reserved)
    for spec in specs:
        if spec.name in taken:
            raise HandlerError(f"HANDLERS: {spec.name!r} at {spec.where} is the name of a built-in action")
        if spec.timeout is not None and (spec.timeout <= 0 or (max_timeout and spec.timeout >= max_timeout)):
            raise HandlerError(
                f"HANDLERS: {spec.name} at {spec.where}: timeout={spec.timeout:g} must be above 0 and below "
                f"the task time limit ({max_timeout:g} s, TASK_TIME_LIMIT_SECONDS)"
            )
        if spec.name in seen:
            raise HandlerError(
                f"HANDLERS: two actions are named {spec.name!r} ({seen[spec.name].where} and {spec.where})"
            )
        seen[spec.name] = spec
        if spec.undocumented:
            continue
        for pattern in spec.patterns:
            if not any(fnmatchcase(t, pattern) for t in event_types.DOCUMENTED):
                raise HandlerError(
                    f"HANDLERS: {spec.name} at {spec.where}: {pattern!r} matches no event type Voucherify "
                    "documents (docs/event-types.md); fix the typo, or pass undocumented=True to on()"
                )
    return tuple(specs)


def _culprit(module_name: str, frames: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The frame to show for a module that failed to import: the line in the module itself, else the
    innermost line in a real file (not importlib's frozen machinery)."""
    tail = module_name.replace(".", "/")
    mine = [f for f in frames if f.filename.endswith((f"{tail}.py", f"{tail}/__init__.py"))]
    real = [f for f in frames if not f.filename.startswith("<")]
    found = mine or real
    return found[-1] if found else None


class HandlerAction:
    """A handler as an action: the pipeline runs it like any other (state, retries, history, metrics)."""

    def __init__(self, spec: HandlerSpec, *, hold_s: float, remember_s: int) -> None:
        self.spec = spec
        self.limits = ActionLimits(max_attempts=spec.max_attempts, max_age_s=spec.max_age)
        self.hold_s = hold_s  # how long a `once` in progress (or a crashed attempt) keeps others off its key
        self.remember_s = remember_s  # how long a `once` key is remembered as done
        self.prefix = spec.once_prefix or spec.name

    def __call__(self, ctx: ActionContext) -> ActionResult:
        def run_once(key: str, fn: Callable[[], Any]) -> bool:
            return once(
                ctx,
                f"{self.prefix}:{key}",
                fn,
                what=f"{self.spec.name} for {key!r}",
                hold_s=self.hold_s,
                remember_s=self.remember_s,
            )

        with _deadline(self.spec.timeout):
            result = self.spec.func(Event(ctx, run_once))
        if isinstance(result, Skip):
            return ActionResult(ActionStatus.SKIPPED, result.reason or None)
        if result is not None and not isinstance(result, str):
            raise PermanentError(
                f"{self.spec.name} returned {type(result).__name__}; return None, a string or Skip(...)",
                reason="bad_return",
            )
        return ActionResult(ActionStatus.SUCCEEDED, result)


class HandlerTimeoutError(TransientError):
    """An attempt ran past its handler's `timeout`."""

    reason = "timeout"


class _deadline:  # noqa: N801 - used as a context manager, reads as one
    """Interrupt the block after `seconds` with HandlerTimeoutError (SIGALRM, in the main thread only).

    Celery's prefork pool runs each task in its child's main thread, where this applies; elsewhere (a thread
    pool) the task's own time limit is the bound.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.armed = False

    def __enter__(self) -> None:
        if not self.seconds or threading.current_thread() is not threading.main_thread():
            return
        seconds = self.seconds

        def expired(signum: int, frame: Any) -> None:
            raise HandlerTimeoutError(f"handler ran longer than its timeout of {seconds:g} s")

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        self.armed = True

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def routes_for(event_type: str, specs: Iterable[HandlerSpec]) -> tuple[str, ...]:
    """The names of the handlers that run for `event_type`, in registration order."""
    return tuple(s.name for s in specs if s.wants(event_type))


def by_name(specs: Iterable[HandlerSpec]) -> Mapping[str, HandlerSpec]:
    """The handlers by action name."""
    return {s.name: s for s in specs}
