"""Campaigns: the full ``Campaign`` of ``campaign.*`` events and the ``SimpleCampaign`` other events carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import (
    BaseSchema,
    Bool,
    DateTime,
    Integer,
    IntegerOrNumericString,
    List,
    Metadata,
    Nested,
    Object,
    Str,
)
from schemas.common import (
    CategorySchema,
    CodeConfigSchema,
    DiscountSchema,
    GiftSchema,
    LoyaltyCardSchema,
    RedemptionQuotaSchema,
    ValidationRulesAssignmentsListSchema,
    ValidityHoursSchema,
    ValidityTimeframeSchema,
)

__all__ = [
    "Campaign",
    "CampaignCreated",
    "CampaignCreatedDataSchema",
    "CampaignDeleted",
    "CampaignDeletedDataSchema",
    "CampaignDisabled",
    "CampaignDisabledDataSchema",
    "CampaignEnabled",
    "CampaignEnabledDataSchema",
    "CampaignPromotionTierCreated",
    "CampaignPromotionTierCreatedDataSchema",
    "CampaignPromotionTierDeleted",
    "CampaignPromotionTierDeletedDataSchema",
    "CampaignPromotionTierDisabled",
    "CampaignPromotionTierDisabledDataSchema",
    "CampaignPromotionTierEnabled",
    "CampaignPromotionTierEnabledDataSchema",
    "CampaignPromotionTierUpdated",
    "CampaignPromotionTierUpdatedDataSchema",
    "CampaignSchema",
    "CampaignUpdated",
    "CampaignUpdatedDataSchema",
    "CampaignVouchersGenerationCompleted",
    "CampaignVouchersGenerationCompletedDataSchema",
    "PromotionTier",
    "PromotionTierSchema",
    "SimpleCampaignSchema",
    "SimplePromotionTierSchema",
]


@dataclass(frozen=True)
class Campaign:
    """A campaign as actions see it, whichever of the two shapes it arrived in."""

    id: str | None = None
    name: str | None = None
    campaign_type: str | None = None
    type: str | None = None
    active: bool | None = None
    category_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    expiration_date: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class CampaignVoucherSchema(BaseSchema):
    """The voucher template of a campaign (``campaign.voucher``)."""

    type = Str()
    discount = Nested(DiscountSchema)
    gift = Nested(GiftSchema)
    loyalty_card = Nested(LoyaltyCardSchema)
    redemption = Nested(RedemptionQuotaSchema)
    code_config = Nested(CodeConfigSchema)
    is_referral_code = Bool()
    start_date = DateTime()
    expiration_date = DateTime()


class RelatedObjectParentSchema(BaseSchema):
    id = Str()
    name = Str()
    object = Str()


class RefereeRewardSchema(BaseSchema):
    type = Str()
    # Spec: string; examples: 300. Minor units either way.
    amount = IntegerOrNumericString()
    related_object_parent = Nested(RelatedObjectParentSchema)


class CustomEventRefSchema(BaseSchema):
    id = Str()
    name = Str()


class ReferralProgramSchema(BaseSchema):
    conversion_event_type = Str()
    custom_event = Nested(CustomEventRefSchema)
    referee_reward = Nested(RefereeRewardSchema)


class SimpleCampaignSchema(BaseSchema):
    """``SimpleCampaign``: the campaign summary embedded in most events."""

    __model__ = Campaign

    id = Str()
    name = Str()
    description = Str()
    campaign_type = Str()
    type = Str()
    is_referral_code = Bool()
    voucher = Nested(CampaignVoucherSchema)
    referral_program = Nested(ReferralProgramSchema)
    auto_join = Bool()
    join_once = Bool()
    active = Bool()
    category_id = Str()
    category = Str()
    categories = List(Nested(CategorySchema))
    metadata = Metadata()
    start_date = DateTime()
    expiration_date = DateTime()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class CampaignSchema(SimpleCampaignSchema):
    """``Campaign``: the full campaign of ``campaign.created|updated|enabled|disabled|deleted``."""

    id = Str(required=True, allow_none=False)
    use_voucher_metadata_schema = Bool()
    validity_timeframe = Nested(ValidityTimeframeSchema)
    validity_day_of_week = List(Integer())
    validity_hours = Nested(ValidityHoursSchema)
    activity_duration_after_publishing = Str()
    vouchers_count = Integer()
    creation_status = Str()
    vouchers_generation_status = Str()
    protected = Bool()
    loyalty_tiers_expiration = Object()
    validation_rules_assignments = Nested(ValidationRulesAssignmentsListSchema)


@dataclass(frozen=True)
class PromotionTier:
    id: str | None = None
    name: str | None = None
    campaign_id: str | None = None
    active: bool | None = None
    banner: str | None = None
    hierarchy: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class PromotionTierCampaignSchema(BaseSchema):
    id = Str()
    name = Str()
    active = Bool()
    start_date = DateTime()
    expiration_date = DateTime()
    object = Str()


class PromotionTierActionSchema(BaseSchema):
    discount = Nested(DiscountSchema)


class PromotionTierOrdersSummarySchema(BaseSchema):
    total_amount = Integer()
    total_discount_amount = Integer()


class PromotionTierRedemptionsSummarySchema(BaseSchema):
    total_redeemed = Integer()


class PromotionTierSummarySchema(BaseSchema):
    redemptions = Nested(PromotionTierRedemptionsSummarySchema)
    orders = Nested(PromotionTierOrdersSummarySchema)


class SimplePromotionTierSchema(BaseSchema):
    """``SimplePromotionTier``: the tier a redemption or distribution refers to."""

    __model__ = PromotionTier

    id = Str()
    name = Str()
    banner = Str()
    campaign = Nested(PromotionTierCampaignSchema)
    metadata = Metadata()


class PromotionTierSchema(SimplePromotionTierSchema):
    """``PromotionTier``: the full tier of ``campaign.promotion_tier.*`` events."""

    campaign_id = Str()
    promotion_id = Str()
    action = Nested(PromotionTierActionSchema)
    hierarchy = Integer()
    active = Bool()
    start_date = DateTime()
    expiration_date = DateTime()
    validity_timeframe = Nested(ValidityTimeframeSchema)
    validity_day_of_week = List(Integer())
    validity_hours = Nested(ValidityHoursSchema)
    summary = Nested(PromotionTierSummarySchema)
    validation_rule_assignments = Nested(ValidationRulesAssignmentsListSchema)
    category_id = Str()
    categories = List(Nested(CategorySchema))
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()

    def build(self, data: dict[str, Any]) -> PromotionTier:
        # The full tier names its campaign by id at the top level; the simple one only inside `campaign`.
        if data.get("campaign_id") is None and data.get("campaign"):
            data = {**data, "campaign_id": data["campaign"].get("id")}
        return super().build(data)


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignChange:
    campaign: Campaign | None = None


@dataclass(frozen=True)
class CampaignCreated(CampaignChange):
    created_at: datetime | None = None


@dataclass(frozen=True)
class CampaignUpdated(CampaignChange):
    pass


@dataclass(frozen=True)
class CampaignEnabled(CampaignChange):
    pass


@dataclass(frozen=True)
class CampaignDisabled(CampaignChange):
    pass


@dataclass(frozen=True)
class CampaignDeleted(CampaignChange):
    deleted_at: datetime | None = None


class _CampaignChangeDataSchema(BaseSchema):
    campaign = Nested(CampaignSchema)


class CampaignCreatedDataSchema(_CampaignChangeDataSchema):
    __model__ = CampaignCreated

    created_at = DateTime()


class CampaignUpdatedDataSchema(_CampaignChangeDataSchema):
    __model__ = CampaignUpdated


class CampaignEnabledDataSchema(_CampaignChangeDataSchema):
    __model__ = CampaignEnabled


class CampaignDisabledDataSchema(_CampaignChangeDataSchema):
    __model__ = CampaignDisabled


class CampaignDeletedDataSchema(_CampaignChangeDataSchema):
    __model__ = CampaignDeleted

    deleted_at = DateTime()


@dataclass(frozen=True)
class CampaignVouchersGenerationCompleted:
    campaign: Campaign | None = None
    count: int | None = None
    completed_at: datetime | None = None


class CampaignVouchersGenerationCompletedDataSchema(BaseSchema):
    __model__ = CampaignVouchersGenerationCompleted

    # The spec says SimpleCampaign; its example (labelled "campaign.created") looks the same either way.
    campaign = Nested(SimpleCampaignSchema)
    count = Integer()
    completed_at = DateTime()


@dataclass(frozen=True)
class PromotionTierChange:
    campaign: Campaign | None = None
    promotion_tier: PromotionTier | None = None


@dataclass(frozen=True)
class CampaignPromotionTierCreated(PromotionTierChange):
    pass


@dataclass(frozen=True)
class CampaignPromotionTierUpdated(PromotionTierChange):
    pass


@dataclass(frozen=True)
class CampaignPromotionTierEnabled(PromotionTierChange):
    pass


@dataclass(frozen=True)
class CampaignPromotionTierDisabled(PromotionTierChange):
    pass


@dataclass(frozen=True)
class CampaignPromotionTierDeleted(PromotionTierChange):
    pass


class _PromotionTierChangeDataSchema(BaseSchema):
    campaign = Nested(SimpleCampaignSchema)
    promotion_tier = Nested(PromotionTierSchema)


class CampaignPromotionTierCreatedDataSchema(_PromotionTierChangeDataSchema):
    __model__ = CampaignPromotionTierCreated


class CampaignPromotionTierUpdatedDataSchema(_PromotionTierChangeDataSchema):
    __model__ = CampaignPromotionTierUpdated


class CampaignPromotionTierEnabledDataSchema(_PromotionTierChangeDataSchema):
    __model__ = CampaignPromotionTierEnabled


class CampaignPromotionTierDisabledDataSchema(_PromotionTierChangeDataSchema):
    __model__ = CampaignPromotionTierDisabled


class CampaignPromotionTierDeletedDataSchema(_PromotionTierChangeDataSchema):
    __model__ = CampaignPromotionTierDeleted
