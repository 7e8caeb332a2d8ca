"""Rewards given to customers: ``customer.rewarded*`` and ``customer.reward_redemptions.*``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.base import BaseSchema, DateTime, Integer, Metadata, Nested, Object, Str
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.custom_event import CustomEvent, CustomEventSchema
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.loyalty import (
    EarningRule,
    EarningRuleSchema,
    EventRefDetailsSchema,
    LoyaltyTier,
    LoyaltyTierSchema,
)
from schemas.order import Order, OrderCalculatedSchema
from schemas.publication import Publication, PublicationWithVoucherSchema
from schemas.redemption import (
    Redemption,
    RedemptionInternalSchema,
    RewardResult,
    SimpleRedemptionRewardResultSchema,
)
from schemas.transaction import Balance, BalanceSchema
from schemas.voucher import SimpleVoucherSchema, Voucher

__all__ = [
    "CustomerRewardRedemptionsCompleted",
    "CustomerRewardRedemptionsCompletedDataSchema",
    "CustomerRewardRedemptionsCreated",
    "CustomerRewardRedemptionsCreatedDataSchema",
    "CustomerRewardRedemptionsPending",
    "CustomerRewardRedemptionsPendingDataSchema",
    "CustomerRewarded",
    "CustomerRewardedDataSchema",
    "CustomerRewardedLoyaltyPoints",
    "CustomerRewardedLoyaltyPointsDataSchema",
    "RewardAssignment",
    "RewardAssignmentSchema",
    "RewardRedemption",
    "RewardRedemptionSchema",
    "RewardSchema",
    "SimpleReferralTierSchema",
]


class RewardSchema(BaseSchema):
    """``Reward``: a reward definition (a campaign, coin or material reward)."""

    id = Str()
    name = Str()
    type = Str()
    stock = Integer()
    redeemed = Integer()
    attributes = Object()
    parameters = Object()
    metadata = Metadata()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class SimpleReferralTierSchema(BaseSchema):
    id = Str()
    campaign_id = Str()
    banner = Str()
    parameters = Object()


@dataclass(frozen=True)
class RewardRedemption:
    id: str | None = None
    state: str | None = None
    voucher_id: str | None = None
    campaign_id: str | None = None
    customer_id: str | None = None
    reward_assignment_id: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RewardRedemptionSchema(BaseSchema):
    """``RewardRedemption``: a customer exchanging points for a reward."""

    __model__ = RewardRedemption

    id = Str()
    state = Str()
    voucher_id = Str()
    campaign_id = Str()
    customer_id = Str()
    reward_assignment_id = Str()
    source_id = Str()
    source_type = Str()
    created_at = DateTime()
    updated_at = DateTime()


@dataclass(frozen=True)
class RewardAssignment:
    id: str | None = None
    reward_id: str | None = None
    related_object_id: str | None = None
    related_object_type: str | None = None
    # What the reward costs in loyalty points (parameters.loyalty.points).
    points: int | None = None
    created_at: datetime | None = None


class RewardLoyaltyParametersSchema(BaseSchema):
    points = Integer()


class RewardAssignmentParametersSchema(BaseSchema):
    loyalty = Nested(RewardLoyaltyParametersSchema)


class RewardAssignmentSchema(BaseSchema):
    """``RewardAssignment``: a reward offered in a campaign, at a price in points."""

    __model__ = RewardAssignment

    id = Str()
    reward_id = Str()
    related_object_id = Str()
    related_object_type = Str()
    parameters = Nested(RewardAssignmentParametersSchema)
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()

    def build(self, data: dict[str, Any]) -> RewardAssignment:
        loyalty = (data.get("parameters") or {}).get("loyalty") or {}
        return RewardAssignment(
            id=data.get("id"),
            reward_id=data.get("reward_id"),
            related_object_id=data.get("related_object_id"),
            related_object_type=data.get("related_object_type"),
            points=loyalty.get("points"),
            created_at=data.get("created_at"),
        )


class RewardSourceSchema(BaseSchema):
    id = Str()
    type = Str()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRewarded:
    customer: Customer | None = None
    holder: Customer | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    redemption: Redemption | None = None
    reward: RewardResult | None = None
    referral_tier: dict[str, Any] | None = None
    balance: dict[str, Any] | None = None
    custom_event: CustomEvent | None = None
    customer_event: dict[str, Any] | None = None


class CustomerRewardedDataSchema(BaseSchema):
    __model__ = CustomerRewarded

    customer = Nested(SimpleCustomerSchema)
    holder = Nested(SimpleCustomerSchema)
    voucher = Nested(SimpleVoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    redemption = Nested(RedemptionInternalSchema)
    reward = Nested(SimpleRedemptionRewardResultSchema)
    referral_tier = Nested(SimpleReferralTierSchema)
    balance = Object()
    custom_event = Nested(CustomEventSchema)
    customer_event = Object()


@dataclass(frozen=True)
class CustomerRewardedLoyaltyPoints:
    customer: Customer | None = None
    holder: Customer | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    loyalty_tier: LoyaltyTier | None = None
    earning_rule: EarningRule | None = None
    balance: Balance | None = None
    order: Order | None = None
    event: dict[str, Any] | None = None
    publication: Publication | None = None


class CustomerRewardedLoyaltyPointsDataSchema(BaseSchema):
    __model__ = CustomerRewardedLoyaltyPoints

    customer = Nested(SimpleCustomerSchema)
    holder = Nested(SimpleCustomerSchema)
    voucher = Nested(SimpleVoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    loyalty_tier = Nested(LoyaltyTierSchema)
    earning_rule = Nested(EarningRuleSchema)
    balance = Nested(BalanceSchema)
    order = Nested(OrderCalculatedSchema)
    event = Nested(EventRefDetailsSchema)
    publication = Nested(PublicationWithVoucherSchema)


@dataclass(frozen=True)
class CustomerRewardRedemptionsEvent:
    customer: Customer | None = None
    holder: Customer | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    reward_redemption: RewardRedemption | None = None
    reward: RewardResult | None = None
    reward_assignment: RewardAssignment | None = None
    source: dict[str, Any] | None = None
    balance: dict[str, Any] | None = None


@dataclass(frozen=True)
class CustomerRewardRedemptionsCreated(CustomerRewardRedemptionsEvent):
    pass


@dataclass(frozen=True)
class CustomerRewardRedemptionsPending(CustomerRewardRedemptionsEvent):
    pass


@dataclass(frozen=True)
class CustomerRewardRedemptionsCompleted(CustomerRewardRedemptionsEvent):
    publication: Publication | None = None


class _CustomerRewardRedemptionsDataSchema(BaseSchema):
    customer = Nested(SimpleCustomerSchema)
    holder = Nested(SimpleCustomerSchema)
    voucher = Nested(SimpleVoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    reward_redemption = Nested(RewardRedemptionSchema)
    reward = Nested(SimpleRedemptionRewardResultSchema)
    reward_assignment = Nested(RewardAssignmentSchema)
    source = Nested(RewardSourceSchema)
    balance = Object()


class CustomerRewardRedemptionsCreatedDataSchema(_CustomerRewardRedemptionsDataSchema):
    __model__ = CustomerRewardRedemptionsCreated


class CustomerRewardRedemptionsPendingDataSchema(_CustomerRewardRedemptionsDataSchema):
    __model__ = CustomerRewardRedemptionsPending


class CustomerRewardRedemptionsCompletedDataSchema(_CustomerRewardRedemptionsDataSchema):
    __model__ = CustomerRewardRedemptionsCompleted

    publication = Nested(PublicationWithVoucherSchema)
