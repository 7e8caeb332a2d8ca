"""What a worker found out about the SMTP server at its start, kept in the store for the intake's /readyz.

One small key, `{p}:mail:status`: "ok", or the reason a send would fail (`smtp_tls_required`: the server
offers no TLS and SMTP_URL carries credentials). Absent until a worker with SMTP_URL has started.
"""

from __future__ import annotations

from core.store import EventStore
from core.store.base import text


def record(store: EventStore, status: str) -> None:
    """Note what the last worker to start found ("ok" or a failure reason)."""
    store.r.set(f"{store.p}:mail:status", status)


def read(store: EventStore) -> str | None:
    """What the last worker to start found; None if no worker has checked."""
    value = store.r.get(f"{store.p}:mail:status")
    return text(value) if value else None
