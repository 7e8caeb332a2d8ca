"""Publications (a voucher handed to a customer) and the events that announce them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import BaseSchema, DateTime, List, Metadata, Nested, Object, Str
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.customer import Customer, CustomerSchema, SimpleCustomerSchema
from schemas.voucher import SimpleVoucherSchema, Voucher, VoucherSchema

__all__ = [
    "Campaign",
    "Customer",
    "CustomerPublicationSucceeded",
    "CustomerPublicationSucceededDataSchema",
    "Publication",
    "PublicationSchema",
    "PublicationSucceeded",
    "PublicationSucceededDataSchema",
    "PublicationWithVoucherSchema",
    "Voucher",
    "VoucherPublished",
    "VoucherPublishedDataSchema",
]


@dataclass(frozen=True)
class Publication:
    id: str
    customer_id: str | None = None
    customer: Customer | None = None
    vouchers_id: tuple[str, ...] = ()
    voucher: Voucher | None = None
    channel: str | None = None
    source_id: str | None = None
    tracking_id: str | None = None
    result: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.vouchers_id is None:
            object.__setattr__(self, "vouchers_id", ())
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class PublicationSchema(BaseSchema):
    """``ListPublicationsItemBase`` / ``PublicationsDistributionItemBase`` (identical field lists)."""

    __model__ = Publication

    # Required by every publication schema and present in every example.
    id = Str(required=True, allow_none=False)
    object = Str()
    created_at = DateTime()
    customer_id = Str()
    tracking_id = Str()
    metadata = Metadata()
    channel = Str()
    source_id = Str()
    result = Str()
    # The full customer shape, with summary/loyalty/referrals/address null in every example.
    customer = Nested(CustomerSchema)
    vouchers_id = List(Str(allow_none=False))


class PublicationWithVoucherSchema(PublicationSchema):
    """``PublicationsVoucher``: a publication that embeds the full voucher it published."""

    voucher = Nested(VoucherSchema)


def combine_vouchers(listed: Iterable[Voucher] | None, single: Voucher | None) -> tuple[Voucher, ...]:
    """The ``vouchers`` list plus ``voucher`` when that one is not already listed (same id, or same code)."""
    combined = tuple(v for v in listed or () if v is not None)
    if single is None:
        return combined
    for v in combined:
        if (single.id is not None and v.id == single.id) or (
            single.code is not None and v.code == single.code
        ):
            return combined
    return (*combined, single)


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationSucceeded:
    """``publication.succeeded``: ``vouchers`` is the ``vouchers`` list plus ``voucher`` (deduplicated)."""

    customer: Customer | None = None
    campaign: Campaign | None = None
    publication: Publication | None = None
    vouchers: tuple[Voucher, ...] = ()
    user: dict[str, Any] | None = None


@dataclass(frozen=True)
class VoucherPublished:
    """``voucher.published``: one ``voucher``, offered as the one-element ``vouchers`` too."""

    customer: Customer | None = None
    campaign: Campaign | None = None
    publication: Publication | None = None
    vouchers: tuple[Voucher, ...] = ()
    created_at: datetime | None = None


class _PublishedDataSchema(BaseSchema):
    customer = Nested(SimpleCustomerSchema)
    campaign = Nested(SimpleCampaignSchema)
    publication = Nested(PublicationSchema)
    # publication.succeeded carries a list (the spec documents only `voucher`); voucher.published one voucher.
    vouchers = List(Nested(SimpleVoucherSchema))
    voucher = Nested(SimpleVoucherSchema)

    def build(self, data: dict[str, Any]) -> Any:
        data = dict(data)
        data["vouchers"] = combine_vouchers(data.get("vouchers"), data.pop("voucher", None))
        return super().build(data)


class PublicationSucceededDataSchema(_PublishedDataSchema):
    __model__ = PublicationSucceeded

    user = Object()


class VoucherPublishedDataSchema(_PublishedDataSchema):
    __model__ = VoucherPublished

    created_at = DateTime()


@dataclass(frozen=True)
class CustomerPublicationSucceeded:
    customer: Customer | None = None
    campaign: Campaign | None = None
    publication: Publication | None = None
    voucher: Voucher | None = None


class CustomerPublicationSucceededDataSchema(BaseSchema):
    """``customer.publication.succeeded`` (distribution webhooks).

    All four keys are required: the spec requires them and every standard example has them. A Payload
    designer body (``{"To": ..., "Subject": ...}`` under ``data``) therefore fails here, field by field,
    rather than loading as an event whose customer, campaign and voucher are all silently ``None``.
    """

    __model__ = CustomerPublicationSucceeded

    customer = Nested(SimpleCustomerSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    publication = Nested(PublicationWithVoucherSchema, required=True)
    voucher = Nested(SimpleVoucherSchema, required=True)
