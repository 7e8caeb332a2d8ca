"""Loyalty tiers and the tier events."""

from __future__ import annotations

import pytest

from schemas import ValidationError, parse_event
from schemas.loyalty import (
    CampaignLoyaltyTierCreated,
    CustomerLoyaltyTierUpgraded,
    LoyaltyPointsBucketSchema,
    LoyaltyTier,
)
from tests.payloads import example_envelope, load_example, wrap_envelope
from tests.schemas.helpers import errors_for, nest


class TestLoyaltyTiers:
    def test_upgraded(self):
        """An upgrade carries both tiers, with their point ranges ("from" is read into points_from)."""
        data = parse_event(example_envelope("customer.loyalty.tier.upgraded")).data

        assert isinstance(data, CustomerLoyaltyTierUpgraded)
        assert isinstance(data.loyalty_tier_from, LoyaltyTier)
        assert (data.loyalty_tier_from.name, data.loyalty_tier_from.points_from) == ("Loyal silver", 151)
        assert data.loyalty_tier_to.points_from > data.loyalty_tier_from.points_from

    def test_campaign_tier_created(self):
        """campaign.loyalty_tier.created loads its tier."""
        data = parse_event(example_envelope("campaign.loyalty_tier.created")).data

        assert isinstance(data, CampaignLoyaltyTierCreated)
        assert data.loyalty_tier.id.startswith("ltr_")

    @pytest.mark.parametrize(
        "event_type",
        ["customer.loyalty.tier.joined", "customer.loyalty.tier.left", "customer.loyalty.tier.prolonged"],
    )
    def test_created_at(self, event_type):
        """created_at on customer tier events is a timestamp and must be present (spec-required, in every
        example)."""
        data = load_example(event_type)
        del data["created_at"]

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope(event_type, data))

        assert ei.value.messages == {"data": {"created_at": ["Missing data for required field."]}}
        assert errors_for(event_type, ("created_at",), "soon") == nest(
            ("data", "created_at"), ["Not a valid datetime."]
        )

    def test_tier_points_typed(self):
        """Tier point ranges are integers."""
        errors = errors_for("campaign.loyalty_tier.updated", ("loyalty_tier", "points", "from"), "lots")

        assert errors == nest(("data", "loyalty_tier", "points", "from"), ["Not a valid integer."])


class TestBuckets:
    def test_expires_at_is_a_date(self):
        """A bucket's expires_at is date-only."""
        bucket = LoyaltyPointsBucketSchema().load({"expires_at": "2024-03-14", "bucket": {"total_points": 5}})

        assert (bucket.expires_at.isoformat(), bucket.total_points) == ("2024-03-14", 5)
