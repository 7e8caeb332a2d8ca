"""Customers: the ``SimpleCustomer`` most events carry and the full customer of ``customer.*`` events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from marshmallow import fields

from schemas.base import (
    BaseSchema,
    Date,
    DateTime,
    Email,
    Integer,
    List,
    Metadata,
    Nested,
    Raw,
    Str,
)

__all__ = [
    "Customer",
    "CustomerAddressSchema",
    "CustomerCreated",
    "CustomerCreatedDataSchema",
    "CustomerDeleted",
    "CustomerDeletedDataSchema",
    "CustomerLoyaltySchema",
    "CustomerReferralsSchema",
    "CustomerSchema",
    "CustomerSummarySchema",
    "CustomerUpdated",
    "CustomerUpdatedDataSchema",
    "SimpleCustomerSchema",
]


@dataclass(frozen=True)
class Customer:
    """A customer as actions see it, whichever of the two shapes it arrived in."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    source_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    phone: str | None = None
    birthdate: date | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        # metadata is documented as "{} when empty", but null shows up too; actions should not have to care.
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class SimpleCustomerSchema(BaseSchema):
    """``SimpleCustomer``: ``id, name, email, source_id, metadata, object``."""

    __model__ = Customer

    id = Str()
    source_id = Str()
    name = Str()
    email = Email()
    metadata = Metadata()
    object = Str()


class CustomerAddressSchema(BaseSchema):
    city = Str()
    state = Str()
    line_1 = Str()
    line_2 = Str()
    country = Str()
    postal_code = Str()


class OrdersSummarySchema(BaseSchema):
    total_amount = Integer()
    total_count = Integer()
    average_amount = Integer()
    last_order_amount = Integer()
    last_order_date = DateTime()


class GiftRedemptionsSummarySchema(BaseSchema):
    redeemed_amount = Integer()
    amount_to_go = Integer()


class LoyaltyRedemptionsSummarySchema(BaseSchema):
    redeemed_points = Integer()
    points_to_go = Integer()


class RedemptionsSummarySchema(BaseSchema):
    total_redeemed = Integer()
    total_failed = Integer()
    total_succeeded = Integer()
    total_rolled_back = Integer()
    total_rollback_failed = Integer()
    total_rollback_succeeded = Integer()
    gift = Nested(GiftRedemptionsSummarySchema)
    loyalty_card = Nested(LoyaltyRedemptionsSummarySchema)


class CustomerSummarySchema(BaseSchema):
    redemptions = Nested(RedemptionsSummarySchema)
    orders = Nested(OrdersSummarySchema)


class CustomerLoyaltyCampaignSchema(BaseSchema):
    points = Integer()
    loyalty_tier = Str()
    referred_customers = Integer()
    redeemed_points = Integer()
    points_to_go = Integer()


class CustomerLoyaltySchema(BaseSchema):
    points = Integer()
    referred_customers = Integer()
    # Keyed by campaign *name* ("Loyalty programme"), not by id.
    campaigns = fields.Dict(
        keys=fields.String(), values=Nested(CustomerLoyaltyCampaignSchema), allow_none=True
    )


class CustomerReferralsSchema(BaseSchema):
    total = Integer()
    # The spec says a list of objects; the customer.updated example sends campaign id strings. Take either.
    campaigns = List(Raw())


class CustomerSchema(BaseSchema):
    """``CustomerWithSummaryLoyaltyReferrals``: the full customer of ``customer.created|updated|deleted``."""

    __model__ = Customer

    id = Str()
    source_id = Str()
    name = Str()
    email = Email()
    phone = Str()
    description = Str()
    birthdate = Date()
    birthday = Date()
    address = Nested(CustomerAddressSchema)
    summary = Nested(CustomerSummarySchema)
    loyalty = Nested(CustomerLoyaltySchema)
    referrals = Nested(CustomerReferralsSchema)
    metadata = Metadata()
    system_metadata = Metadata()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerChange:
    customer: Customer | None = None


@dataclass(frozen=True)
class CustomerCreated(CustomerChange):
    pass


@dataclass(frozen=True)
class CustomerUpdated(CustomerChange):
    pass


@dataclass(frozen=True)
class CustomerDeleted(CustomerChange):
    pass


class _CustomerChangeDataSchema(BaseSchema):
    customer = Nested(CustomerSchema)


class CustomerCreatedDataSchema(_CustomerChangeDataSchema):
    __model__ = CustomerCreated


class CustomerUpdatedDataSchema(_CustomerChangeDataSchema):
    __model__ = CustomerUpdated


class CustomerDeletedDataSchema(_CustomerChangeDataSchema):
    __model__ = CustomerDeleted
