"""Customers and customer.created|updated|deleted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas import parse_event
from schemas.customer import Customer, CustomerSchema, CustomerUpdated, SimpleCustomerSchema
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestCustomerEvents:
    def test_updated(self):
        """customer.updated loads the full customer; birthdate is a date, created_at a UTC datetime."""
        data = parse_event(example_envelope("customer.updated")).data

        assert isinstance(data, CustomerUpdated)
        assert data.customer.email == "ariana.patel@example.org"
        assert data.customer.birthdate == date(1990, 7, 14)
        assert data.customer.created_at == datetime(2024, 9, 21, 13, 12, 44, tzinfo=UTC)

    def test_referral_campaigns_as_strings(self):
        """customer.referrals.campaigns: strings in the example, objects in the spec; both load."""
        schema = CustomerSchema()

        schema.load({"referrals": {"total": 1, "campaigns": ["camp_1"]}})
        schema.load({"referrals": {"total": 1, "campaigns": [{"campaign_id": "camp_1"}]}})

    def test_loyalty_keyed_by_campaign_name(self):
        """customer.loyalty.campaigns is keyed by campaign name, values validated."""
        errors = errors_for("customer.created", ("customer", "loyalty", "campaigns", "X"), {"points": "many"})

        assert errors == nest(
            ("data", "customer", "loyalty", "campaigns", "X", "value", "points"), ["Not a valid integer."]
        )

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("customer", "email"), "not-an-email", "Not a valid email address."),
            (("customer", "id"), 1, "Not a valid string."),
            (("customer", "birthdate"), "14/07/1990", "Not a valid date."),
            (("customer", "created_at"), "yesterday", "Not a valid datetime."),
            (("customer", "summary", "orders", "total_amount"), "abc", "Not a valid integer."),
            (("customer", "metadata"), ["a"], "Not a valid mapping type."),
        ],
    )
    @pytest.mark.parametrize("event_type", ["customer.created", "customer.updated", "customer.deleted"])
    def test_wrong_types(self, event_type, path, value, message):
        """Wrong types in the customer are reported at their path."""
        assert errors_for(event_type, path, value) == nest(("data", *path), [message])


class TestSimpleCustomer:
    def test_defaults(self):
        """An empty customer loads with None everywhere and {} metadata."""
        assert SimpleCustomerSchema().load({}) == Customer()

    def test_nested_email_checked(self):
        """Emails are checked wherever a customer appears (here the redemption's)."""
        errors = errors_for("redemption.succeeded", ("redemption", "customer", "email"), "nope")

        assert errors == nest(("data", "redemption", "customer", "email"), ["Not a valid email address."])
