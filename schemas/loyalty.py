"""Loyalty programmes: tiers, earning rules, pending points and point buckets, and the tier events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from marshmallow import fields

from schemas.base import (
    BaseSchema,
    Bool,
    Date,
    DateTime,
    Integer,
    List,
    Metadata,
    Nested,
    Object,
    Str,
)
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.common import ValidityHoursSchema, ValidityTimeframeSchema
from schemas.customer import Customer, SimpleCustomerSchema

__all__ = [
    "CampaignLoyaltyTierCreated",
    "CampaignLoyaltyTierCreatedDataSchema",
    "CampaignLoyaltyTierDeleted",
    "CampaignLoyaltyTierDeletedDataSchema",
    "CampaignLoyaltyTierUpdated",
    "CampaignLoyaltyTierUpdatedDataSchema",
    "CustomerLoyaltyTierDowngraded",
    "CustomerLoyaltyTierDowngradedDataSchema",
    "CustomerLoyaltyTierJoined",
    "CustomerLoyaltyTierJoinedDataSchema",
    "CustomerLoyaltyTierLeft",
    "CustomerLoyaltyTierLeftDataSchema",
    "CustomerLoyaltyTierProlonged",
    "CustomerLoyaltyTierProlongedDataSchema",
    "CustomerLoyaltyTierUpgraded",
    "CustomerLoyaltyTierUpgradedDataSchema",
    "EarningRule",
    "EarningRuleSchema",
    "EventRefDetailsSchema",
    "LoyaltyPendingPointsSchema",
    "LoyaltyPointsBucketSchema",
    "LoyaltyTier",
    "LoyaltyTierSchema",
    "PendingPoints",
    "PointsBucket",
    "SimpleEarningRuleSchema",
]


@dataclass(frozen=True)
class LoyaltyTier:
    id: str
    name: str | None = None
    campaign_id: str | None = None
    points_from: int | None = None
    points_to: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class PointsRangeSchema(BaseSchema):
    # "from" is a Python keyword.
    from_ = Integer(data_key="from")
    to = Integer()


class TierConfigSchema(BaseSchema):
    points = Nested(PointsRangeSchema)


class TierMultiplierSchema(BaseSchema):
    type = Str()
    multiplier = fields.Float(allow_none=True)


class LoyaltyTierExpirationSchema(BaseSchema):
    customer_id = Str()
    campaign_id = Str()
    tier_id = Str()
    start_date = Date()
    expiration_date = Date()
    created_at = DateTime()
    updated_at = DateTime()


class LoyaltyTierSchema(BaseSchema):
    """``LoyaltyTier``."""

    __model__ = LoyaltyTier

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    name = Str()
    campaign_id = Str()
    metadata = Metadata()
    points = Nested(PointsRangeSchema)
    config = Nested(TierConfigSchema)
    # Both keyed by earning rule / reward id.
    earning_rules = fields.Dict(keys=fields.String(), values=Nested(TierMultiplierSchema), allow_none=True)
    rewards = fields.Dict(keys=fields.String(), values=Nested(TierMultiplierSchema), allow_none=True)
    expiration = Nested(LoyaltyTierExpirationSchema)
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()

    def build(self, data: dict[str, Any]) -> LoyaltyTier:
        points = data.get("points") or {}
        return LoyaltyTier(
            id=data["id"],
            name=data.get("name"),
            campaign_id=data.get("campaign_id"),
            points_from=points.get("from_"),
            points_to=points.get("to"),
            metadata=data.get("metadata") or {},
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
        )


@dataclass(frozen=True)
class EarningRule:
    id: str
    campaign_id: str | None = None
    active: bool | None = None
    automation_id: str | None = None
    validation_rule_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class EarningRuleLoyaltySchema(BaseSchema):
    """How many points a rule gives; the calculation-specific parts are kept as they come."""

    type = Str()
    calculation_type = Str()
    points = Integer()
    order = Object()
    order_items = Object()
    customer = Object()
    custom_event = Object()


class EarningRuleSourceSchema(BaseSchema):
    banner = Str()
    object_id = Str()
    object_type = Str()


class EarningRuleParametersSchema(BaseSchema):
    banner = Str()
    event = Str()
    loyalty = Nested(EarningRuleLoyaltySchema)


class SimpleEarningRuleSchema(BaseSchema):
    """``SimpleEarningRule``."""

    __model__ = EarningRule

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    campaign_id = Str()
    active = Bool()
    automation_id = Str()
    validation_rule_id = Str()
    parameters = Nested(EarningRuleParametersSchema)
    source = Nested(EarningRuleSourceSchema)
    metadata = Metadata()
    object = Str()


class EarningRuleSchema(SimpleEarningRuleSchema):
    """``EarningRule``: the full rule (``customer.rewarded.loyalty_points``)."""

    event = Str()
    loyalty = Nested(EarningRuleLoyaltySchema)
    custom_event = Object()
    segment = Object()
    loyalty_tier = Object()
    pending_points = Object()
    start_date = DateTime()
    expiration_date = DateTime()
    validity_timeframe = Nested(ValidityTimeframeSchema)
    validity_day_of_week = List(Integer())
    validity_hours = Nested(ValidityHoursSchema)
    created_at = DateTime()
    updated_at = DateTime()


class EventSourceDetailsSchema(BaseSchema):
    channel = Str()
    user = Object()
    api_key = Object()


class EventRefDetailsSchema(BaseSchema):
    """An event reference inside loyalty details (``SimpleEvent`` plus its source)."""

    id = Str()
    type = Str()
    category = Str()
    entity_id = Str()
    group_id = Str()
    created_at = DateTime()
    event_source = Nested(EventSourceDetailsSchema)


class IdRefSchema(BaseSchema):
    id = Str()
    name = Str()
    source_id = Str()


class EarningRuleRefSchema(BaseSchema):
    id = Str()
    source = Nested(EarningRuleSourceSchema)


class PendingPointsDetailsSchema(BaseSchema):
    earning_rule = Nested(EarningRuleRefSchema)
    event = Nested(EventRefDetailsSchema)
    holder_loyalty_tier = Nested(IdRefSchema)
    order = Nested(IdRefSchema)


@dataclass(frozen=True)
class PendingPoints:
    id: str
    voucher_id: str | None = None
    campaign_id: str | None = None
    customer_id: str | None = None
    order_id: str | None = None
    points: int | None = None
    activates_at: date | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class LoyaltyPendingPointsSchema(BaseSchema):
    """``LoyaltyPendingPoints``: points earned but not yet active (``activates_at`` is a date)."""

    __model__ = PendingPoints

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    voucher_id = Str()
    campaign_id = Str()
    customer_id = Str()
    order_id = Str()
    points = Integer()
    activates_at = Date()
    details = Nested(PendingPointsDetailsSchema)
    created_at = DateTime()
    updated_at = DateTime()


@dataclass(frozen=True)
class PointsBucket:
    id: str | None = None
    voucher_id: str | None = None
    campaign_id: str | None = None
    total_points: int | None = None
    status: str | None = None
    expires_at: date | None = None
    created_at: datetime | None = None


class BucketPointsSchema(BaseSchema):
    total_points = Integer()


class LoyaltyPointsBucketSchema(BaseSchema):
    """``LoyaltyPointsBucket``: points that expire together (``expires_at`` is a date)."""

    __model__ = PointsBucket

    id = Str()
    voucher_id = Str()
    campaign_id = Str()
    bucket = Nested(BucketPointsSchema)
    status = Str()
    expires_at = Date()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()

    def build(self, data: dict[str, Any]) -> PointsBucket:
        return PointsBucket(
            id=data.get("id"),
            voucher_id=data.get("voucher_id"),
            campaign_id=data.get("campaign_id"),
            total_points=(data.get("bucket") or {}).get("total_points"),
            status=data.get("status"),
            expires_at=data.get("expires_at"),
            created_at=data.get("created_at"),
        )


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignLoyaltyTierChange:
    campaign: Campaign | None = None
    loyalty_tier: LoyaltyTier | None = None


@dataclass(frozen=True)
class CampaignLoyaltyTierCreated(CampaignLoyaltyTierChange):
    pass


@dataclass(frozen=True)
class CampaignLoyaltyTierUpdated(CampaignLoyaltyTierChange):
    pass


@dataclass(frozen=True)
class CampaignLoyaltyTierDeleted(CampaignLoyaltyTierChange):
    pass


class _CampaignLoyaltyTierChangeDataSchema(BaseSchema):
    campaign = Nested(SimpleCampaignSchema)
    loyalty_tier = Nested(LoyaltyTierSchema)


class CampaignLoyaltyTierCreatedDataSchema(_CampaignLoyaltyTierChangeDataSchema):
    __model__ = CampaignLoyaltyTierCreated


class CampaignLoyaltyTierUpdatedDataSchema(_CampaignLoyaltyTierChangeDataSchema):
    __model__ = CampaignLoyaltyTierUpdated


class CampaignLoyaltyTierDeletedDataSchema(_CampaignLoyaltyTierChangeDataSchema):
    __model__ = CampaignLoyaltyTierDeleted


@dataclass(frozen=True)
class CustomerLoyaltyTierEvent:
    customer: Customer | None = None
    campaign: Campaign | None = None
    loyalty_tier: LoyaltyTier | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class CustomerLoyaltyTierJoined(CustomerLoyaltyTierEvent):
    pass


@dataclass(frozen=True)
class CustomerLoyaltyTierProlonged(CustomerLoyaltyTierEvent):
    pass


@dataclass(frozen=True)
class CustomerLoyaltyTierLeft(CustomerLoyaltyTierEvent):
    pass


@dataclass(frozen=True)
class CustomerLoyaltyTierChanged:
    customer: Customer | None = None
    campaign: Campaign | None = None
    loyalty_tier_from: LoyaltyTier | None = None
    loyalty_tier_to: LoyaltyTier | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class CustomerLoyaltyTierUpgraded(CustomerLoyaltyTierChanged):
    pass


@dataclass(frozen=True)
class CustomerLoyaltyTierDowngraded(CustomerLoyaltyTierChanged):
    pass


class _CustomerLoyaltyTierDataSchema(BaseSchema):
    # All required (and nullable) in the spec, and present in every example.
    customer = Nested(SimpleCustomerSchema, required=True)
    campaign = Nested(SimpleCampaignSchema, required=True)
    created_at = DateTime(required=True)


class _CustomerLoyaltyTierEventDataSchema(_CustomerLoyaltyTierDataSchema):
    loyalty_tier = Nested(LoyaltyTierSchema, required=True)


class _CustomerLoyaltyTierChangedDataSchema(_CustomerLoyaltyTierDataSchema):
    loyalty_tier_from = Nested(LoyaltyTierSchema, required=True)
    loyalty_tier_to = Nested(LoyaltyTierSchema, required=True)


class CustomerLoyaltyTierJoinedDataSchema(_CustomerLoyaltyTierEventDataSchema):
    __model__ = CustomerLoyaltyTierJoined


class CustomerLoyaltyTierProlongedDataSchema(_CustomerLoyaltyTierEventDataSchema):
    __model__ = CustomerLoyaltyTierProlonged


class CustomerLoyaltyTierLeftDataSchema(_CustomerLoyaltyTierEventDataSchema):
    __model__ = CustomerLoyaltyTierLeft


class CustomerLoyaltyTierUpgradedDataSchema(_CustomerLoyaltyTierChangedDataSchema):
    __model__ = CustomerLoyaltyTierUpgraded


class CustomerLoyaltyTierDowngradedDataSchema(_CustomerLoyaltyTierChangedDataSchema):
    __model__ = CustomerLoyaltyTierDowngraded
