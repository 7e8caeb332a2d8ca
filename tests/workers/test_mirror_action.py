"""The mirror action on real contexts (a real store on Valkey, a real SQLite and PostgreSQL): one event at
a time, and the micro-batch hook `run_batch`, which must give each context what `action(ctx)` gives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.mirror import Mirror
from core.states import ActionStatus
from core.store import EventStore
from ingest.dedup import dedup_key
from tests.mirror_events import clear_mirror, mirror_state, voucher_event
from workers import pipeline
from workers.actions import ActionContext, ActionResult
from workers.actions.mirror import MirrorAction
from workers.errors import TransientError


@pytest.fixture
def action(mirror_url: str, store: EventStore) -> Iterator[MirrorAction]:
    mirror = Mirror.from_url(mirror_url)
    yield MirrorAction(mirror, store)
    mirror.engine.dispose()


def stored(store: EventStore, doc: dict[str, Any]) -> ActionContext:
    """Store a delivery as the intake does; the context the action gets for it."""
    raw = json.dumps(doc).encode()
    event_id, _ = store.accept(raw, dedup_key=dedup_key(raw, ""), headers={}, secret="s", source="")
    return ActionContext(
        event_id=event_id,
        attempt_id=f"{event_id}:mirror:{time.monotonic_ns()}",
        parsed=pipeline.parse(raw),
        raw=raw,
        store=store,
    )


def one_by_one(action: MirrorAction, ctxs: list[ActionContext]) -> list[ActionResult | Exception]:
    out: list[ActionResult | Exception] = []
    for ctx in ctxs:
        try:
            out.append(action(ctx))
        except TransientError as exc:
            out.append(exc)
    return out


def comparable(result: ActionResult | Exception) -> Any:
    if isinstance(result, TransientError):
        return ("error", type(result), result.reason, str(result))
    return result


def test_code_taken_is_a_transient_error(action: MirrorAction, store: EventStore) -> None:
    """A voucher whose code a live voucher still holds retries (reason code_taken): the older voucher's
    deletion may still be on its way."""
    assert action(stored(store, voucher_event("created", n=1))).status == ActionStatus.SUCCEEDED
    taken = stored(store, voucher_event("created", n=2, voucher_id="v_taken"))
    with pytest.raises(TransientError) as exc:
        action(taken)
    assert exc.value.reason == "code_taken"


def test_run_batch_gives_what_one_by_one_gives(action: MirrorAction, store: EventStore) -> None:
    """created, a newer update, an older one (stale), a taken code, another voucher, the first again: the
    batch's results equal action(ctx)'s one at a time (details, the code_taken error, the stale count),
    and so do the rows; the taken code fails alone."""
    docs = [
        voucher_event("created", n=1),
        voucher_event("updated", n=5, active=False),
        voucher_event("updated", n=3),
        voucher_event("created", n=2, voucher_id="v_taken"),
        voucher_event("created", n=1, voucher_id="v_other", code="OTHER-1"),
        voucher_event("updated", n=6),
    ]
    ctxs = [stored(store, doc) for doc in docs]
    expected = one_by_one(action, ctxs)
    stale = store.worker_counters().mirror_stale
    assert stale == {"vouchers": 1}
    rows = mirror_state(action.mirror)
    clear_mirror(action.mirror)
    got = action.run_batch(ctxs)
    assert [comparable(r) for r in got] == [comparable(r) for r in expected]
    assert isinstance(got[3], TransientError)
    assert got[3].reason == "code_taken"
    assert isinstance(got[2], ActionResult)
    assert got[2].status == ActionStatus.SKIPPED
    assert str(got[2].detail).startswith("stale: row is at ")
    assert store.worker_counters().mirror_stale == {"vouchers": 2}
    assert mirror_state(action.mirror) == rows


def test_run_batch_of_nothing_to_mirror(action: MirrorAction, store: EventStore) -> None:
    """Events whose data carries no mirrored object are skipped with the reason, in a batch as alone."""
    doc = voucher_event("created", n=1)
    doc["data"] = {}
    ctx = stored(store, doc)
    assert action.run_batch([ctx]) == [action(ctx)]
    assert action(ctx).detail == "no voucher, campaign, customer or publication in this event"
