"""parse_event: the one entry point workers call."""

from __future__ import annotations

import pytest

from schemas import DATA_SCHEMAS, ParsedEvent, ValidationError, data_schema_for, parse_event
from schemas.voucher import VoucherCreated
from tests.payloads import load_example, wrap_envelope


class TestParseEvent:
    def test_known_type(self):
        """A known type comes back with its envelope, its dataclass and its schema's name."""
        parsed = parse_event(wrap_envelope("voucher.created", load_example("voucher.created")))

        assert isinstance(parsed, ParsedEvent)
        assert parsed.event_type == "voucher.created"
        assert parsed.schema == "VoucherCreatedDataSchema"
        assert isinstance(parsed.data, VoucherCreated)
        assert parsed.data.voucher.code == "Your-applicable-9"
        assert parsed.envelope.data == load_example("voucher.created")

    @pytest.mark.parametrize(
        "event_type", ["campaign.earning_rule.assigned", "customer.confirmed", "some.future.type"]
    )
    def test_unknown_type_validates_envelope_only(self, event_type):
        """Undocumented and future types: envelope validated, data untouched, no error."""
        parsed = parse_event(wrap_envelope(event_type, {"voucher": {"code": 123}}))

        assert event_type == parsed.event_type
        assert None is parsed.data
        assert None is parsed.schema
        assert parsed.envelope.data == {"voucher": {"code": 123}}

    def test_routes_on_event_type_not_type(self):
        """The top-level `type` (free text in distributions) never picks the schema."""
        body = wrap_envelope("voucher.created", load_example("voucher.created"), type="publication.succeeded")

        assert parse_event(body).schema == "VoucherCreatedDataSchema"

    @pytest.mark.parametrize(
        ("payload", "kind"), [([], "an array"), ("x", "a string"), (None, "null"), (3, "a number")]
    )
    def test_not_an_object(self, payload, kind):
        """A body that is not a JSON object fails under _schema, naming what it got."""
        with pytest.raises(ValidationError) as ei:
            parse_event(payload)

        assert list(ei.value.messages) == ["_schema"]
        assert kind in ei.value.messages["_schema"][0]

    def test_one_error_for_envelope_and_data(self):
        """Envelope and data errors come back together in one field-keyed ValidationError."""
        body = wrap_envelope("voucher.created", {"voucher": {"code": 123}}, created_at="yesterday")

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert ei.value.messages == {
            "created_at": ["Not a valid datetime."],
            "data": {"voucher": {"code": ["Not a valid string."]}},
        }

    def test_payload_kept_on_error(self):
        """The error carries the offending body for logging."""
        body = wrap_envelope("voucher.created", {"voucher": {"code": 123}})

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert body is ei.value.data


class TestRegistry:
    def test_cached_instances(self):
        """data_schema_for returns one shared instance per type."""
        assert data_schema_for("voucher.created") is data_schema_for("voucher.created")
        assert isinstance(data_schema_for("voucher.created"), DATA_SCHEMAS["voucher.created"])

    def test_unknown(self):
        """Unknown types have no schema."""
        assert None is data_schema_for("some.future.type")

    def test_read_only(self):
        """DATA_SCHEMAS cannot be changed at runtime by accident."""
        with pytest.raises(TypeError):
            DATA_SCHEMAS["x"] = object  # type: ignore[index]
