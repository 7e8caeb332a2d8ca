"""Event types as labels and index keys: documented ones only, everything else is `other` (issue 10)."""

from __future__ import annotations

import time

from schemas import DATA_SCHEMAS, event_types
from tests.fakes import RecordingQueue
from tests.support import event_types_doc as rows
from tests.support import parse_metrics


def accept(store, raw=b"{}"):
    event_id, _ = store.accept(raw, dedup_key=f"k-{time.monotonic_ns()}", headers={}, secret="s")
    return event_id


class TestDocumentedList:
    def test_module_and_doc_list_the_same_types(self):
        """schemas.event_types is docs/event-types.md's list, both tables, no more and no less."""
        assert set(rows()) == event_types.DOCUMENTED

    def test_every_schema_type_is_documented(self):
        assert set(DATA_SCHEMAS) <= event_types.DOCUMENTED

    def test_label(self):
        assert event_types.label("voucher.published") == "voucher.published"
        assert event_types.label("campaign.referral_tier.created") == "campaign.referral_tier.created"
        assert event_types.label("x" * 200) == "other"
        assert event_types.label("") == ""


class TestStoreKeysAndCounters:
    def test_undocumented_types_share_one_index_and_one_counter(self, store):
        """Any number of made-up types: one `other` index, one `other` counter; the documents keep theirs."""
        made_up = [f"made.up.{i}" for i in range(20)]
        ids = [accept(store) for _ in made_up]
        for event_id, event_type in zip(ids, made_up, strict=True):
            store.set_status(event_id, "ignored", event_type=event_type)
        real = accept(store)
        store.set_status(real, "ignored", event_type="voucher.created")

        p = store.p
        assert {t.decode() for t in store.r.smembers(f"{p}:types")} == {"other", "voucher.created"}
        assert not list(store.r.scan_iter(f"{p}:ty:made.up.*"))
        assert store.r.zcard(f"{p}:ty:other") == 20
        counters = store.worker_counters().settled
        assert counters == {("ignored", "other"): 20, ("ignored", "voucher.created"): 1}
        assert store.document(ids[3])["event_type"] == "made.up.3"

    def test_metrics_label_undocumented_types_other(self, settings, store):
        """/metrics shows `other`, never a sender's string, as the event_type label."""
        from ingest import create_app

        for event_type in ("made.up.1", "made.up.2", "voucher.created"):
            store.set_status(accept(store), "ignored", event_type=event_type)
        client = create_app(settings, store=store, queue=RecordingQueue()).test_client()
        series = {
            dict(labels)["event_type"]
            for (name, labels), _ in parse_metrics(client.get("/metrics").data.decode()).items()
            if name == "voucherify_ingest_events_settled_total"
        }
        assert series == {"other", "voucher.created"}

    def test_filters_still_find_an_undocumented_type(self, store):
        """Listing by a made-up type finds exactly its events (through the `other` index); by `other`, all."""
        a, b, c = accept(store), accept(store), accept(store)
        store.set_status(a, "ignored", event_type="made.up.a")
        store.set_status(b, "ignored", event_type="made.up.b")
        store.set_status(c, "ignored", event_type="voucher.created")
        assert list(store.iter_ids(event_type="made.up.a")) == [a]
        assert set(store.iter_ids(event_type="other")) == {a, b}
        assert list(store.iter_ids(event_type="voucher.created")) == [c]
