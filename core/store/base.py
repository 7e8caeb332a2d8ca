"""What every part of the store shares: the client, key names, the scripts, and the records it returns."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.settings import Settings
from core.states import STATUSES

if TYPE_CHECKING:
    from redis.commands.core import Script

# How long to wait between tries of a write that records side effects which already happened.
COMPLETE_RETRY_INTERVAL_S = 0.5

# What makes the intake answer 503 + Retry-After (Voucherify retries) instead of 500: unreachable, slow,
# full under `noeviction` (OutOfMemoryError), or a replica demoted during a failover (ReadOnlyError).
# BusyLoadingError (a restarted server still reading its AOF) is a ConnectionError already.
StoreUnavailableError = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)


def text(value: bytes | str) -> str:
    """A reply as str (the client answers bytes; redis-py's types say bytes or str)."""
    return value.decode() if isinstance(value, bytes) else value


@cache
def lua(name: str) -> str:
    """The text of script `name` (core/store/lua/<name>.lua), read once per process."""
    return resources.files("core.store").joinpath("lua", f"{name}.lua").read_text()


@dataclass(frozen=True)
class StoredEvent:
    """What a worker needs of a stored event."""

    id: str
    status: str
    raw: bytes
    source: str
    received_at: float
    event_type: str
    attempts: int
    unfinished_starts: int = 0  # starts since a run last finished: each one a worker lost mid-event


@dataclass(frozen=True)
class Done:
    """A side effect that happened: business key `key` is marked done by `holder` for `ttl` seconds.

    Recording it is worth waiting for (`patience` seconds, while the holder's reservation still keeps others
    off the key): if it were lost, the reservation would lapse and a retry would repeat the side effect.
    """

    key: str
    holder: str
    ttl: int
    patience: float = 0.0


def new_event_id(now: float | None = None) -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds, then 12 random."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"evt_{ms:012x}{secrets.token_hex(6)}"


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds and a Z, like Voucherify's."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client that fails fast (one try, short timeouts), so an outage becomes a 503 quickly."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class StoreBase:
    """The client, the settings and the key names every part of the store works with."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.r = client
        self.settings = settings
        self.p = settings.key_prefix
        self._scripts: dict[str, Script] = {}

    def key(self, kind: str, ident: str) -> str:
        """The name of key `{prefix}:{kind}:{ident}`."""
        return f"{self.p}:{kind}:{ident}"

    def script(self, name: str) -> Script:
        """Script `name`, registered with this client on first use (redis-py then runs it by its SHA)."""
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self.r.register_script(lua(name))
        return found

    def ping(self) -> bool:
        """True when the store answers."""
        try:
            return bool(self.r.ping())
        except StoreUnavailableError:
            return False

    def _patiently(self, write: Callable[[], Any], done: Sequence[Done]) -> Any:
        """`write()`; with side effects to record, retried for up to their patience if the store is away.

        Retrying is safe: every write that records side effects is idempotent except an attempt's metrics
        count, which a reply lost after the write took effect can count twice.
        """
        deadline = time.monotonic() + max((d.patience for d in done), default=0.0)
        while True:
            try:
                return write()
            except StoreUnavailableError:
                if time.monotonic() + COMPLETE_RETRY_INTERVAL_S > deadline:
                    raise
                time.sleep(COMPLETE_RETRY_INTERVAL_S)

    def drop_from_indexes(self, ids: Sequence[str], index: str) -> None:
        """Drop the ids of expired events from every index (`index` first among them)."""
        # The type of an expired event is gone with it, so its id is dropped from every type index.
        types = [text(t) for t in self.r.smembers(f"{self.p}:types")]
        pipe = self.r.pipeline(transaction=False)
        for key in {
            index,
            f"{self.p}:all",
            f"{self.p}:outbox",
            *(f"{self.p}:st:{s}" for s in STATUSES),
            *(f"{self.p}:ty:{t}" for t in types),
        }:
            pipe.zrem(key, *ids)
        pipe.execute()
