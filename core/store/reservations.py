"""Reservations for side effects: at most once per business key, across retries, replays and workers.

A key is `pending:<holder>` while one attempt performs the side effect (it lapses if that attempt dies), then
`done:<holder>` for as long as the side effect must not be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from core.store.base import Done, StoreBase

if TYPE_CHECKING:
    from redis.connection import Connection


class Reservations(StoreBase):
    """Side-effect reservations."""

    def reserve(self, key: str, holder: str, ttl: int) -> str:
        """Reserve side effect `key` for `holder`: "acquired", "done" or "busy" (someone else is on it)."""
        return self.script("reserve")(keys=[self.key("once", key)], args=[holder, ttl]).decode()

    def reserve_many(self, claims: Sequence[tuple[str, str]], ttl: int) -> list[str]:
        """reserve() for each (key, holder) of `claims`, in one round trip; each one's verdict, in order."""
        if not claims:
            return []
        verdicts = self.script("reserve_many")(
            keys=[self.key("once", key) for key, _ in claims], args=[ttl, *(holder for _, holder in claims)]
        )
        return [v.decode() for v in verdicts]

    def reserved_for(self, key: str) -> float | None:
        """Seconds until reservation `key` lapses (None if it is not held or never lapses)."""
        ms = self.r.pttl(self.key("once", key))
        return ms / 1000 if ms and ms > 0 else None

    def complete(self, key: str, holder: str, ttl: int, *, patience: float = 0.0) -> None:
        """Record that side effect `key` happened, so nobody repeats it within `ttl`.

        The side effect did happen: if the store does not answer, keep trying for up to `patience`
        seconds (while our reservation still keeps others off it) rather than let a retry repeat it.
        """
        done = Done(key, holder, ttl, patience)
        self._patiently(lambda: self.r.set(self.key("once", key), f"done:{holder}", ex=ttl), [done])

    def release(self, key: str, holder: str) -> None:
        """Give up a reservation we hold, so a retry can take it."""
        self.script("release")(keys=[self.key("once", key)], args=[holder])


class DoneMarks:
    """Done marks written one after another without waiting for each reply (one per side effect).

    write() sends a mark and returns; the reply is read at the next write() or at close(), by when it has
    come (the caller did its next side effect's own network round trip in between). A mark whose reply is
    an error, or that could not be sent, is written again the patient way (Reservations.complete), which
    raises if the store stays away. Once sent, a mark reaches the store even if this process dies.
    """

    def __init__(self, store: Reservations) -> None:
        self.store = store
        self._conn: Connection | None = None
        self._unconfirmed: list[Done] = []

    def write(self, key: str, holder: str, ttl: int, *, patience: float = 0.0) -> None:
        """Mark side effect `key` done for `ttl` seconds; raises if an earlier mark could not be written."""
        self._confirm()
        done = Done(key, holder, ttl, patience)
        try:
            if self._conn is None:
                self._conn = self.store.r.connection_pool.get_connection()
            self._conn.send_command("SET", self.store.key("once", key), f"done:{holder}", "EX", ttl)
        except redis.RedisError:
            self._drop()
            self.store.complete(key, holder, ttl, patience=patience)
            return
        self._unconfirmed.append(done)

    def close(self) -> None:
        """Read the last reply (writing again what failed), and give the connection back."""
        try:
            self._confirm()
        finally:
            if self._conn is not None:
                self.store.r.connection_pool.release(self._conn)
                self._conn = None

    def _confirm(self) -> None:
        if not self._unconfirmed:
            return
        pending, self._unconfirmed = self._unconfirmed, []
        assert self._conn is not None
        try:
            for _ in pending:
                self._conn.read_response()
        except redis.RedisError:
            self._drop()
            for d in pending:
                self.store.complete(d.key, d.holder, d.ttl, patience=d.patience)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
            self.store.r.connection_pool.release(conn)
