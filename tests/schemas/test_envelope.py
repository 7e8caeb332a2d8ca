"""The v2024-01-01 envelope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import Envelope, EnvelopeSchema, ValidationError, parse_event
from schemas.envelope import EventRef, Source
from tests.payloads import example_envelope, wrap_envelope


class TestEnvelopeSchema:
    def test_loads_docs_project_envelope(self):
        """The docs' voucher.published envelope loads into Envelope/Source/EventRef."""
        env = EnvelopeSchema().load(example_envelope("voucher.published-2.json"))

        assert isinstance(env, Envelope)
        assert env.id == "whs_ID"
        assert env.project_id == "proj_ID"
        assert datetime(2025, 10, 16, 16, 3, 23, 71000, tzinfo=UTC) == env.created_at
        assert env.type == "voucher.published"
        assert Source(id="wh_ID", object="webhook", target_url="https:/your.url.io") == env.source
        assert (
            EventRef(
                id="evvou_ID",
                type="voucher.published",
                created_at=datetime(2025, 10, 16, 16, 3, 23, 71000, tzinfo=UTC),
                entity_id="v_ID",
                group_id="v-ID",
                channel="USER_PORTAL",
            )
            == env.event
        )
        assert env.data["voucher"]["id"] == "v_ID"

    def test_distribution_envelope_with_free_text_type(self):
        """A distribution webhook's `type` is the user's event name; routing uses event.type."""
        env = EnvelopeSchema().load(example_envelope("customer.redemption.succeeded-2.json"))

        assert env.type == "Voucher-redeemed"
        assert env.event.type == "customer.redemption.succeeded"
        assert env.source.object == "distribution"

    def test_empty_type_is_fine(self):
        """`type` may be "" (distribution with no event name)."""
        env = EnvelopeSchema().load(wrap_envelope("voucher.created", {}, type=""))

        assert env.type == ""
        assert env.event.type == "voucher.created"

    def test_minimal_envelope(self):
        """Only event.id, event.type and an object `data` are required."""
        env = EnvelopeSchema().load({"event": {"id": "ev_1", "type": "x.y"}, "data": {}})

        assert None is env.id
        assert None is env.source
        assert EventRef(id="ev_1", type="x.y") == env.event

    def test_unknown_keys_ignored(self):
        """Legacy (`object`, `webhook_id`, `metadata`) and future keys do not fail the envelope."""
        body = wrap_envelope("voucher.created", {}, object="event", webhook_id="wh_1", metadata={"a": 1})
        body["event"]["brand_new"] = {"x": 1}

        EnvelopeSchema().load(body)


class TestEnvelopeRejections:
    @pytest.mark.parametrize(
        ("event", "messages"),
        [
            ({"id": "ev_1"}, {"type": ["Missing data for required field."]}),
            ({"id": "ev_1", "type": None}, {"type": ["Field may not be null."]}),
            ({"id": "ev_1", "type": 42}, {"type": ["Not a valid string."]}),
            ({"id": "ev_1", "type": ""}, {"type": ["Shorter than minimum length 1."]}),
            ({"type": "voucher.created"}, {"id": ["Missing data for required field."]}),
            ({"id": 7, "type": "voucher.created"}, {"id": ["Not a valid string."]}),
        ],
    )
    def test_bad_event_id_or_type(self, event, messages):
        """event.id and event.type must be strings (event.type non-empty); errors are keyed by path."""
        body = wrap_envelope("voucher.created", {})
        body["event"] = event

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert {"event": messages} == ei.value.messages

    @pytest.mark.parametrize("data", [None, [], "{}", 1])
    def test_data_must_be_an_object(self, data):
        """`data` that is not a JSON object is an error on `data`."""
        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("voucher.created", data))

        assert list(ei.value.messages) == ["data"]

    def test_event_must_be_an_object(self):
        """A string `event` is an error on `event`."""
        body = wrap_envelope("voucher.created", {})
        body["event"] = "voucher.created"

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert ei.value.messages == {"event": {"_schema": ["Invalid input type."]}}

    def test_bad_timestamp(self):
        """A created_at that is not a timestamp is named by path."""
        body = wrap_envelope("voucher.created", {}, created_at="yesterday")

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert ei.value.messages == {"created_at": ["Not a valid datetime."]}
