"""The compare-and-set rules, on SQLite and on a real PostgreSQL (each test runs on both)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from core import examples
from core.mirror import Mirror
from tests.mirror_events import T0, campaign_event, clear_mirror, iso, mirror_state, voucher_event


@pytest.fixture
def mirror(mirror_url: str) -> Any:
    m = Mirror.from_url(mirror_url)
    yield m
    m.engine.dispose()


def apply(m: Mirror, doc: dict[str, Any], ingest_id: str = "evt_1") -> list[Any]:
    return m.apply_event(doc, ingest_id)[1]


def voucher_outcome(outcomes: list[Any]) -> Any:
    return next(o for o in outcomes if o.table == "vouchers")


class TestVouchers:
    def test_created_makes_the_row(self, mirror: Mirror) -> None:
        """voucher.created gives a row with the documented columns and the whole object as snapshot."""
        doc = voucher_event("created", n=1)
        apply(mirror, doc, "evt_a")
        row = mirror.voucher("MIRROR-1")
        assert row is not None
        assert row["id"] == "v_mirror_test"
        assert row["active"] is True
        assert row["campaign_id"] == doc["data"]["voucher"]["campaign_id"]
        assert row["snapshot"] == doc["data"]["voucher"]
        assert row["last_event_type"] == "voucher.created"
        assert row["last_event_id"] == doc["event"]["id"]
        assert row["ingest_event_id"] == "evt_a"
        assert row["updated_at"] == iso(T0 + timedelta(seconds=1))
        assert row["deleted_at"] is None
        assert [h["outcome"] for h in row["history"]] == ["applied"]

    def test_older_update_is_stale(self, mirror: Mirror) -> None:
        """An update older than the row is not applied and says the row's version (Cashier #1201)."""
        apply(mirror, voucher_event("updated", n=5, active=False))
        out = voucher_outcome(apply(mirror, voucher_event("created", n=1, active=True), "evt_2"))
        assert not out.applied
        assert out.row_version.startswith(iso(T0 + timedelta(seconds=5)))
        row = mirror.voucher("MIRROR-1")
        assert row["active"] is False
        assert row["snapshot"]["metadata"] == {"n": 5}
        assert [h["outcome"] for h in row["history"]] == ["stale", "applied"]

    def test_same_second_newer_wins(self, mirror: Mirror) -> None:
        """Two updates one microsecond apart: the newer is kept whichever comes last (sync-engine #268)."""
        newer = voucher_event("updated", n=2, updated_at=T0 + timedelta(microseconds=2), active=False)
        older = voucher_event("updated", n=1, updated_at=T0 + timedelta(microseconds=1), active=True)
        apply(mirror, newer)
        assert not voucher_outcome(apply(mirror, older)).applied
        assert mirror.voucher("MIRROR-1")["active"] is False

    def test_ties_broken_by_event_time_then_event_id(self, mirror: Mirror) -> None:
        """Same updated_at: the later event.created_at wins; same again: the greater event.id."""
        at = T0 + timedelta(seconds=3)
        a = voucher_event("updated", n=1, updated_at=at, event_at=at, event_id="evvou_b", active=True)
        b = voucher_event("updated", n=2, updated_at=at, event_at=at, event_id="evvou_a", active=False)
        c = voucher_event(
            "updated", n=3, updated_at=at, event_at=at - timedelta(milliseconds=1), event_id="evvou_z"
        )
        for doc in (b, c, a):
            apply(mirror, doc)
        assert mirror.voucher("MIRROR-1")["snapshot"]["metadata"] == {"n": 1}

    def test_partial_merges_into_full(self, mirror: Mirror) -> None:
        """A newer SimpleVoucher (redemption) updates what it carries and keeps the full object's keys."""
        apply(mirror, voucher_event("updated", n=1))
        out = voucher_outcome(apply(mirror, voucher_event("redeemed", n=2, active=False)))
        assert out.applied
        row = mirror.voucher("MIRROR-1")
        assert row["active"] is False
        assert row["snapshot"]["redemption"] == {"quantity": None, "redeemed_quantity": 2}
        assert row["snapshot"]["metadata"] == {"n": 1}  # only the full object carries it
        assert "assets" in row["snapshot"]

    def test_deleted_stays_deleted(self, mirror: Mirror) -> None:
        """A deleted voucher stays deleted against older events, and newer ones that do not re-create it."""
        apply(mirror, voucher_event("deleted", n=5))
        deleted_at = mirror.voucher("MIRROR-1")["deleted_at"]
        assert deleted_at is not None
        apply(mirror, voucher_event("updated", n=3))
        apply(mirror, voucher_event("updated", n=7))
        row = mirror.voucher("MIRROR-1")
        assert row["deleted_at"] == deleted_at
        assert row["snapshot"]["metadata"] == {"n": 7}
        apply(mirror, voucher_event("created", n=9))
        assert mirror.voucher("MIRROR-1")["deleted_at"] is None

    def test_deleted_code_can_be_reused(self, mirror: Mirror) -> None:
        """A code is unique among live vouchers only: a new voucher may take a deleted one's code."""
        apply(mirror, voucher_event("deleted", n=1, voucher_id="v_old"))
        apply(mirror, voucher_event("created", n=2, voucher_id="v_new"))
        assert mirror.voucher("MIRROR-1")["id"] == "v_new"

    def test_every_example_applies(self, mirror: Mirror) -> None:
        """Every packaged example applies without error (twice: the second time changes nothing)."""
        for name in examples.names():
            doc = examples.example_envelope(name)
            if examples.is_envelope(doc):
                apply(mirror, doc, f"evt_{name}")
                again = apply(mirror, doc, f"evt_{name}")
                assert not any(o.applied and o.version for o in again), name


class TestCampaigns:
    def test_generation_completed(self, mirror: Mirror) -> None:
        """campaign.vouchers.generation.completed sets vouchers_generated(_at); an older one does not."""
        apply(mirror, campaign_event("created", n=1))
        apply(mirror, campaign_event("generated", n=50, updated_at=T0 + timedelta(seconds=50)))
        apply(mirror, campaign_event("generated", n=20, updated_at=T0 + timedelta(seconds=20)))
        row = mirror.campaign("camp_mirror_test")
        assert row["vouchers_generated"] == 50
        assert row["vouchers_generated_at"] == iso(T0 + timedelta(seconds=50))


class TestPublications:
    def test_publication_and_customer(self, mirror: Mirror) -> None:
        """publication.succeeded gives a publication row (codes as a JSON list) and the customer's row."""
        doc = examples.example_envelope("publication.succeeded")
        apply(mirror, doc, "evt_pub")
        data = doc["data"]
        customer = mirror.customer(data["customer"]["id"])
        assert customer["source_id"] == data["customer"]["source_id"]
        with mirror.engine.connect() as conn:
            from sqlalchemy import select

            from core.mirror.tables import publications

            pub = conn.execute(select(publications)).mappings().one()
        assert pub["id"] == data["publication"]["id"]
        assert pub["voucher_codes"] == [v["code"] for v in data["vouchers"]]
        assert pub["first_ingest_event_id"] == "evt_pub"
        assert pub["campaign_id"] == data["campaign"]["id"]

    def test_light_customer_never_overwrites(self, mirror: Mirror) -> None:
        """A SimpleCustomer (no timestamps) fills a missing row but never overwrites a full customer."""
        full = examples.example_envelope("customer.created")
        full["data"]["customer"]["id"] = "cust_IdgAFZxYwwHctOk9pPuMu308"
        apply(mirror, full)
        apply(mirror, examples.example_envelope("publication.succeeded"))
        row = mirror.customer("cust_IdgAFZxYwwHctOk9pPuMu308")
        assert row["name"] == full["data"]["customer"]["name"]


class TestHistory:
    def test_pruned_past_the_retention(self, mirror: Mirror) -> None:
        """History rows older than the cut are deleted; the rows they describe stay."""
        from datetime import UTC, datetime

        apply(mirror, voucher_event("created", n=1))
        assert mirror.prune_history(datetime(2000, 1, 1, tzinfo=UTC)) == 0
        assert mirror.prune_history(datetime.now(UTC) + timedelta(seconds=1)) == 2  # voucher + light campaign
        row = mirror.voucher("MIRROR-1")
        assert row["history"] == []
        assert row["active"] is True


class TestBatches:
    def test_a_failing_event_does_not_fail_its_batch(self, mirror: Mirror) -> None:
        """A voucher whose code a live voucher holds fails alone: its batch-mates are applied and recorded,
        it gets the IntegrityError it gets alone, and nothing of it is written."""
        apply(mirror, voucher_event("created", n=1))  # v_mirror_test holds MIRROR-1
        before = voucher_event("created", n=1, voucher_id="v_a", code="A-1")
        taken = voucher_event("created", n=2, voucher_id="v_taken", code="MIRROR-1")
        after = voucher_event("updated", n=3)
        results = mirror.apply_events([(before, "evt_a"), (taken, "evt_t"), (after, "evt_b")])
        assert isinstance(results[1], IntegrityError)
        for result in (results[0], results[2]):
            assert not isinstance(result, Exception)
            assert voucher_outcome(result[1]).applied
        assert mirror.row("vouchers", "v_taken") is None
        assert mirror.touched_by("evt_t") == []
        assert mirror.voucher("A-1")["history"][0]["ingest_event_id"] == "evt_a"
        assert mirror.voucher("MIRROR-1")["snapshot"]["metadata"] == {"n": 3}

    def test_one_failing_event_gets_its_error(self, mirror: Mirror) -> None:
        """A batch of one event that fails returns its error instead of raising; events without objects
        in the same batch still get (meta, [])."""
        apply(mirror, voucher_event("created", n=1))
        taken = voucher_event("created", n=2, voucher_id="v_taken", code="MIRROR-1")
        results = mirror.apply_events([({"no": "envelope"}, "evt_x"), (taken, "evt_t")])
        assert results[0] == (None, [])
        assert isinstance(results[1], IntegrityError)

    def test_code_passed_on_within_a_batch(self, mirror: Mirror) -> None:
        """The old voucher's deletion and the new one's creation with its code, in one batch: both apply
        (on PostgreSQL through the fallback: a level's rows go in key order, v_new's before v_old's)."""
        apply(mirror, voucher_event("created", n=1, voucher_id="v_old"))
        gone = voucher_event("deleted", n=2, voucher_id="v_old")
        new = voucher_event("created", n=3, voucher_id="v_new")
        results = mirror.apply_events([(gone, "evt_1"), (new, "evt_2")])
        assert [voucher_outcome(r[1]).applied for r in results if not isinstance(r, Exception)] == [True] * 2
        assert mirror.voucher("MIRROR-1")["id"] == "v_new"
        assert mirror.row("vouchers", "v_old")["deleted_at"] is not None

    def test_every_example_in_one_batch(self, mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
        """All packaged examples (every shape, several per row) as one batch, twice: the same rows, history
        and outcomes as one by one, without falling back to one by one."""
        docs = [examples.example_envelope(name) for name in examples.names()]
        events = [(doc, f"evt_{n}") for n, doc in enumerate(docs * 2) if examples.is_envelope(doc)]
        expected = [mirror.apply_event(doc, ingest_id) for doc, ingest_id in events]
        state = mirror_state(mirror)
        clear_mirror(mirror)
        with caplog.at_level(logging.INFO, "core.mirror"):
            assert mirror.apply_events(events) == expected
        assert not caplog.records
        assert mirror_state(mirror) == state
