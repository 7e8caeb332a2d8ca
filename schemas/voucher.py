"""Vouchers: the full ``Voucher`` of ``voucher.*`` events and the ``SimpleVoucher`` other events carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import (
    BaseSchema,
    Bool,
    DateTime,
    Integer,
    List,
    Metadata,
    Nested,
    Str,
)
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.common import (
    CategorySchema,
    DiscountSchema,
    GiftSchema,
    ListRefSchema,
    LoyaltyCardSchema,
    RedemptionQuotaSchema,
    ValidationRulesAssignmentsListSchema,
    ValidityHoursSchema,
    ValidityTimeframeSchema,
)
from schemas.customer import Customer, SimpleCustomerSchema

__all__ = [
    "CustomerHolderAssignmentCreated",
    "CustomerHolderAssignmentCreatedDataSchema",
    "CustomerHolderAssignmentDeleted",
    "CustomerHolderAssignmentDeletedDataSchema",
    "RedeemableHolder",
    "SimpleRedeemableHolderSchema",
    "SimpleVoucherSchema",
    "Voucher",
    "VoucherCreated",
    "VoucherCreatedDataSchema",
    "VoucherDeleted",
    "VoucherDeletedDataSchema",
    "VoucherDisabled",
    "VoucherDisabledDataSchema",
    "VoucherEnabled",
    "VoucherEnabledDataSchema",
    "VoucherSchema",
    "VoucherUpdated",
    "VoucherUpdatedDataSchema",
]


@dataclass(frozen=True)
class Voucher:
    """A voucher as actions see it.

    ``campaign`` is the campaign *name* (that is what Voucherify puts there); ``campaign_id`` is the id.
    """

    id: str | None = None
    code: str | None = None
    campaign: str | None = None
    campaign_id: str | None = None
    type: str | None = None
    active: bool | None = None
    holder_id: str | None = None
    category_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    expiration_date: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class SimpleVoucherSchema(BaseSchema):
    """``SimpleVoucher``: the voucher summary embedded in most events."""

    __model__ = Voucher

    id = Str()
    # Required by the spec and present in every example: a voucher without a code is not a voucher.
    code = Str(required=True, allow_none=False)
    type = Str()
    campaign = Str()
    campaign_id = Str()
    category = Str()
    category_id = Str()
    categories = List(Nested(CategorySchema))
    discount = Nested(DiscountSchema)
    gift = Nested(GiftSchema)
    loyalty_card = Nested(LoyaltyCardSchema)
    is_referral_code = Bool()
    holder_id = Str()
    referrer_id = Str()
    active = Bool()
    redemption = Nested(RedemptionQuotaSchema)
    start_date = DateTime()
    expiration_date = DateTime()
    metadata = Metadata()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class VoucherAssetSchema(BaseSchema):
    id = Str()
    # Can be a literal template ("{{voucher_qr_code.url}}") in Voucherify's examples: not validated as a URL.
    url = Str()


class VoucherAssetsSchema(BaseSchema):
    qr = Nested(VoucherAssetSchema)
    barcode = Nested(VoucherAssetSchema)


class VoucherSchema(SimpleVoucherSchema):
    """``Voucher``: the full voucher of ``voucher.created|updated|enabled|disabled|deleted``, transactions."""

    # The full Voucher schema requires nothing, so neither do we (SimpleVoucher does require a code).
    code = Str()
    validity_timeframe = Nested(ValidityTimeframeSchema)
    validity_day_of_week = List(Integer())
    validity_hours = Nested(ValidityHoursSchema)
    additional_info = Str()
    assets = Nested(VoucherAssetsSchema)
    publish = Nested(ListRefSchema)
    validation_rules_assignments = Nested(ValidationRulesAssignmentsListSchema)


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherChange:
    voucher: Voucher | None = None
    campaign: Campaign | None = None


@dataclass(frozen=True)
class VoucherCreated(VoucherChange):
    pass


@dataclass(frozen=True)
class VoucherUpdated(VoucherChange):
    pass


@dataclass(frozen=True)
class VoucherEnabled(VoucherChange):
    pass


@dataclass(frozen=True)
class VoucherDisabled(VoucherChange):
    pass


@dataclass(frozen=True)
class VoucherDeleted(VoucherChange):
    pass


class _VoucherChangeDataSchema(BaseSchema):
    voucher = Nested(VoucherSchema)
    campaign = Nested(SimpleCampaignSchema)


class VoucherCreatedDataSchema(_VoucherChangeDataSchema):
    __model__ = VoucherCreated


class VoucherUpdatedDataSchema(_VoucherChangeDataSchema):
    __model__ = VoucherUpdated


class VoucherEnabledDataSchema(_VoucherChangeDataSchema):
    __model__ = VoucherEnabled


class VoucherDisabledDataSchema(_VoucherChangeDataSchema):
    __model__ = VoucherDisabled


class VoucherDeletedDataSchema(_VoucherChangeDataSchema):
    __model__ = VoucherDeleted


# --- holders --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedeemableHolder:
    """A customer's role on a voucher (``OWNER``, ``REFERRER`` ...)."""

    id: str
    redeemable_id: str | None = None
    redeemable_object: str | None = None
    campaign_id: str | None = None
    campaign_type: str | None = None
    voucher_type: str | None = None
    customer_id: str | None = None
    publication_id: str | None = None
    holder_role: str | None = None
    created_at: datetime | None = None


class SimpleRedeemableHolderSchema(BaseSchema):
    """``SimpleRedeemableHolder``."""

    __model__ = RedeemableHolder

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    redeemable_id = Str()
    redeemable_object = Str()
    campaign_id = Str()
    campaign_type = Str()
    voucher_type = Str()
    customer_id = Str()
    publication_id = Str()
    holder_role = Str()
    created_at = DateTime()
    object = Str()


@dataclass(frozen=True)
class CustomerHolderAssignmentEvent:
    holder: RedeemableHolder | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    customer: Customer | None = None


@dataclass(frozen=True)
class CustomerHolderAssignmentCreated(CustomerHolderAssignmentEvent):
    pass


@dataclass(frozen=True)
class CustomerHolderAssignmentDeleted(CustomerHolderAssignmentEvent):
    pass


class _CustomerHolderAssignmentDataSchema(BaseSchema):
    # Required by the spec and present in every example.
    holder = Nested(SimpleRedeemableHolderSchema, required=True)
    voucher = Nested(SimpleVoucherSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    customer = Nested(SimpleCustomerSchema, required=True)


class CustomerHolderAssignmentCreatedDataSchema(_CustomerHolderAssignmentDataSchema):
    __model__ = CustomerHolderAssignmentCreated


class CustomerHolderAssignmentDeletedDataSchema(_CustomerHolderAssignmentDataSchema):
    __model__ = CustomerHolderAssignmentDeleted
