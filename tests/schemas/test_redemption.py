"""Redemptions, rollbacks and their events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import parse_event
from schemas.redemption import (
    CustomerRedemptionSucceeded,
    Redemption,
    RedemptionRollbackFailed,
    RedemptionSucceeded,
)
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestRedemptionEvents:
    def test_succeeded_mixes_precisions(self):
        """redemption.succeeded mixes 6-digit (order) and 3-digit timestamps in one payload."""
        data = parse_event(example_envelope("redemption.succeeded")).data

        assert isinstance(data, RedemptionSucceeded)
        assert isinstance(data.redemption, Redemption)
        assert data.order.created_at == datetime(2024, 1, 15, 12, 20, 38, 596843, tzinfo=UTC)
        assert data.order.total_amount == 6000
        assert data.customer.metadata == {"lang": "en", "test": True, "region": "EMEA"}

    def test_rolled_back_status(self):
        """redemption.status ROLLED_BACK (the spec's enum says "ROLLED BACK") is taken as sent."""
        data = parse_event(example_envelope("redemption.rollback.failed")).data

        assert isinstance(data, RedemptionRollbackFailed)
        assert data.redemption.status == "ROLLED_BACK"
        assert data.redemption_rollback.failure_code == "already_rolled_back"
        assert data.redemption_rollback.redemption == data.redemption.id

    def test_distribution_envelope(self):
        """The docs' distribution envelope for customer.redemption.succeeded loads."""
        parsed = parse_event(example_envelope("customer.redemption.succeeded-2.json"))

        assert isinstance(parsed.data, CustomerRedemptionSucceeded)
        assert parsed.envelope.type == "Voucher-redeemed"

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("redemption", "id"), None, "Field may not be null."),
            (("redemption", "date"), "yesterday", "Not a valid datetime."),
            (("redemption", "order", "amount"), "abc", "Not a valid integer."),
            (("order", "items", 0, "price"), "1000", "Not a valid integer."),
            (("voucher", "code"), 123, "Not a valid string."),
        ],
    )
    def test_wrong_types(self, path, value, message):
        """Ids, amounts, codes and dates are checked at every depth, lists included."""
        assert errors_for("redemption.succeeded", path, value) == nest(("data", *path), [message])

    def test_redemption_id_required(self):
        """A redemption without an id is rejected (the spec requires it; every example has one)."""
        data = parse_event(example_envelope("redemption.succeeded"))
        assert data.data.redemption.id

        errors = errors_for("redemption.succeeded", ("redemption",), {"status": "SUCCEEDED"})

        assert errors == nest(("data", "redemption", "id"), ["Missing data for required field."])
