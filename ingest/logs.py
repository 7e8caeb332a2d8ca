"""Structured JSON logs for intake and workers.

Context goes in `extra=` (event_id, event_type, task_id, action, ...), and each line is one JSON object.
Secrets are never passed to a logger; customer emails go through `mask_email` before they are.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})")


def mask_email(value: str | None) -> str | None:
    """`alex.doe@doe.alex.io` -> `a***@d***.io`: enough to tell customers apart in a log, not to mail them."""
    if not value:
        return value
    return _EMAIL.sub(r"\1***@\2***\3", value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_email(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = mask_email(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = mask_email(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON (idempotent)."""
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h.formatter, JsonFormatter):
            root.setLevel(level)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
