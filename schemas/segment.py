"""Customer segments and ``customer.segment.entered|left``."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import BaseSchema, Nested, Str
from schemas.campaign import Campaign, PromotionTier, SimpleCampaignSchema, SimplePromotionTierSchema
from schemas.customer import Customer, CustomerSchema
from schemas.publication import Publication, PublicationSchema
from schemas.voucher import SimpleVoucherSchema, Voucher

__all__ = [
    "CustomerSegmentEntered",
    "CustomerSegmentEnteredDataSchema",
    "CustomerSegmentLeft",
    "CustomerSegmentLeftDataSchema",
    "Segment",
    "SimpleSegmentSchema",
]


@dataclass(frozen=True)
class Segment:
    id: str
    name: str | None = None


class SimpleSegmentSchema(BaseSchema):
    """``SimpleSegment``."""

    __model__ = Segment

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    name = Str()
    object = Str()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerSegmentEvent:
    customer: Customer | None = None
    segment: Segment | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    publication: Publication | None = None
    promotion_tier: PromotionTier | None = None


@dataclass(frozen=True)
class CustomerSegmentEntered(CustomerSegmentEvent):
    pass


@dataclass(frozen=True)
class CustomerSegmentLeft(CustomerSegmentEvent):
    pass


class _CustomerSegmentDataSchema(BaseSchema):
    # Required by the spec and present in every example.
    customer = Nested(CustomerSchema, required=True)
    segment = Nested(SimpleSegmentSchema, required=True)
    # Present when the distribution's purpose adds them.
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    publication = Nested(PublicationSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)


class CustomerSegmentEnteredDataSchema(_CustomerSegmentDataSchema):
    __model__ = CustomerSegmentEntered


class CustomerSegmentLeftDataSchema(_CustomerSegmentDataSchema):
    __model__ = CustomerSegmentLeft
