"""The hot tier's side of the archive: find settled events due to leave Redis, read them whole, delete them
once archived (only if unchanged meanwhile), bring one back for a replay, and, without an archive, compress
settled bodies in place. The archive itself is core/archive; the pass that moves events workers/archiver.py.

Compacted bodies: `{p}:raw:<id>` holds the compressed body and the document's `raw_codec` names the codec.
Only settled events are compacted, and a replay expands the body again before a worker can start it
(`expand_raw`), so workers only ever read bodies as received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import cast

from core.archive import ArchivedEvent, codec
from core.states import TERMINAL, Status
from core.store.base import StoreBase, text

# Terminal statuses in a fixed order (the archiver walks their indexes one after the other).
_TERMINAL = tuple(sorted(str(s) for s in TERMINAL))
# How many of each terminal index's oldest entries the lag gauge looks at.
_LAG_SAMPLE = 20


class Archiving(StoreBase):
    """Moving settled events out of Redis."""

    def due_for_archive(
        self, *, now: float | None = None, after_s: float, limit: int = 200, budget: int = 2000
    ) -> list[ArchivedEvent]:
        """Up to `limit` settled events whose last change is more than `after_s` old, read whole.

        Walks each terminal status index oldest first (scored by received time: an event settled `after_s`
        ago was received before that), looking at no more than `budget` entries in all.
        """
        now = time.time() if now is None else now
        horizon = now - after_s
        out: list[ArchivedEvent] = []
        seen = 0
        for status in _TERMINAL:
            offset = 0
            while len(out) < limit and seen < budget:
                page = min(limit - len(out), budget - seen, 500)
                ids = [
                    text(m)
                    for m in cast(
                        list[bytes],
                        self.r.zrangebyscore(f"{self.p}:st:{status}", "-inf", repr(horizon), offset, page),
                    )
                ]
                if not ids:
                    break
                seen += len(ids)
                offset += len(ids)
                got = self.script("collect")(args=[self.p, status, repr(horizon), *ids])
                for k in range(0, len(got), 4):
                    doc, body, name = bytes(got[k + 1]), bytes(got[k + 2]), text(got[k + 3])
                    parsed = json.loads(doc)
                    if name:
                        body = codec.decompress(body, name)
                    out.append(
                        ArchivedEvent(
                            id=text(got[k]),
                            fields=parsed["fields"],
                            actions=parsed["actions"],
                            raw=body,
                            document=doc,
                        )
                    )
                if len(ids) < page:
                    break
        return out

    def forget_archived(self, events: Sequence[ArchivedEvent]) -> list[str]:
        """Delete archived events from Redis, each only if unchanged since it was read (lua/forget.lua)."""
        if not events:
            return []
        args: list[str] = [self.p]
        for e in events:
            f = e.fields
            args += [e.id, f.get("status", ""), f.get("updated_at", ""), f.get("duplicates") or "0"]
        return [text(i) for i in self.script("forget")(args=args)]

    def take_late_duplicates(self) -> dict[str, int]:
        """Duplicate deliveries counted while their event was not in Redis, taken out of Redis at once (so
        two passes never count one twice): those whose event is in Redis again are added to its document
        there; the others are returned, event id -> count, for the archive's rows (lua/take_duplicates.lua).
        """
        got = self.script("take_duplicates")(args=[self.p])
        return {text(got[k]): int(got[k + 1]) for k in range(0, len(got), 2)}

    def put_back_late_duplicates(self, counts: Mapping[str, int]) -> None:
        """Return counts `take_late_duplicates` gave that could not be written (the archive failed)."""
        if counts:
            pipe = self.r.pipeline(transaction=False)
            for event_id, n in counts.items():
                pipe.hincrby(f"{self.p}:dup:late", event_id, n)
            pipe.execute()

    def restore(self, event: ArchivedEvent) -> bool:
        """Put an archived event back into Redis as it was (lua/restore.lua); False if it is there already."""
        keep = (
            self.settings.retention_processed_s
            if event.status in (Status.PROCESSED, Status.IGNORED)
            else self.settings.retention_failed_s
        )
        args: list[str | bytes | int] = [self.p, event.id, event.raw, keep, len(event.actions)]
        for name, state in event.actions.items():
            args += [name, state]
        for k, v in event.fields.items():
            args += [k, v]
        return bool(self.script("restore")(args=args))

    def compact(self, *, now: float | None = None, after_s: float, limit: int = 500) -> int:
        """Without an archive: compress the bodies of events settled more than `after_s` ago, up to `limit`
        looked at per status. How many were compacted.

        Each terminal index is walked oldest first from a cursor ({p}:compact:<status>) that stops at the
        first event not yet due (it was received long ago but settled recently), so nothing is passed over
        and nothing is read twice once done.
        """
        now = time.time() if now is None else now
        horizon = now - after_s
        done = 0
        for status in _TERMINAL:
            cursor_key = f"{self.p}:compact:{status}"
            cursor = text(self.r.get(cursor_key) or b"-inf")
            rows = cast(
                list[tuple[bytes, float]],
                self.r.zrangebyscore(
                    f"{self.p}:st:{status}", cursor, repr(horizon), 0, limit, withscores=True
                ),
            )
            if not rows:
                continue
            ids = [text(m) for m, _ in rows]
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.key("ev", i), "status", "updated_at", "raw_codec")
                pipe.get(self.key("raw", i))
            res = pipe.execute()
            args: list[str | bytes] = [self.p, codec.DEFAULT]
            last = cursor
            for k, (i, (_, score)) in enumerate(zip(ids, rows, strict=True)):
                (st, updated, name), body = res[2 * k], res[2 * k + 1]
                if st is not None and body is not None and not name:
                    if text(st) == status and float(updated or 0) > horizon:
                        break  # not due yet: the cursor waits here
                    if text(st) == status:
                        args += [i, status, text(updated), codec.compress(bytes(body))]
                last = repr(score)
            if len(args) > 2:
                done += int(self.script("compact")(args=args))
            self.r.set(cursor_key, last)
        return done

    def expand_raw(self, event_id: str) -> bool:
        """Store a compacted body as received again (before the event runs again); False if it was not."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self.key("ev", event_id), "raw_codec")
        pipe.get(self.key("raw", event_id))
        name, body = pipe.execute()
        if not name or body is None:
            return False
        plain = codec.decompress(body, text(name))
        keys = [self.key("ev", event_id), self.key("raw", event_id)]
        return bool(self.script("expand")(keys=keys, args=[text(name), plain]))

    def backlog(self) -> int:
        """How many events wait for a worker (status queued)."""
        return int(self.r.zcard(f"{self.p}:st:{Status.QUEUED.value}"))

    def archive_lag(self, *, now: float | None = None, after_s: float) -> float:
        """How long the oldest settled event due for the archive has been due (0: none is).

        Looks at the oldest few entries of each terminal index (by received time), so an event received long
        ago that settled only recently does not hide an older due one behind it in most cases; exact when
        events settle in the order they arrive.
        """
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        for status in _TERMINAL:
            pipe.zrange(f"{self.p}:st:{status}", 0, _LAG_SAMPLE - 1)
        ids = [text(i) for row in pipe.execute() for i in row]
        if not ids:
            return 0.0
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hget(self.key("ev", i), "updated_at")
        settled = [float(u) for u in pipe.execute() if u is not None]
        return max(0.0, now - after_s - min(settled)) if settled else 0.0
