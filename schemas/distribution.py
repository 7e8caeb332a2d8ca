"""Distributions (Voucherify's "send this to customers" automations) and distribution-only events.

``customer.order.*`` lives here rather than in ``schemas.order``: its data embeds a ``RedemptionInternal``,
and ``schemas.redemption`` itself builds on ``schemas.order``; keeping imports one-way puts it at this level.
Like every distribution event it may carry the distribution's context (``campaign``, ``voucher``,
``publication``, ``promotion_tier``) depending on the distribution's purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.base import BaseSchema, Bool, DateTime, Nested, Object, OneOrMany, Str
from schemas.campaign import Campaign, PromotionTier, SimpleCampaignSchema, SimplePromotionTierSchema
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.order import Order, OrderCalculatedSchema
from schemas.publication import Publication, PublicationSchema
from schemas.redemption import Redemption, RedemptionInternalSchema
from schemas.voucher import SimpleVoucherSchema, Voucher

__all__ = [
    "CustomerOrderCanceled",
    "CustomerOrderCanceledDataSchema",
    "CustomerOrderCreated",
    "CustomerOrderCreatedDataSchema",
    "CustomerOrderPaid",
    "CustomerOrderPaidDataSchema",
    "CustomerOrderUpdated",
    "CustomerOrderUpdatedDataSchema",
    "Distribution",
    "ManualDistributionSchedule",
    "ManualDistributionScheduleDataSchema",
    "SimpleDistributionSchema",
]


@dataclass(frozen=True)
class Distribution:
    id: str | None = None
    status: str | None = None
    distribution_channels: tuple[str, ...] = ()
    set_live_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.distribution_channels is None:
            object.__setattr__(self, "distribution_channels", ())


class ConsentsSchema(BaseSchema):
    disabled = Bool()


class SimpleDistributionSchema(BaseSchema):
    """``SimpleDistribution``."""

    __model__ = Distribution

    id = Str()
    status = Str()
    parameters = Object()
    consents = Nested(ConsentsSchema)
    set_live_at = DateTime()
    # The spec says an enum string; the example sends ["webhook"]. Either loads as a tuple.
    distribution_channels = OneOrMany(Str(allow_none=False))
    created_at = DateTime()
    updated_at = DateTime()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualDistributionSchedule:
    distribution: Distribution | None = None
    customer: Customer | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    publication: Publication | None = None
    promotion_tier: PromotionTier | None = None


class ManualDistributionScheduleDataSchema(BaseSchema):
    __model__ = ManualDistributionSchedule

    # Required by the spec and present in the example.
    distribution = Nested(SimpleDistributionSchema, required=True)
    customer = Nested(SimpleCustomerSchema)
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    publication = Nested(PublicationSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)


@dataclass(frozen=True)
class CustomerOrderEvent:
    customer: Customer | None = None
    referrer: Customer | None = None
    order: Order | None = None
    redemption: Redemption | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    publication: Publication | None = None
    promotion_tier: PromotionTier | None = None


@dataclass(frozen=True)
class CustomerOrderCreated(CustomerOrderEvent):
    pass


@dataclass(frozen=True)
class CustomerOrderUpdated(CustomerOrderEvent):
    pass


@dataclass(frozen=True)
class CustomerOrderPaid(CustomerOrderEvent):
    pass


@dataclass(frozen=True)
class CustomerOrderCanceled(CustomerOrderEvent):
    pass


class _CustomerOrderDataSchema(BaseSchema):
    # Required by the spec and present in every example (referrer and redemption as null).
    customer = Nested(SimpleCustomerSchema, required=True)
    referrer = Nested(SimpleCustomerSchema, required=True)
    order = Nested(OrderCalculatedSchema, required=True)
    redemption = Nested(RedemptionInternalSchema, required=True)
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    publication = Nested(PublicationSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)


class CustomerOrderCreatedDataSchema(_CustomerOrderDataSchema):
    __model__ = CustomerOrderCreated


class CustomerOrderUpdatedDataSchema(_CustomerOrderDataSchema):
    __model__ = CustomerOrderUpdated


class CustomerOrderPaidDataSchema(_CustomerOrderDataSchema):
    __model__ = CustomerOrderPaid


class CustomerOrderCanceledDataSchema(_CustomerOrderDataSchema):
    __model__ = CustomerOrderCanceled
