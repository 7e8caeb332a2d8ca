"""business_validation_rule.*."""

from __future__ import annotations

import pytest

from schemas import parse_event
from schemas.validation_rule import (
    BusinessValidationRuleAssignmentCreated,
    BusinessValidationRuleCreated,
    RuleAssignment,
    ValidationRule,
)
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestValidationRules:
    def test_created(self):
        """The rule loads; its free-form rule tree does not need modelling."""
        data = parse_event(example_envelope("business_validation_rule.created")).data

        assert isinstance(data, BusinessValidationRuleCreated)
        assert isinstance(data.rule, ValidationRule)
        assert data.rule.id.startswith("val_")

    def test_assignment(self):
        """An assignment names the rule and the object it is attached to."""
        data = parse_event(example_envelope("business_validation_rule.assignment.created")).data

        assert isinstance(data, BusinessValidationRuleAssignmentCreated)
        assert isinstance(data.assignment, RuleAssignment)
        assert data.assignment.rule_id == data.rule.id
        assert data.assignment.related_object_id == data.voucher.id

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("rule", "id"), None, "Field may not be null."),
            (("rule", "applicable_to", "included", 0, "amount_limit"), "big", "Not a valid integer."),
            (("assignment", "created_at"), "yesterday", "Not a valid datetime."),
        ],
    )
    def test_wrong_types(self, path, value, message):
        """Rule ids, limits and dates are checked."""
        errors = errors_for("business_validation_rule.assignment.created", path, value)

        assert errors == nest(("data", *path), [message])
