"""Custom events (tracked by the customer's own integration) and ``customer.custom_event``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import BaseSchema, DateTime, Metadata, Nested, Object, Str
from schemas.campaign import Campaign, PromotionTier, SimpleCampaignSchema, SimplePromotionTierSchema
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.publication import Publication, PublicationSchema
from schemas.voucher import SimpleVoucherSchema, Voucher

__all__ = [
    "CustomEvent",
    "CustomEventSchema",
    "CustomerCustomEvent",
    "CustomerCustomEventDataSchema",
    "SimpleCustomEventSchema",
]


@dataclass(frozen=True)
class CustomEvent:
    id: str | None = None
    type: str | None = None
    customer_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class CustomEventSchema(BaseSchema):
    """``CustomEvent``."""

    __model__ = CustomEvent

    id = Str()
    object = Str()
    type = Str()
    customer = Nested(SimpleCustomerSchema)
    referral = Object()
    loyalty = Object()
    metadata = Metadata()
    created_at = DateTime()

    def build(self, data: dict[str, Any]) -> CustomEvent:
        customer = data.get("customer")
        return CustomEvent(
            id=data.get("id"),
            type=data.get("type"),
            customer_id=customer.id if customer is not None else None,
            metadata=data.get("metadata") or {},
            created_at=data.get("created_at"),
        )


class SimpleCustomEventSchema(BaseSchema):
    """``SimpleCustomEvent``: the custom event's schema (its definition), by id and name."""

    id = Str()
    name = Str()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerCustomEvent:
    event: CustomEvent | None = None
    event_schema: dict[str, Any] | None = None
    customer: Customer | None = None
    referral: dict[str, Any] | None = None
    loyalty: dict[str, Any] | None = None
    campaign: Campaign | None = None
    voucher: Voucher | None = None
    publication: Publication | None = None
    promotion_tier: PromotionTier | None = None


class CustomerCustomEventDataSchema(BaseSchema):
    """``customer.custom_event`` (distribution webhooks)."""

    __model__ = CustomerCustomEvent

    # Required (referral and loyalty nullable) by the spec and present in every example.
    event = Nested(CustomEventSchema, required=True)
    event_schema = Nested(SimpleCustomEventSchema, required=True)
    customer = Nested(SimpleCustomerSchema, required=True)
    referral = Object(required=True)
    loyalty = Object(required=True)
    # Present when the distribution's purpose adds them.
    campaign = Nested(SimpleCampaignSchema)
    voucher = Nested(SimpleVoucherSchema)
    publication = Nested(PublicationSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)
