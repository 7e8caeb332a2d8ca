"""customer.rewarded*, customer.reward_redemptions.*."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import parse_event
from schemas.reward import (
    CustomerRewarded,
    CustomerRewardedLoyaltyPoints,
    CustomerRewardRedemptionsCompleted,
    RewardAssignment,
    RewardRedemption,
)
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestRewards:
    def test_rewarded(self):
        """customer.rewarded carries the internal redemption and its reward."""
        data = parse_event(example_envelope("customer.rewarded")).data

        assert isinstance(data, CustomerRewarded)
        assert data.redemption.reward.id == data.reward.id

    def test_rewarded_loyalty_points(self):
        """customer.rewarded.loyalty_points carries the earning rule and the new balance."""
        data = parse_event(example_envelope("customer.rewarded.loyalty_points")).data

        assert isinstance(data, CustomerRewardedLoyaltyPoints)
        assert data.earning_rule.id
        assert isinstance(data.balance.points, int)

    def test_reward_redemption_completed(self):
        """Regression: the docs example writes "2024-05-13T12: 26: 06.250Z" (spaces); it still loads."""
        data = parse_event(example_envelope("customer.reward_redemptions.completed")).data

        assert isinstance(data, CustomerRewardRedemptionsCompleted)
        assert isinstance(data.reward_redemption, RewardRedemption)
        assert data.reward_redemption.created_at == datetime(2024, 5, 13, 12, 26, 6, 250000, tzinfo=UTC)
        assert isinstance(data.reward_assignment, RewardAssignment)
        assert isinstance(data.reward_assignment.points, int)
        assert data.publication.voucher is not None

    def test_reward_points_typed(self):
        """A reward's price in points is an integer."""
        path = ("reward_assignment", "parameters", "loyalty", "points")

        errors = errors_for("customer.reward_redemptions.created", path, "ten")

        assert errors == nest(("data", *path), ["Not a valid integer."])
