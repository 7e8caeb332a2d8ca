"""Campaigns and campaign.* events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import ValidationError, parse_event
from schemas.campaign import Campaign, CampaignVouchersGenerationCompleted, SimpleCampaignSchema
from tests.payloads import example_envelope, load_example, wrap_envelope


class TestCampaignVouchersGenerationCompleted:
    def test_example(self):
        """The example (labelled "campaign.created" in the spec) loads as a generation-completed event."""
        data = parse_event(example_envelope("campaign.vouchers.generation.completed")).data

        assert isinstance(data, CampaignVouchersGenerationCompleted)
        assert data.count == 5
        assert datetime(2024, 2, 9, 10, 16, 4, 787000, tzinfo=UTC) == data.completed_at
        assert (
            data.campaign.id,
            data.campaign.name,
        ) == ("camp_18NCNUkQIaXnqbHqhtQnt355", "Test-campaign-applicable-to")

    @pytest.mark.parametrize("count", ["5", 5.5, "five", True])
    def test_count_must_be_an_integer(self, count):
        """`count` is an integer."""
        data = load_example("campaign.vouchers.generation.completed")
        data["count"] = count

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("campaign.vouchers.generation.completed", data))

        assert ei.value.messages == {"data": {"count": ["Not a valid integer."]}}


class TestSimpleCampaign:
    def test_referee_reward_amount_int_or_string(self):
        """referral_program.referee_reward.amount: the spec says string, the examples send 300; both load."""
        schema = SimpleCampaignSchema()
        for amount in (300, "300"):
            schema.load({"referral_program": {"referee_reward": {"amount": amount}}})

        with pytest.raises(ValidationError) as ei:
            schema.load({"referral_program": {"referee_reward": {"amount": "abc"}}})

        assert ei.value.messages == {
            "referral_program": {"referee_reward": {"amount": ["Not a valid integer."]}}
        }

    def test_everything_null(self):
        """Every SimpleCampaign field may be null, as Voucherify's examples show for most of them."""
        fields = SimpleCampaignSchema().fields
        assert Campaign() == SimpleCampaignSchema().load(
            dict.fromkeys(f.data_key or n for n, f in fields.items())
        )
