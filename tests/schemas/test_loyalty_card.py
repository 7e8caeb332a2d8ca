"""Loyalty cards: points added/expired, pending points, transactions."""

from __future__ import annotations

from datetime import date

import pytest

from schemas import ValidationError, parse_event
from schemas.loyalty import PendingPoints, PointsBucket
from schemas.loyalty_card import (
    CustomerVoucherLoyaltyCardPendingPointsActivated,
    VoucherLoyaltyCardPointsExpired,
    VoucherLoyaltyCardTransactionCreated,
)
from tests.payloads import example_envelope, load_example, wrap_envelope
from tests.schemas.helpers import errors_for, nest


class TestPointsExpired:
    @pytest.mark.parametrize(
        "event_type", ["voucher.loyalty_card.points_expired", "customer.voucher.loyalty_card.points_expired"]
    )
    def test_buckets_array(self, event_type):
        """Both examples send `buckets` as an array; it loads as a tuple of PointsBucket."""
        data = parse_event(example_envelope(event_type)).data

        assert data.buckets
        assert all(isinstance(b, PointsBucket) for b in data.buckets)
        assert all(isinstance(b.expires_at, date) for b in data.buckets)

    def test_single_bucket_object(self):
        """A single bucket object (the spec's shape for voucher.*) loads as a one-element tuple."""
        data = load_example("voucher.loyalty_card.points_expired")
        data["buckets"] = data["buckets"][0]

        parsed = parse_event(wrap_envelope("voucher.loyalty_card.points_expired", data)).data

        assert isinstance(parsed, VoucherLoyaltyCardPointsExpired)
        assert len(parsed.buckets) == 1

    def test_points_required(self):
        """`points` must be present (spec-required, in every example)."""
        data = load_example("voucher.loyalty_card.points_expired")
        del data["points"]

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("voucher.loyalty_card.points_expired", data))

        assert ei.value.messages == {"data": {"points": ["Missing data for required field."]}}


class TestPendingPoints:
    def test_activated_without_balance(self):
        """customer.*.pending_points.activated's example has no balance/transaction and still loads."""
        data = parse_event(example_envelope("customer.voucher.loyalty_card.pending_points.activated")).data

        assert isinstance(data, CustomerVoucherLoyaltyCardPendingPointsActivated)
        assert isinstance(data.pending_points, PendingPoints)
        assert isinstance(data.pending_points.activates_at, date)
        assert data.balance is None
        assert data.voucher_pending_points_balance is not None

    @pytest.mark.parametrize(
        "event_type",
        [
            "voucher.loyalty_card.pending_points.added",
            "voucher.loyalty_card.pending_points.canceled",
            "voucher.loyalty_card.pending_points.updated",
            "customer.voucher.loyalty_card.pending_points.added",
        ],
    )
    def test_activates_at_must_be_a_date(self, event_type):
        """pending_points.activates_at is a date."""
        errors = errors_for(event_type, ("pending_points", "activates_at"), "next week")

        assert errors == nest(("data", "pending_points", "activates_at"), ["Not a valid date."])


class TestTransactionCreated:
    def test_example(self):
        """voucher.loyalty_card.transaction.created: all 17 keys present, most null."""
        data = parse_event(example_envelope("voucher.loyalty_card.transaction.created")).data

        assert isinstance(data, VoucherLoyaltyCardTransactionCreated)
        assert data.transaction.id
        assert data.segment is None

    def test_every_key_required(self):
        """Dropping one of the 17 keys the spec requires (and the example has) is an error on that key."""
        data = load_example("voucher.loyalty_card.transaction.created")
        del data["destination_voucher"]

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("voucher.loyalty_card.transaction.created", data))

        assert ei.value.messages == {"data": {"destination_voucher": ["Missing data for required field."]}}
