"""mirror: keep the mirror's tables current from every event that carries a voucher, campaign, customer or
publication (core/mirror). Written on the public handler API (workers/handlers.py), like notify_customer.

Ordering is the database's job (a compare-and-set upsert per row, core/mirror/apply.py), so this action
needs no `once`: applying an event twice, or two events at once in two workers, gives the same rows. A
snapshot older than its row is not an error: the action ends `skipped` with "stale: row is at <version>",
and each stale snapshot is counted by table (voucherify_ingest_mirror_stale_total).

`run_batch` is the micro-batch hook: a worker processing a batch calls it once with every context due for
the mirror, and the batch's events are written in one transaction (docs/mirror.md, "Writes").
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from core.mirror import Mirror, Outcome
from core.mirror.snapshots import PATTERNS
from core.states import ActionStatus
from core.store import EventStore
from workers.actions import ActionContext, ActionResult
from workers.errors import TransientError
from workers.handlers import Event, Handler, HandlerAction, HandlerSpec, Skip

log = logging.getLogger("workers.actions.mirror")

NAME = "mirror"

# Which table an event type is mainly about, for the detail of a stale event.
_FAMILY = {
    "voucher": "vouchers",
    "campaign": "campaigns",
    "customer": "customers",
    "publication": "publications",
}


def spec(func: Handler | None = None) -> HandlerSpec:
    """The mirror's routing entry: what `voucherify-ingest routes` lists and the dispatch table uses."""
    return HandlerSpec(
        name=NAME,
        func=func or _unbound,
        # Every family whose data carries one of the mirrored objects (core/mirror/snapshots.py says which).
        patterns=PATTERNS,
        where=f"{__file__}:MirrorAction",
    )


def _unbound(event: Event) -> None:
    raise RuntimeError("the mirror action runs only in a worker with MIRROR_DATABASE_URL")


class MirrorAction(HandlerAction):
    """The mirror action: a built-in handler on the public API."""

    def __init__(self, mirror: Mirror, store: EventStore) -> None:
        # No `once` keys: hold and memory are unused.
        super().__init__(spec(self.handle), hold_s=0, remember_s=1)
        self.mirror = mirror
        self.store = store
        self._pruned_at = 0.0

    def prune_history(self, keep_s: int, *, every_s: float = 3600.0) -> int:
        """Delete mirror_history rows older than `keep_s`, at most once per `every_s` in this process."""
        now = time.time()
        if now - self._pruned_at < every_s:
            return 0
        self._pruned_at = now
        try:
            return self.mirror.prune_history(datetime.fromtimestamp(now - keep_s, UTC))
        except DBAPIError as exc:
            log.warning(
                "mirror history not pruned", extra={"reason": "database", "error": type(exc.orig).__name__}
            )
            return 0

    def handle(self, event: Event) -> str | Skip:
        """Apply the event's objects to the mirror; stale ones end the action skipped."""
        try:
            _, outcomes = self.mirror.apply_event(event.payload, event.id)
        except DBAPIError as exc:
            raise _error(exc) from exc
        return self._verdict(event.type, outcomes)

    def run_batch(self, ctxs: Sequence[ActionContext]) -> list[ActionResult | Exception]:
        """The batch hook (a worker's micro-batch): every event's objects in one transaction.

        results[i] is what `self(ctxs[i])` would give: succeeded or skipped with the same detail, or the
        TransientError of an event whose write failed. A failed batch is applied again event by event
        (Mirror.apply_events), so only the event at fault, say a voucher whose code is still taken, retries.
        """
        events = [(_payload(ctx.raw), ctx.event_id) for ctx in ctxs]
        results: list[ActionResult | Exception] = []
        for ctx, result in zip(ctxs, self.mirror.apply_events(events), strict=True):
            if isinstance(result, DBAPIError):
                error = _error(result)
                error.__cause__ = result
                results.append(error)
                continue
            verdict = self._verdict(ctx.event_type, result[1])
            if isinstance(verdict, Skip):
                results.append(ActionResult(ActionStatus.SKIPPED, verdict.reason or None))
            else:
                results.append(ActionResult(ActionStatus.SUCCEEDED, verdict))
        return results

    def _verdict(self, event_type: str, outcomes: list[Outcome]) -> str | Skip:
        """The action's detail for one event's outcomes; stale snapshots are counted by table."""
        recorded = [o for o in outcomes if o.recorded]
        stale = [o for o in recorded if not o.applied]
        for o in stale:
            self.store.count_mirror_stale(o.table)
        applied = [o for o in recorded if o.applied]
        if applied:
            detail = "applied: " + ", ".join(f"{o.table} {o.key}" for o in applied)
            if stale:
                detail += "; stale: " + ", ".join(f"{o.table} {o.key}" for o in stale)
            return detail
        if stale:
            main = _main(event_type, stale)
            if len(stale) == 1:
                return Skip(f"stale: row is at {main.row_version}")
            return Skip(
                f"stale: row is at {main.row_version} ({main.table} {main.key}; {len(stale)} rows stale)"
            )
        if outcomes:
            return Skip("nothing new: the rows exist and these shapes carry no version")
        return Skip("no voucher, campaign, customer or publication in this event")


def _payload(raw: bytes) -> dict[str, Any]:
    """The body as JSON (as Event.payload reads it)."""
    doc = json.loads(raw)
    return doc if isinstance(doc, dict) else {}


def _error(exc: DBAPIError) -> TransientError:
    """A database error as the retry it calls for."""
    if isinstance(exc, IntegrityError):
        # A live voucher still holds this code: the older voucher's deletion has not arrived yet.
        return TransientError(f"mirror: {exc.orig}", reason="code_taken")
    return TransientError(f"mirror database: {type(exc.orig).__name__}", reason="database")


def _main(event_type: str, stale: list[Outcome]) -> Outcome:
    table = _FAMILY.get(event_type.split(".", 1)[0])
    return next((o for o in stale if o.table == table), stale[0])
