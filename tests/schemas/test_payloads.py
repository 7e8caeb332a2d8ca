"""tests/payloads.py: the example loader the schema and worker tests share."""

from __future__ import annotations

import json

from tests.payloads import (
    events_dir,
    example_envelope,
    example_event_type,
    example_kind,
    example_names,
    load_example,
    wrap_envelope,
)


class TestWrapEnvelope:
    def test_shape(self):
        """A wrapped body looks like a project-settings webhook for the given type."""
        body = wrap_envelope("voucher.created", {"a": 1})

        assert set(body) == {"id", "project_id", "created_at", "type", "data", "source", "event"}
        assert body["id"].startswith("whs_")
        assert body["source"]["id"].startswith("wh_")
        assert body["source"]["object"] == "webhook"
        assert body["event"]["id"].startswith("ev")
        assert body["type"] == body["event"]["type"] == "voucher.created"
        assert {"created_at", "group_id", "event_source"} <= set(body["event"])

    def test_overrides(self):
        """Top-level overrides replace keys; `event=` is merged into the event object."""
        body = wrap_envelope("x.y", {}, type="", event={"entity_id": "v_1"}, source=None)

        assert (body["type"], body["source"]) == ("", None)
        assert body["event"]["entity_id"] == "v_1"
        assert body["event"]["type"] == "x.y"

    def test_data_copied(self):
        """The data is copied, so tests can mutate bodies freely."""
        data = {"voucher": {"code": "A"}}

        wrap_envelope("voucher.created", data)["data"]["voucher"]["code"] = "B"

        assert data["voucher"]["code"] == "A"


class TestExamples:
    def test_names_and_types(self):
        """Names keep their .json; -2/-3 suffixes map back to the event type."""
        assert "voucher.published-2.json" in example_names()
        assert example_event_type("voucher.published-2.json") == "voucher.published"
        assert example_event_type("customer.redemption.succeeded-2") == "customer.redemption.succeeded"

    def test_envelope_files_as_is(self):
        """Envelope files come back unchanged; data-only files wrapped."""
        assert example_envelope("voucher.published-2.json") == load_example("voucher.published-2.json")
        assert example_envelope("voucher.created")["data"] == load_example("voucher.created")
        assert example_kind("customer.publication.succeeded-3.json") == "raw"

    def test_events_dir_override(self, tmp_path, monkeypatch):
        """VOUCHERIFY_EVENTS_DIR points the loader elsewhere; without an index, kinds are guessed."""
        (tmp_path / "some.future.type.json").write_text(json.dumps({"thing": {"id": "t_1"}}))
        (tmp_path / "voucher.created-2.json").write_text(json.dumps(wrap_envelope("voucher.created", {})))
        monkeypatch.setenv("VOUCHERIFY_EVENTS_DIR", str(tmp_path))

        assert events_dir() == tmp_path
        assert example_names() == ["some.future.type.json", "voucher.created-2.json"]
        assert example_envelope("some.future.type")["event"]["type"] == "some.future.type"
        assert example_kind("voucher.created-2.json") == "envelope"
