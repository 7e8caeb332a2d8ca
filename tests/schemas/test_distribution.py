"""Distribution-only events: manual_distribution_schedule and customer.order.*."""

from __future__ import annotations

import pytest

from schemas import ValidationError, parse_event
from schemas.distribution import CustomerOrderPaid, Distribution, ManualDistributionSchedule
from schemas.order import Order
from tests.payloads import example_envelope, load_example, wrap_envelope
from tests.schemas.helpers import errors_for, nest


class TestManualDistributionSchedule:
    def test_channels_list(self):
        """distribution_channels is a list in the example (an enum string in the spec); a tuple here."""
        data = parse_event(example_envelope("manual_distribution_schedule")).data

        assert isinstance(data, ManualDistributionSchedule)
        assert isinstance(data.distribution, Distribution)
        assert data.distribution.distribution_channels == ("webhook",)

    def test_channel_string(self):
        """A single channel string (the spec's shape) loads as a one-element tuple."""
        data = load_example("manual_distribution_schedule")
        data["distribution"]["distribution_channels"] = "webhook"

        parsed = parse_event(wrap_envelope("manual_distribution_schedule", data)).data

        assert parsed.distribution.distribution_channels == ("webhook",)


class TestCustomerOrder:
    @pytest.mark.parametrize(
        "event_type",
        [
            "customer.order.created",
            "customer.order.updated",
            "customer.order.paid",
            "customer.order.canceled",
        ],
    )
    def test_examples(self, event_type):
        """Each order event loads its calculated order, with null referrer and redemption."""
        data = parse_event(example_envelope(event_type)).data

        assert isinstance(data.order, Order)
        assert data.order.id.startswith("ord_")
        assert data.redemption is None

    def test_paid(self):
        """Amounts and free-form order metadata come through."""
        data = parse_event(example_envelope("customer.order.paid")).data

        assert isinstance(data, CustomerOrderPaid)
        assert data.order.amount == 10000
        assert data.order.metadata["card"] == ["Other"]

    def test_order_required(self):
        """The order is required in customer.order.* (spec-required, in every example)."""
        data = load_example("customer.order.paid")
        del data["order"]

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("customer.order.paid", data))

        assert ei.value.messages == {"data": {"order": ["Missing data for required field."]}}

    def test_item_quantity(self):
        """Order item quantities are integers."""
        errors = errors_for("customer.order.created", ("order", "items", 0, "quantity"), "two")

        assert errors == nest(("data", "order", "items", 0, "quantity"), ["Not a valid integer."])
