import json

import pytest

from ingest.dedup import dedup_key


def body(doc):
    return json.dumps(doc).encode()


class TestDedupKey:
    def test_source_and_event_id(self):
        """(source.id, event.id) is the key when both are there."""
        doc = {"id": "whs_1", "source": {"id": "wh_1"}, "event": {"id": "evred_1"}}
        assert dedup_key(body(doc)) == "ev:wh_1:evred_1"

    def test_same_event_through_two_sources_differs(self):
        """The same event sent to two endpoints is two deliveries (side effects dedup on their own keys)."""
        a = {"source": {"id": "wh_1"}, "event": {"id": "ev_1"}}
        b = {"source": {"id": "distr_2"}, "event": {"id": "ev_1"}}
        assert dedup_key(body(a)) != dedup_key(body(b))

    def test_retry_of_a_send_out_with_new_id_is_a_duplicate(self):
        """A retry carries the same event.id: same key even if the send-out id changed."""
        a = {"id": "whs_1", "source": {"id": "wh_1"}, "event": {"id": "ev_1"}}
        b = {"id": "whs_2", "source": {"id": "wh_1"}, "event": {"id": "ev_1"}}
        assert dedup_key(body(a)) == dedup_key(body(b))

    def test_path_source_stands_in_for_missing_source(self):
        doc = {"event": {"id": "ev_1"}}
        assert dedup_key(body(doc), "crm") == "ev:crm:ev_1"
        assert dedup_key(body(doc)) == "ev:-:ev_1"

    def test_falls_back_to_envelope_id(self):
        assert dedup_key(body({"id": "whs_9", "event": {"id": 5}})) == "send:-:whs_9"

    def test_falls_back_to_body_hash(self):
        """Not JSON, not an object, or no ids at all: a hash of the exact bytes."""
        assert dedup_key(b"not json").startswith("sha256:-:")
        assert dedup_key(b"[1,2]") == dedup_key(b"[1,2]")
        assert dedup_key(b"[1,2]") != dedup_key(b"[1, 2]")
        assert dedup_key(body({"data": {}})).startswith("sha256:")


class TestHostileBodies:
    @pytest.mark.parametrize(
        "raw", [b"[" * 100_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000], ids=["arrays", "objects"]
    )
    def test_deep_body_gets_a_hash_key_not_a_recursion_error(self, raw):
        assert dedup_key(raw).startswith("sha256:")
