"""Retention: terminal events expire by themselves (a TTL set when they settle); this drops their ids from the
index zsets, a bounded slice per reconciler run."""

from __future__ import annotations

import time
from typing import cast

from core.store.base import StoreBase, text


class Retention(StoreBase):
    """Keeping the indexes as small as the events they list."""

    def prune_expired(self, *, now: float | None = None, batch: int = 500, budget: int = 5000) -> int:
        """Drop the index entries of expired events, looking at no more than `budget` entries per call.

        Called by every reconciler run. It walks `{p}:all` oldest first from where the last call stopped,
        and starts over once it has seen everything old enough to have expired, so each call is cheap and
        bounded and every entry is looked at again within a few runs. Returns how many ids were dropped.
        """
        now = time.time() if now is None else now
        # A terminal event expires `retention` after it settled, so never sooner than that after it was
        # received: anything received more recently is surely alive and not worth a look.
        horizon = now - min(self.settings.retention_processed_s, self.settings.retention_failed_s)
        cursor_key = f"{self.p}:prune:cursor"
        cursor = text(self.r.get(cursor_key) or b"-inf")
        dropped = seen = 0
        while seen < budget:
            lo = cursor if cursor == "-inf" else f"({cursor}"
            rows = cast(
                list[tuple[bytes, float]],
                self.r.zrangebyscore(f"{self.p}:all", lo, repr(horizon), 0, batch, withscores=True),
            )
            chunk: list[tuple[str, float]] = [(text(m), float(score)) for m, score in rows]
            pipe = self.r.pipeline(transaction=False)
            for member, _ in chunk:
                pipe.exists(self.key("ev", member))
            gone = [m for (m, _), alive in zip(chunk, pipe.execute(), strict=True) if not alive]
            if gone:
                self.drop_from_indexes(gone, f"{self.p}:all")
            dropped += len(gone)
            seen += len(chunk)
            if len(chunk) < batch:
                cursor = "-inf"  # a full pass: next call starts again from the oldest
                self._forget_empty_types()
                break
            cursor = repr(chunk[-1][1])
        self.r.set(cursor_key, cursor)
        return dropped

    def _forget_empty_types(self) -> None:
        types = [text(t) for t in self.r.smembers(f"{self.p}:types")]
        pipe = self.r.pipeline(transaction=False)
        for t in types:
            pipe.exists(f"{self.p}:ty:{t}")
        empty = [t for t, n in zip(types, pipe.execute(), strict=True) if not n]
        if empty:
            # A concurrent event of such a type re-adds it when it settles: the set heals itself.
            self.r.srem(f"{self.p}:types", *empty)
