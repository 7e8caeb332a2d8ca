"""Loyalty cards: points added, expired, pending, and loyalty-card transactions.

Each ``voucher.loyalty_card.*`` event (project webhooks) has a ``customer.voucher.loyalty_card.*`` twin that
distribution webhooks deliver with the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.base import BaseSchema, Integer, Nested, OneOrMany
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.custom_event import CustomEvent, CustomEventSchema
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.loyalty import (
    EarningRule,
    EventRefDetailsSchema,
    LoyaltyPendingPointsSchema,
    LoyaltyPointsBucketSchema,
    LoyaltyTier,
    LoyaltyTierSchema,
    PendingPoints,
    PointsBucket,
    SimpleEarningRuleSchema,
)
from schemas.order import Order, SimpleOrderSchema
from schemas.redemption import Redemption, SimpleRedemptionSchema
from schemas.reward import RewardSchema
from schemas.segment import Segment, SimpleSegmentSchema
from schemas.transaction import Balance, BalanceSchema, Transaction, VoucherTransactionSchema
from schemas.voucher import SimpleVoucherSchema, Voucher, VoucherSchema

__all__ = [
    "CustomerVoucherLoyaltyCardPendingPointsActivated",
    "CustomerVoucherLoyaltyCardPendingPointsActivatedDataSchema",
    "CustomerVoucherLoyaltyCardPendingPointsAdded",
    "CustomerVoucherLoyaltyCardPendingPointsAddedDataSchema",
    "CustomerVoucherLoyaltyCardPendingPointsCanceled",
    "CustomerVoucherLoyaltyCardPendingPointsCanceledDataSchema",
    "CustomerVoucherLoyaltyCardPendingPointsUpdated",
    "CustomerVoucherLoyaltyCardPendingPointsUpdatedDataSchema",
    "CustomerVoucherLoyaltyCardPointsAdded",
    "CustomerVoucherLoyaltyCardPointsAddedDataSchema",
    "CustomerVoucherLoyaltyCardPointsExpired",
    "CustomerVoucherLoyaltyCardPointsExpiredDataSchema",
    "VoucherLoyaltyCardPendingPointsActivated",
    "VoucherLoyaltyCardPendingPointsActivatedDataSchema",
    "VoucherLoyaltyCardPendingPointsAdded",
    "VoucherLoyaltyCardPendingPointsAddedDataSchema",
    "VoucherLoyaltyCardPendingPointsCanceled",
    "VoucherLoyaltyCardPendingPointsCanceledDataSchema",
    "VoucherLoyaltyCardPendingPointsUpdated",
    "VoucherLoyaltyCardPendingPointsUpdatedDataSchema",
    "VoucherLoyaltyCardPointsAdded",
    "VoucherLoyaltyCardPointsAddedDataSchema",
    "VoucherLoyaltyCardPointsExpired",
    "VoucherLoyaltyCardPointsExpiredDataSchema",
    "VoucherLoyaltyCardTransactionCreated",
    "VoucherLoyaltyCardTransactionCreatedDataSchema",
]


# --- points added ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyCardPointsAdded:
    customer: Customer | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    balance: Balance | None = None
    transaction: Transaction | None = None


@dataclass(frozen=True)
class VoucherLoyaltyCardPointsAdded(LoyaltyCardPointsAdded):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPointsAdded(LoyaltyCardPointsAdded):
    pass


class VoucherLoyaltyCardPointsAddedDataSchema(BaseSchema):
    __model__ = VoucherLoyaltyCardPointsAdded

    customer = Nested(SimpleCustomerSchema)
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    balance = Nested(BalanceSchema)
    transaction = Nested(VoucherTransactionSchema)


class CustomerVoucherLoyaltyCardPointsAddedDataSchema(BaseSchema):
    __model__ = CustomerVoucherLoyaltyCardPointsAdded

    # Required (customer, campaign, voucher, transaction nullable) by the spec; in every example.
    customer = Nested(SimpleCustomerSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    voucher = Nested(SimpleVoucherSchema, required=True)
    balance = Nested(BalanceSchema, required=True)
    transaction = Nested(VoucherTransactionSchema, required=True)


# --- points expired -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyCardPointsExpired:
    customer: Customer | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    points: int | None = None
    buckets: tuple[PointsBucket, ...] = ()
    transaction: Transaction | None = None

    def __post_init__(self) -> None:
        if self.buckets is None:
            object.__setattr__(self, "buckets", ())


@dataclass(frozen=True)
class VoucherLoyaltyCardPointsExpired(LoyaltyCardPointsExpired):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPointsExpired(LoyaltyCardPointsExpired):
    pass


class _LoyaltyCardPointsExpiredDataSchema(BaseSchema):
    # Required (customer, campaign, voucher, transaction nullable) by the spec; in every example.
    customer = Nested(SimpleCustomerSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    voucher = Nested(SimpleVoucherSchema, required=True)
    points = Integer(required=True)
    # An array in both examples; the spec makes it a single object for voucher.loyalty_card.points_expired.
    buckets = OneOrMany(Nested(LoyaltyPointsBucketSchema), required=True)
    transaction = Nested(VoucherTransactionSchema, required=True)


class VoucherLoyaltyCardPointsExpiredDataSchema(_LoyaltyCardPointsExpiredDataSchema):
    __model__ = VoucherLoyaltyCardPointsExpired


class CustomerVoucherLoyaltyCardPointsExpiredDataSchema(_LoyaltyCardPointsExpiredDataSchema):
    __model__ = CustomerVoucherLoyaltyCardPointsExpired


# --- pending points -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyCardPendingPointsEvent:
    customer: Customer | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    order: Order | None = None
    pending_points: PendingPoints | None = None
    # `balance` after activation, `voucher_pending_points_balance` for added/canceled/updated (the
    # customer.* activated example carries the latter too).
    balance: Balance | None = None
    voucher_pending_points_balance: Balance | None = None
    transaction: Transaction | None = None


@dataclass(frozen=True)
class VoucherLoyaltyCardPendingPointsActivated(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class VoucherLoyaltyCardPendingPointsAdded(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class VoucherLoyaltyCardPendingPointsCanceled(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class VoucherLoyaltyCardPendingPointsUpdated(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPendingPointsActivated(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPendingPointsAdded(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPendingPointsCanceled(LoyaltyCardPendingPointsEvent):
    pass


@dataclass(frozen=True)
class CustomerVoucherLoyaltyCardPendingPointsUpdated(LoyaltyCardPendingPointsEvent):
    pass


class _PendingPointsDataSchema(BaseSchema):
    # Required by the spec and present in every example of the eight pending-points types.
    customer = Nested(SimpleCustomerSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    voucher = Nested(SimpleVoucherSchema, required=True)
    order = Nested(SimpleOrderSchema, required=True)
    pending_points = Nested(LoyaltyPendingPointsSchema, required=True)
    balance = Nested(BalanceSchema)
    voucher_pending_points_balance = Nested(BalanceSchema)
    transaction = Nested(VoucherTransactionSchema)


class _PendingPointsChangedDataSchema(_PendingPointsDataSchema):
    # Required by the spec and present in every added/canceled/updated example.
    voucher_pending_points_balance = Nested(BalanceSchema, required=True)


class VoucherLoyaltyCardPendingPointsActivatedDataSchema(_PendingPointsDataSchema):
    __model__ = VoucherLoyaltyCardPendingPointsActivated

    # Required by the spec and present in this example (not in its customer.* twin's).
    balance = Nested(BalanceSchema, required=True)
    transaction = Nested(VoucherTransactionSchema, required=True)


class CustomerVoucherLoyaltyCardPendingPointsActivatedDataSchema(_PendingPointsDataSchema):
    # The spec requires balance and transaction too, but its own example has neither (it has
    # voucher_pending_points_balance instead), so they stay optional here.
    __model__ = CustomerVoucherLoyaltyCardPendingPointsActivated


class VoucherLoyaltyCardPendingPointsAddedDataSchema(_PendingPointsChangedDataSchema):
    __model__ = VoucherLoyaltyCardPendingPointsAdded


class VoucherLoyaltyCardPendingPointsCanceledDataSchema(_PendingPointsChangedDataSchema):
    __model__ = VoucherLoyaltyCardPendingPointsCanceled


class VoucherLoyaltyCardPendingPointsUpdatedDataSchema(_PendingPointsChangedDataSchema):
    # The spec's example for this type is labelled "...pending_points.canceled" (a naming slip in the spec).
    __model__ = VoucherLoyaltyCardPendingPointsUpdated


class CustomerVoucherLoyaltyCardPendingPointsAddedDataSchema(_PendingPointsChangedDataSchema):
    __model__ = CustomerVoucherLoyaltyCardPendingPointsAdded


class CustomerVoucherLoyaltyCardPendingPointsCanceledDataSchema(_PendingPointsChangedDataSchema):
    __model__ = CustomerVoucherLoyaltyCardPendingPointsCanceled


class CustomerVoucherLoyaltyCardPendingPointsUpdatedDataSchema(_PendingPointsChangedDataSchema):
    __model__ = CustomerVoucherLoyaltyCardPendingPointsUpdated


# --- transactions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherLoyaltyCardTransactionCreated:
    transaction: Transaction | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    holder: Customer | None = None
    holder_loyalty_tier: LoyaltyTier | None = None
    balance: Balance | None = None
    order: Order | None = None
    event: dict[str, Any] | None = None
    earning_rule: EarningRule | None = None
    segment: Segment | None = None
    loyalty_tier: LoyaltyTier | None = None
    redemption: Redemption | None = None
    rollback: Redemption | None = None
    reward: dict[str, Any] | None = None
    custom_event: CustomEvent | None = None
    source_voucher: Voucher | None = None
    destination_voucher: Voucher | None = None


class VoucherLoyaltyCardTransactionCreatedDataSchema(BaseSchema):
    """``voucher.loyalty_card.transaction.created``: every key required (and nullable) by the spec and
    present in its example; which ones are non-null depends on the transaction type."""

    __model__ = VoucherLoyaltyCardTransactionCreated

    transaction = Nested(VoucherTransactionSchema, required=True)
    voucher = Nested(VoucherSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    holder = Nested(SimpleCustomerSchema, required=True)
    holder_loyalty_tier = Nested(LoyaltyTierSchema, required=True)
    balance = Nested(BalanceSchema, required=True)
    order = Nested(SimpleOrderSchema, required=True)
    event = Nested(EventRefDetailsSchema, required=True)
    earning_rule = Nested(SimpleEarningRuleSchema, required=True)
    segment = Nested(SimpleSegmentSchema, required=True)
    loyalty_tier = Nested(LoyaltyTierSchema, required=True)
    redemption = Nested(SimpleRedemptionSchema, required=True)
    rollback = Nested(SimpleRedemptionSchema, required=True)
    reward = Nested(RewardSchema, required=True)
    custom_event = Nested(CustomEventSchema, required=True)
    source_voucher = Nested(SimpleVoucherSchema, required=True)
    destination_voucher = Nested(SimpleVoucherSchema, required=True)
