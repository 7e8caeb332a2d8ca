"""One read path over both tiers: the events in Redis (the hot tier) and those in the disk archive.

The admin API, the console, the CLI and replay read events through `Events`. An event can be in both tiers
for a moment (archived, and not yet deleted from Redis; or brought back from the archive to be replayed): it
is listed once, and the hot copy wins, since it is the newer. A document from the archive differs only by
its `archived_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.archive import Archive, ArchivedEvent
from core.store import EventStore
from core.store.queries import as_document
from schemas import event_types

Position = tuple[float, str]  # (received time, event id): where a listing is


class Events:
    """Events from Redis and, when there is one, the archive."""

    def __init__(self, store: EventStore, archive: Archive | None = None) -> None:
        self.store = store
        self.archive = archive

    def close(self) -> None:
        """Close the archive's connections (a command that is done)."""
        if self.archive is not None:
            self.archive.engine.dispose()

    def document(self, event_id: str) -> dict[str, Any] | None:
        """The event as the admin API shows it (from Redis if it is there, else from the archive)."""
        doc = self.store.document(event_id)
        if doc is not None or self.archive is None:
            return doc
        found = self.archive.get(event_id)
        return None if found is None else archived_document(found)

    def raw(self, event_id: str) -> bytes | None:
        """The body exactly as received, or None."""
        body = self.store.raw(event_id)
        if body is not None or self.archive is None:
            return body
        found = self.archive.get(event_id)
        return None if found is None else found.raw

    def list_events(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Event documents of both tiers, newest first, each once."""
        hot = self.store.list_events(
            status=status, event_type=event_type, since=since, until=until, limit=limit
        )
        if self.archive is None:
            return hot
        cold = [
            archived_document(e)
            for e in self.archived(
                status=status, event_type=event_type, since=since, until=until, limit=limit
            )
        ]
        # The newest `limit` of each tier hold the newest `limit` of both (hot copies are left out of `cold`).
        merged = sorted(hot + cold, key=lambda d: (d["received_at"], d["id"]), reverse=True)
        return merged[:limit]

    def archived(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: Position | None = None,
        newest_first: bool = True,
        limit: int = 50,
    ) -> list[ArchivedEvent]:
        """Up to `limit` archived events matching, in order, leaving out those that are in Redis too."""
        assert self.archive is not None
        out: list[ArchivedEvent] = []
        while len(out) < limit:
            rows = self.archive.page(
                **archive_filter(status, event_type),
                source=source,
                since=since,
                until=until,
                after=after,
                newest_first=newest_first,
                limit=limit,
            )
            hot = self.hot_ids([r.id for r in rows])
            out += [r for r in rows if r.id not in hot]
            if len(rows) < limit:
                break
            after = (rows[-1].received_at, rows[-1].id)
        return out[:limit]

    def iter_archived(self, *, page: int = 500, **filters: Any) -> Iterator[ArchivedEvent]:
        """Every archived event matching `filters` (as `archived`), oldest first, leaving out hot ones."""
        after: Position | None = None
        while True:
            rows = self.archived(after=after, newest_first=False, limit=page, **filters)
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1].received_at, rows[-1].id)

    def hot_ids(self, ids: list[str]) -> set[str]:
        """Which of `ids` are in Redis."""
        if not ids:
            return set()
        pipe = self.store.r.pipeline(transaction=False)
        for i in ids:
            pipe.exists(self.store.key("ev", i))
        return {i for i, n in zip(ids, pipe.execute(), strict=True) if n}

    def count_matching(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """How many events match in both tiers (an event caught between them for a moment counts twice)."""
        n = self.store.count_matching(status=status, event_type=event_type, since=since, until=until)
        if self.archive is not None:
            n += self.archive.count(**archive_filter(status, event_type), since=since, until=until)
        return n

    def counts(self) -> tuple[dict[str, int], dict[str, int] | None]:
        """Events by status over both tiers, as the listings hold them, and the archive's part of that
        (None without an archive, or while its database does not answer: then the counts are Redis's)."""
        counts = self.store.counts()
        if self.archive is None:
            return counts, None
        from sqlalchemy.exc import DBAPIError

        try:
            cold = self.archive.count_by_status()
        except DBAPIError:
            return counts, None
        for status, n in cold.items():
            counts[status] = counts.get(status, 0) + n
        return counts, cold

    def bring_back(self, event_id: str) -> bool:
        """Make sure the event is in Redis, restoring it from the archive if need be; False if unknown.

        The archive's row is deleted once the event is back in Redis (it is the hot tier's again, and is
        archived anew once it settles), so the two never disagree for long.
        """
        if self.store.r.exists(self.store.key("ev", event_id)):
            return True
        if self.archive is None:
            return False
        found = self.archive.get(event_id)
        if found is None:
            return False
        self.store.restore(found)
        self.archive.delete([event_id])
        return True

    def find(self, query: str) -> str | None:
        """Our id of an archived event with our id or Voucherify's `event.id` `query`."""
        return None if self.archive is None else self.archive.by_voucherify_id(query)


def archive_filter(status: str | None, event_type: str | None) -> dict[str, str | None]:
    """The archive's filter for a status and a type, as the hot tier's indexes read them: `other` matches
    every type Voucherify does not document."""
    if event_type == event_types.OTHER:
        return {"status": status, "event_type": None, "type_label": event_types.OTHER}
    return {"status": status, "event_type": event_type, "type_label": None}


def archived_document(e: ArchivedEvent) -> dict[str, Any]:
    """An archived event as the admin API shows it."""
    doc = as_document(e.fields, e.actions, archived_at=e.archived_at)
    assert doc is not None
    return doc
