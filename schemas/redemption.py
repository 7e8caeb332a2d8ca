"""Redemptions (and their rollbacks) and the ``redemption.*`` / ``customer.redemption.*`` events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import BaseSchema, DateTime, Integer, Metadata, Nested, Object, Str
from schemas.campaign import (
    Campaign,
    PromotionTier,
    PromotionTierSchema,
    SimpleCampaignSchema,
    SimplePromotionTierSchema,
)
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.order import Order, OrderCalculatedSchema, ProductRefSchema, SimpleOrderSchema, SkuRefSchema
from schemas.voucher import SimpleVoucherSchema, Voucher, VoucherSchema

__all__ = [
    "CustomerRedemptionRollbackSucceeded",
    "CustomerRedemptionRollbackSucceededDataSchema",
    "CustomerRedemptionSucceeded",
    "CustomerRedemptionSucceededDataSchema",
    "Redemption",
    "RedemptionFailed",
    "RedemptionFailedDataSchema",
    "RedemptionInternalSchema",
    "RedemptionRollbackFailed",
    "RedemptionRollbackFailedDataSchema",
    "RedemptionRollbackSucceeded",
    "RedemptionRollbackSucceededDataSchema",
    "RedemptionSucceeded",
    "RedemptionSucceededDataSchema",
    "RewardResult",
    "SimplePromotionStackSchema",
    "SimpleRedemptionRewardResultSchema",
    "SimpleRedemptionSchema",
]


@dataclass(frozen=True)
class RewardResult:
    """The reward a redemption gave (a product, a voucher, points ...)."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    assignment_id: str | None = None
    loyalty_tier_id: str | None = None
    voucher: Voucher | None = None
    customer: Customer | None = None


class SimpleRedemptionRewardResultSchema(BaseSchema):
    """``SimpleRedemptionRewardResult`` / ``RedemptionRewardResult``."""

    __model__ = RewardResult

    id = Str()
    name = Str()
    type = Str()
    assignment_id = Str()
    loyalty_tier_id = Str()
    customer = Nested(SimpleCustomerSchema)
    voucher = Nested(SimpleVoucherSchema)
    product = Nested(ProductRefSchema)
    sku = Nested(SkuRefSchema)
    parameters = Object()
    metadata = Metadata()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


@dataclass(frozen=True)
class Redemption:
    """A redemption or a redemption rollback.

    ``status`` is taken as sent: the examples say ``ROLLED_BACK`` where the spec's enum says ``ROLLED BACK``.
    """

    id: str | None
    status: str | None = None
    result: str | None = None
    date: datetime | None = None
    customer_id: str | None = None
    tracking_id: str | None = None
    amount: int | None = None
    # For a rollback: the id of the redemption rolled back.
    redemption: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    customer: Customer | None = None
    voucher: Voucher | None = None
    order: Order | None = None
    reward: RewardResult | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class RedemptionChannelSchema(BaseSchema):
    channel_id = Str()
    channel_type = Str()


class SimpleRedemptionSchema(BaseSchema):
    """``SimpleRedemption``."""

    __model__ = Redemption

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    customer_id = Str()
    tracking_id = Str()
    date = DateTime()
    amount = Integer()
    order = Nested(SimpleOrderSchema)
    reward = Nested(SimpleRedemptionRewardResultSchema)
    customer = Nested(SimpleCustomerSchema)
    result = Str()
    # Not an enum here: the examples send ROLLED_BACK, the spec's enum spells it "ROLLED BACK".
    status = Str()
    voucher = Nested(SimpleVoucherSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)
    redemption = Str()
    metadata = Metadata()
    failure_code = Str()
    failure_message = Str()
    reason = Str()
    channel = Nested(RedemptionChannelSchema)
    object = Str()


class RedemptionInternalSchema(BaseSchema):
    """``RedemptionInternal``: the redemption behind a reward or an order (full voucher, calculated order)."""

    __model__ = Redemption

    id = Str()
    object = Str()
    date = DateTime()
    created_at = DateTime()
    tracking_id = Str()
    metadata = Metadata()
    channel_type = Str()
    channel_id = Str()
    failure_code = Str()
    failure_message = Str()
    order = Nested(OrderCalculatedSchema)
    previous_order = Nested(OrderCalculatedSchema)
    reward = Nested(SimpleRedemptionRewardResultSchema)
    amount = Integer()
    reason = Str()
    result = Str()
    status = Str()
    related_redemptions = Object()
    parent_redemption_id = Str()
    redemption = Str()
    customer = Nested(SimpleCustomerSchema)
    customer_id = Str()
    related_object_type = Str()
    related_object_id = Str()
    related_object_parent_id = Str()
    campaign_name = Str()
    voucher = Nested(VoucherSchema)
    promotion_tier = Nested(PromotionTierSchema)

    def build(self, data: dict[str, Any]) -> Redemption:
        # RedemptionInternal does not require an id; Redemption keeps the attribute, possibly None.
        return super().build({"id": None, **data})


class SimplePromotionStackSchema(BaseSchema):
    id = Str()
    name = Str()
    category_id = Str()
    campaign = Object()
    tiers = Object()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedemptionEvent:
    customer: Customer | None = None
    order: Order | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    holder: Customer | None = None
    promotion_tier: PromotionTier | None = None
    promotion_stack: dict[str, Any] | None = None
    redemption: Redemption | None = None


@dataclass(frozen=True)
class RedemptionSucceeded(RedemptionEvent):
    created_at: datetime | None = None


@dataclass(frozen=True)
class RedemptionFailed(RedemptionEvent):
    created_at: datetime | None = None


@dataclass(frozen=True)
class CustomerRedemptionSucceeded(RedemptionEvent):
    pass


@dataclass(frozen=True)
class RedemptionRollbackEvent(RedemptionEvent):
    redemption_rollback: Redemption | None = None


@dataclass(frozen=True)
class RedemptionRollbackSucceeded(RedemptionRollbackEvent):
    pass


@dataclass(frozen=True)
class RedemptionRollbackFailed(RedemptionRollbackEvent):
    pass


@dataclass(frozen=True)
class CustomerRedemptionRollbackSucceeded(RedemptionRollbackEvent):
    pass


class _RedemptionDataSchema(BaseSchema):
    customer = Nested(SimpleCustomerSchema)
    order = Nested(SimpleOrderSchema)
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    holder = Nested(SimpleCustomerSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)
    promotion_stack = Nested(SimplePromotionStackSchema)
    redemption = Nested(SimpleRedemptionSchema)


class _RedemptionRollbackDataSchema(_RedemptionDataSchema):
    redemption_rollback = Nested(SimpleRedemptionSchema)


class RedemptionSucceededDataSchema(_RedemptionDataSchema):
    __model__ = RedemptionSucceeded

    created_at = DateTime()


class RedemptionFailedDataSchema(_RedemptionDataSchema):
    __model__ = RedemptionFailed

    created_at = DateTime()


class CustomerRedemptionSucceededDataSchema(_RedemptionDataSchema):
    __model__ = CustomerRedemptionSucceeded


class RedemptionRollbackSucceededDataSchema(_RedemptionRollbackDataSchema):
    __model__ = RedemptionRollbackSucceeded


class RedemptionRollbackFailedDataSchema(_RedemptionRollbackDataSchema):
    __model__ = RedemptionRollbackFailed


class CustomerRedemptionRollbackSucceededDataSchema(_RedemptionRollbackDataSchema):
    __model__ = CustomerRedemptionRollbackSucceeded
