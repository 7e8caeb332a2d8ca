"""Reservations for side effects: at most once per business key, across retries, replays and workers.

A key is `pending:<holder>` while one attempt performs the side effect (it lapses if that attempt dies), then
`done:<holder>` for as long as the side effect must not be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.store.base import Done, StoreBase


class Reservations(StoreBase):
    """Side-effect reservations."""

    def reserve(self, key: str, holder: str, ttl: int) -> str:
        """Reserve side effect `key` for `holder`: "acquired", "done" or "busy" (someone else is on it)."""
        return self.reserve_many([(key, holder)], ttl)[0]

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
