"""Small shapes several entity families share (kept here so the family modules import one way)."""

from __future__ import annotations

from schemas.base import BaseSchema, Bool, Date, DateTime, Integer, List, Nested, Number, Object, Str

__all__ = [
    "CategorySchema",
    "CodeConfigSchema",
    "DiscountSchema",
    "DiscountUnitSchema",
    "GiftSchema",
    "ListRefSchema",
    "LoyaltyCardSchema",
    "LoyaltyExpirationRulesSchema",
    "RedemptionQuotaSchema",
    "ValidationRulesAssignmentSchema",
    "ValidationRulesAssignmentsListSchema",
    "ValidityHoursSchema",
    "ValidityTimeframeSchema",
]


class CategorySchema(BaseSchema):
    id = Str()
    name = Str()
    hierarchy = Integer()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class ListRefSchema(BaseSchema):
    """A ``{"object": "list", "url": ..., "count": ...}`` pointer to a sub-resource (``voucher.publish``)."""

    object = Str()
    url = Str()
    count = Integer()
    total = Integer()
    data_ref = Str()


class ValidationRulesAssignmentSchema(BaseSchema):
    id = Str()
    rule_id = Str()
    related_object_id = Str()
    related_object_type = Str()
    created_at = DateTime()
    object = Str()


class ValidationRulesAssignmentsListSchema(BaseSchema):
    object = Str()
    data_ref = Str()
    total = Integer()
    data = List(Nested(ValidationRulesAssignmentSchema))


class DiscountUnitSchema(BaseSchema):
    unit_off = Number()
    unit_off_formula = Str()
    unit_type = Str()
    effect = Str()
    product = Object()
    sku = Object()


class DiscountSchema(BaseSchema):
    """``Discount`` (amount, percent, unit(s), fixed): amounts in minor units, percent_off a number."""

    type = Str()
    effect = Str()
    amount_off = Integer()
    amount_off_formula = Str()
    percent_off = Number()
    percent_off_formula = Str()
    amount_limit = Integer()
    aggregated_amount_limit = Integer()
    unit_off = Number()
    unit_off_formula = Str()
    unit_type = Str()
    units = List(Nested(DiscountUnitSchema))
    fixed_amount = Integer()
    fixed_amount_formula = Str()
    is_dynamic = Bool()


class GiftSchema(BaseSchema):
    amount = Integer()
    balance = Integer()
    subtracted_amount = Integer()
    effect = Str()


class LoyaltyExpirationRulesSchema(BaseSchema):
    period_type = Str()
    period_value = Integer()
    rounding_type = Str()
    rounding_value = Integer()


class LoyaltyCardSchema(BaseSchema):
    """A voucher's ``loyalty_card`` (balances) or a campaign's (``points`` + ``expiration_rules``)."""

    points = Integer()
    balance = Integer()
    pending_points = Integer()
    subtracted_points = Integer()
    next_expiration_date = Date()
    next_expiration_points = Integer()
    expiration_rules = Nested(LoyaltyExpirationRulesSchema)


class RedemptionQuotaSchema(BaseSchema):
    """The ``redemption`` counters on a voucher or a campaign's voucher template."""

    quantity = Integer()
    redeemed_quantity = Integer()
    redeemed_amount = Integer()
    redeemed_points = Integer()
    object = Str()
    url = Str()


class CodeConfigSchema(BaseSchema):
    length = Integer()
    charset = Str()
    pattern = Str()
    prefix = Str()
    postfix = Str()
    min_desired = Integer()


class ValidityTimeframeSchema(BaseSchema):
    interval = Str()
    duration = Str()


class ValidityHoursDailySchema(BaseSchema):
    start_time = Str()
    expiration_time = Str()
    days_of_week = List(Integer())


class ValidityHoursSchema(BaseSchema):
    daily = List(Nested(ValidityHoursDailySchema))
