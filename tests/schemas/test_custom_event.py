"""customer.custom_event."""

from __future__ import annotations

from schemas import parse_event
from schemas.custom_event import CustomerCustomEvent
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestCustomEvent:
    def test_example(self):
        """The event, its schema and the customer come through; referral/loyalty are null."""
        data = parse_event(example_envelope("customer.custom_event")).data

        assert isinstance(data, CustomerCustomEvent)
        assert (data.event.type, data.event.customer_id) == ("sign_up", data.customer.id)
        assert data.event_schema["name"] == "sign_up"
        assert (data.referral, data.loyalty) == (None, None)

    def test_event_created_at(self):
        """The custom event's created_at is a timestamp."""
        errors = errors_for("customer.custom_event", ("event", "created_at"), "yesterday")

        assert errors == nest(("data", "event", "created_at"), ["Not a valid datetime."])
