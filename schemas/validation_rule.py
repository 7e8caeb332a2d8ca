"""Validation rules ("business validation rules") and their assignments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.base import BaseSchema, Bool, DateTime, Integer, List, Nested, Number, Object, Str
from schemas.campaign import Campaign, PromotionTier, SimpleCampaignSchema, SimplePromotionTierSchema
from schemas.loyalty import EarningRule, SimpleEarningRuleSchema
from schemas.voucher import SimpleVoucherSchema, Voucher

__all__ = [
    "BusValRuleAssignmentSchema",
    "BusinessValidationRuleAssignmentCreated",
    "BusinessValidationRuleAssignmentCreatedDataSchema",
    "BusinessValidationRuleAssignmentDeleted",
    "BusinessValidationRuleAssignmentDeletedDataSchema",
    "BusinessValidationRuleCreated",
    "BusinessValidationRuleCreatedDataSchema",
    "BusinessValidationRuleDeleted",
    "BusinessValidationRuleDeletedDataSchema",
    "BusinessValidationRuleUpdated",
    "BusinessValidationRuleUpdatedDataSchema",
    "RuleAssignment",
    "ValidationRule",
    "ValidationRuleSchema",
]


@dataclass(frozen=True)
class ValidationRule:
    id: str
    name: str | None = None
    type: str | None = None
    context_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ErrorMessageSchema(BaseSchema):
    message = Str()


class ApplicableToItemSchema(BaseSchema):
    object = Str()
    id = Str()
    source_id = Str()
    product_id = Str()
    product_source_id = Str()
    strict = Bool()
    effect = Str()
    price = Integer()
    price_formula = Str()
    quantity_limit = Integer()
    aggregated_quantity_limit = Integer()
    amount_limit = Integer()
    aggregated_amount_limit = Integer()
    order_item_indices = List(Integer())
    target = Str()
    skip_initially = Integer()
    repeat = Number()


class ApplicableToSchema(BaseSchema):
    included = List(Nested(ApplicableToItemSchema))
    excluded = List(Nested(ApplicableToItemSchema))
    included_all = Bool()


class ValidationRuleSchema(BaseSchema):
    """``ValidationRule``."""

    __model__ = ValidationRule

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    name = Str()
    # Rule trees keyed "1", "2", ... plus "logic"; conditions are free-form ({"$more_than": [4000]}).
    rules = Object()
    error = Nested(ErrorMessageSchema)
    applicable_to = Nested(ApplicableToSchema)
    type = Str()
    context_type = Str()
    assignments_count = Integer()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


@dataclass(frozen=True)
class RuleAssignment:
    id: str
    rule_id: str | None = None
    related_object_id: str | None = None
    related_object_type: str | None = None
    created_at: datetime | None = None


class BusValRuleAssignmentSchema(BaseSchema):
    """``BusValRuleAssignment``: a rule attached to a campaign, voucher, promotion tier ..."""

    __model__ = RuleAssignment

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    rule_id = Str()
    related_object_id = Str()
    related_object_type = Str()
    validation_status = Str()
    validation_omitted_rules = List(Str())
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class BusValRuleAssignmentDistributionSchema(BaseSchema):
    distribution = Str()


# --- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessValidationRuleCreated:
    rule: ValidationRule | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class BusinessValidationRuleUpdated:
    rule: ValidationRule | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BusinessValidationRuleDeleted:
    rule: ValidationRule | None = None
    deleted_at: datetime | None = None


class BusinessValidationRuleCreatedDataSchema(BaseSchema):
    __model__ = BusinessValidationRuleCreated

    rule = Nested(ValidationRuleSchema)
    created_at = DateTime()


class BusinessValidationRuleUpdatedDataSchema(BaseSchema):
    __model__ = BusinessValidationRuleUpdated

    rule = Nested(ValidationRuleSchema)
    updated_at = DateTime()


class BusinessValidationRuleDeletedDataSchema(BaseSchema):
    __model__ = BusinessValidationRuleDeleted

    rule = Nested(ValidationRuleSchema)
    deleted_at = DateTime()


@dataclass(frozen=True)
class BusinessValidationRuleAssignmentEvent:
    rule: ValidationRule | None = None
    assignment: RuleAssignment | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    distribution: dict[str, Any] | None = None
    promotion_tier: PromotionTier | None = None
    earning_rule: EarningRule | None = None


@dataclass(frozen=True)
class BusinessValidationRuleAssignmentCreated(BusinessValidationRuleAssignmentEvent):
    pass


@dataclass(frozen=True)
class BusinessValidationRuleAssignmentDeleted(BusinessValidationRuleAssignmentEvent):
    pass


class _BusinessValidationRuleAssignmentDataSchema(BaseSchema):
    rule = Nested(ValidationRuleSchema)
    assignment = Nested(BusValRuleAssignmentSchema)
    voucher = Nested(SimpleVoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    distribution = Nested(BusValRuleAssignmentDistributionSchema)
    promotion_tier = Nested(SimplePromotionTierSchema)
    earning_rule = Nested(SimpleEarningRuleSchema)


class BusinessValidationRuleAssignmentCreatedDataSchema(_BusinessValidationRuleAssignmentDataSchema):
    __model__ = BusinessValidationRuleAssignmentCreated


class BusinessValidationRuleAssignmentDeletedDataSchema(_BusinessValidationRuleAssignmentDataSchema):
    __model__ = BusinessValidationRuleAssignmentDeleted
