"""Structured JSON logs for intake and workers.

Context goes in `extra=` (event_id, event_type, task_id, action, ...), or is bound for a stretch of work
with `log_context(...)` (contextvars: per thread, per asyncio task); each line is one JSON object with both.
Secrets are never passed to a logger, and the formatter blanks any configured secret that slips into a line
anyway (an exception message quoting a URL, say); customer emails are masked wherever they appear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from core.settings import Settings

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})")
_REDACTED = "[redacted]"
# Shorter values are not worth hunting for, and would blank innocent words ("on", "1").
_MIN_SECRET_LEN = 6

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("voucherify_log_context", default=None)


def mask_email(value: str | None) -> str | None:
    """`alex.doe@doe.alex.io` -> `a***@d***.io`: enough to tell customers apart in a log, not to mail them."""
    if not value:
        return value
    return _EMAIL.sub(r"\1***@\2***\3", value)


def bind(**fields: Any) -> Any:
    """Add fields to every log line of the current context until `unbind(token)`; returns the token."""
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: Any) -> None:
    """Undo a `bind`."""
    _context.reset(token)


def clear() -> None:
    """Forget everything bound in the current context (a worker process between two tasks)."""
    _context.set(None)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """`with log_context(event_id=...):` every line logged inside carries these fields."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def bound() -> dict[str, Any]:
    """What is bound right now (for tests and for handing context to another thread)."""
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound context, then every `extra` field."""

    def __init__(self, redact: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is blanked whole.
        wanted = {s for s in redact if s and len(s) >= _MIN_SECRET_LEN}
        self.redact = tuple(sorted(wanted, key=len, reverse=True))
        self._secrets = re.compile("|".join(re.escape(s) for s in self.redact)) if self.redact else None

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(self.fields(out), default=str)

    def fields(self, out: dict[str, Any]) -> Any:
        """The line's fields with emails masked and secrets blanked."""
        return self._clean(out)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            # Check first: most strings hold no address, and the regex is not free.
            masked = mask_email(value) or value if "@" in value else value
            return self._secrets.sub(_REDACTED, masked) if self._secrets else masked
        if isinstance(value, Mapping):
            return {str(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self._clean(str(value))


class TextFormatter(JsonFormatter):
    """Readable lines for a terminal, in the spirit of `stripe listen`: one per delivery, one per settled
    event, one per action outcome; anything else as `time level logger: message key=value ...`.

    The same fields as the JSON lines, masked and redacted the same way (it reuses JsonFormatter's cleaning).
    """

    def format(self, record: logging.LogRecord) -> str:
        f = self.fields(json.loads(super().format(record)))
        at = time.strftime("%H:%M:%S", time.localtime(record.created))
        msg, event_id = f.get("msg", ""), f.get("event_id", "")
        if msg == "webhook accepted":
            took = f"({f.get('size', 0)} B, {f.get('ms', 0)} ms)"
            where = f"  source {f['source']}" if f.get("source") else ""
            return f"{at}  --> delivery  {event_id}  {f.get('status', '')}  {took}{where}"
        if record.name == "workers.pipeline" and msg.startswith("event ") and "status" in f:
            outcomes = "  ".join(f"{name}={state}" for name, state in (f.get("actions") or {}).items())
            reason = f"  ({f['reason']})" if f.get("reason") and f["status"] != "processed" else ""
            return (
                f"{at}  <-- {f.get('event_type') or '(no type)'}  {event_id}  {f['status'].upper()}"
                f"{reason}{'  ' + outcomes if outcomes else ''}"
            )
        if record.name == "workers.pipeline" and msg.startswith("action ") and f.get("action"):
            detail = f.get("error") or f.get("detail") or f.get("reason") or ""
            return f"{at}      {f['action']}  {event_id}  {msg.removeprefix('action ')}  {detail}".rstrip()
        skip = {"ts", "level", "logger", "msg", "exc", "stack", "task_id", "task"}
        rest = " ".join(f"{k}={_short(v)}" for k, v in f.items() if k not in skip)
        text = f"{at}  {f['level'].upper():7} {f['logger']}: {msg}{'  ' + rest if rest else ''}"
        return text + ("\n" + f["exc"] if f.get("exc") else "")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class _Chatter(logging.Filter):
    """On a terminal, Celery's per-task and per-schedule INFO lines drown the ones above: kept at DEBUG."""

    NOISY = ("celery.app.trace", "celery.worker.strategy", "celery.beat")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not record.name.startswith(self.NOISY)


def text_wanted(fmt: str = "auto") -> bool:
    """Whether to write readable lines: LOG_FORMAT=text, or auto and stderr is a terminal."""
    # The file descriptor, not sys.stderr: Celery swaps sys.stderr for a logging proxy that is never a tty.
    return fmt == "text" or (fmt == "auto" and os.isatty(2))


def formatter(fmt: str = "auto", redact: Iterable[str] = ()) -> JsonFormatter:
    """The formatter LOG_FORMAT asks for (see text_wanted)."""
    return TextFormatter(redact) if text_wanted(fmt) else JsonFormatter(redact)


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret value in the settings: what the formatter must never let through."""
    values = [*settings.webhook_secrets, settings.admin_token]
    values += [d.secret for d in settings.forward_destinations]
    for url in (settings.redis_url, settings.broker_url, settings.smtp_url, settings.mirror_database_url):
        password = urlsplit(url).password if url else None
        values.append(unquote(password) if password else None)
        values.append(password)
    return tuple(v for v in values if v)


def configure_logging(level: str = "INFO", *, redact: Iterable[str] = (), fmt: str = "auto") -> None:
    """Send every logger's records to stderr as JSON (readable text on a terminal: see text_wanted),
    blanking the `redact` values (idempotent).

    Python warnings become log records too, so a library's warning is a line like any other.
    """
    root = logging.getLogger()
    redact = tuple(redact)
    handler = next((h for h in root.handlers if isinstance(h.formatter, JsonFormatter)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        root.handlers[:] = [handler]
    # A second app in the same process (tests) may know more secrets: the formatter covers them all.
    known = handler.formatter.redact if isinstance(handler.formatter, JsonFormatter) else ()
    handler.setFormatter(formatter(fmt, (*known, *redact)))
    handler.filters[:] = [_Chatter()] if text_wanted(fmt) else []
    root.setLevel(level)
    logging.captureWarnings(True)


def warn_if_unsigned(settings: Settings, component: str) -> None:
    """Log a warning when deliveries are accepted unsigned: said at every start, never only once."""
    if not settings.webhook_secrets:
        logging.getLogger("ingest.security").warning(
            "VOUCHERIFY_ALLOW_UNSIGNED=1 and no VOUCHERIFY_WEBHOOK_SECRETS: anyone who can reach the intake "
            "can submit events; for development only",
            extra={"component": component, "reason": "unsigned_mode"},
        )
