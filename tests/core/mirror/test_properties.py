"""Any order, with duplicates, gives the row that applying the history in order gives (hypothesis).

Histories include timestamps one microsecond or one millisecond apart (the sync-engine bug: a 1-second
clock drops the newest state) and exact ties broken by event.created_at, then event.id. They end with a
full object (as a real voucher's does: updates, then perhaps deletion), the case the rule makes exact; a
history ending in a partial SimpleVoucher is exact for the columns and the keys that snapshot carries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import db
from core.mirror import Mirror
from core.mirror.tables import TABLES
from tests.mirror_events import T0, campaign_event, clear_mirror, mirror_state, voucher_event
from tests.support import fresh_mirror_url

VOUCHER_MIDDLE = ["updated", "disabled", "enabled", "published", "redeemed", "deleted", "updated"]
VOUCHER_LAST = ["updated", "disabled", "enabled", "deleted"]
CAMPAIGN_MIDDLE = ["updated", "disabled", "enabled", "generated", "deleted"]
CAMPAIGN_LAST = ["updated", "disabled", "enabled", "deleted"]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def mirror(
    request: pytest.FixtureRequest, postgres_url: str | None, tmp_path_factory: Any
) -> Iterator[Mirror]:
    url = fresh_mirror_url(request.param, postgres_url, tmp_path_factory.mktemp("prop"))
    m = Mirror(db.make_engine(url))
    yield m
    m.engine.dispose()


@st.composite
def steps(draw: st.DrawFn, n: int) -> list[tuple[datetime, datetime, str, bool]]:
    """n increasing versions: (object time, event time, event id, micros spelling)."""
    out = []
    obj, at, eid = T0, T0 + timedelta(seconds=1), 100
    for _ in range(n):
        gap = draw(st.sampled_from(["us", "ms", "s", "tie", "tie2"]))
        if gap == "us":
            obj += timedelta(microseconds=1)
        elif gap == "ms":
            obj += timedelta(milliseconds=1)
        elif gap == "s":
            obj += timedelta(seconds=1)
        elif gap == "tie":  # same object time: the later event wins
            at += timedelta(milliseconds=1)
        else:  # same object and event time: the greater event.id wins
            eid += draw(st.integers(1, 5))
        out.append((obj, at, f"evvou_{eid:06d}", gap != "ms"))
        at = max(at, obj + timedelta(seconds=1))
        eid += 1
    return out


def run_order(data: st.DataObject, n: int) -> list[int]:
    """A permutation of range(n) with some events delivered again."""
    order = data.draw(st.permutations(range(n)))
    dups = data.draw(st.lists(st.integers(0, n - 1), max_size=n))
    for d in dups:
        order.insert(data.draw(st.integers(0, len(order))), d)
    return order


def row(m: Mirror, table: str, key: str) -> dict[str, Any]:
    t = TABLES[table]
    with m.engine.connect() as conn:
        return dict(conn.execute(select(t).where(t.c.id == key)).mappings().one())


def play(m: Mirror, docs: list[dict[str, Any]], order: list[int]) -> None:
    for i in order:
        m.apply_event(docs[i], f"evt_{i}")


def voucher_docs(
    kinds: list[str], versions: list[tuple[datetime, datetime, str, bool]]
) -> list[dict[str, Any]]:
    docs = []
    for n, (kind, (obj, at, eid, micros)) in enumerate(zip(kinds, versions, strict=True)):
        docs.append(
            voucher_event(
                kind, n=n, updated_at=obj, event_at=at, event_id=eid, active=n % 3 != 0, micros=micros
            )
        )
    return docs


SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data())
def test_voucher_any_order(mirror: Mirror, data: st.DataObject) -> None:
    """A voucher's history (created, updates, disabled, enabled, published, redeemed, deleted), any order."""
    middle = data.draw(st.lists(st.sampled_from(VOUCHER_MIDDLE), max_size=6))
    kinds = ["created", *middle, data.draw(st.sampled_from(VOUCHER_LAST))]
    docs = voucher_docs(kinds, data.draw(steps(len(kinds))))
    clear_mirror(mirror)
    play(mirror, docs, list(range(len(docs))))
    expected = row(mirror, "vouchers", "v_mirror_test")
    clear_mirror(mirror)
    play(mirror, docs, run_order(data, len(docs)))
    assert row(mirror, "vouchers", "v_mirror_test") == expected


@SETTINGS
@given(data=st.data())
def test_voucher_ending_partial(mirror: Mirror, data: st.DataObject) -> None:
    """Ending with a redemption's SimpleVoucher: its columns and keys, and the version, in any order."""
    middle = data.draw(st.lists(st.sampled_from(VOUCHER_MIDDLE), max_size=5))
    kinds = ["created", *middle, "redeemed"]
    docs = voucher_docs(kinds, data.draw(steps(len(kinds))))
    clear_mirror(mirror)
    play(mirror, docs, list(range(len(docs))))
    expected = row(mirror, "vouchers", "v_mirror_test")
    clear_mirror(mirror)
    play(mirror, docs, run_order(data, len(docs)))
    got = row(mirror, "vouchers", "v_mirror_test")
    carried = docs[-1]["data"]["voucher"]
    for col in ("code", "campaign_id", "type", "active", "holder_id", "version", "deleted_at", "updated_at"):
        assert got[col] == expected[col], col
    for key in carried:
        assert got["snapshot"][key] == expected["snapshot"][key], key


@SETTINGS
@given(data=st.data())
def test_campaign_any_order(mirror: Mirror, data: st.DataObject) -> None:
    """A campaign's history (created, updates, enabled/disabled, generation completed, deleted), any order."""
    middle = data.draw(st.lists(st.sampled_from(CAMPAIGN_MIDDLE), max_size=6))
    kinds = ["created", *middle, data.draw(st.sampled_from(CAMPAIGN_LAST))]
    versions = data.draw(steps(len(kinds)))
    docs = [
        campaign_event(
            kind, n=n, updated_at=obj, event_at=at, event_id=eid.replace("vou", "cam"), micros=micros
        )
        for n, (kind, (obj, at, eid, micros)) in enumerate(zip(kinds, versions, strict=True))
    ]
    clear_mirror(mirror)
    play(mirror, docs, list(range(len(docs))))
    expected = row(mirror, "campaigns", "camp_mirror_test")
    clear_mirror(mirror)
    play(mirror, docs, run_order(data, len(docs)))
    assert row(mirror, "campaigns", "camp_mirror_test") == expected


@SETTINGS
@given(data=st.data())
def test_batches_equal_one_by_one(
    mirror: Mirror, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    """Two vouchers' and a campaign's histories, permuted with duplicates, split into batches at random
    (Mirror.apply_events: one transaction each, a row touched several times in one batch): every row, each
    row's history, and each event's outcomes are those of applying the same order one event at a time."""
    docs = []
    for voucher_id, code in (("v_mirror_test", "MIRROR-1"), ("v_mirror_b", "MIRROR-2")):
        middle = data.draw(st.lists(st.sampled_from(VOUCHER_MIDDLE), max_size=5))
        kinds = ["created", *middle, data.draw(st.sampled_from(VOUCHER_LAST))]
        for n, (kind, (obj, at, eid, micros)) in enumerate(
            zip(kinds, data.draw(steps(len(kinds))), strict=True)
        ):
            docs.append(
                voucher_event(
                    kind,
                    voucher_id=voucher_id,
                    code=code,
                    n=n,
                    updated_at=obj,
                    event_at=at,
                    event_id=eid,
                    active=n % 3 != 0,
                    micros=micros,
                )
            )
    kinds = ["created", *data.draw(st.lists(st.sampled_from(CAMPAIGN_MIDDLE), max_size=4))]
    docs += [
        campaign_event(
            kind, n=n, updated_at=obj, event_at=at, event_id=eid.replace("vou", "cam"), micros=micros
        )
        for n, (kind, (obj, at, eid, micros)) in enumerate(
            zip(kinds, data.draw(steps(len(kinds))), strict=True)
        )
    ]
    order = run_order(data, len(docs))
    events = [(docs[i], f"evt_{k}") for k, i in enumerate(order)]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(events) - 1), max_size=5))))
    batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]

    clear_mirror(mirror)
    expected = [mirror.apply_event(doc, ingest_id) for doc, ingest_id in events]
    expected_state = mirror_state(mirror)
    clear_mirror(mirror)
    with caplog.at_level(logging.INFO, "core.mirror"):
        got = [result for batch in batches for result in mirror.apply_events(batch)]
    assert not caplog.records, "a batch fell back to one by one"
    assert got == expected
    assert mirror_state(mirror) == expected_state
