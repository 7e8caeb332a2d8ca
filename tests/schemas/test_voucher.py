"""Vouchers and the voucher.created|updated|enabled|disabled|deleted events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import ValidationError, parse_event
from schemas.voucher import SimpleVoucherSchema, Voucher, VoucherSchema, VoucherUpdated
from tests.payloads import example_envelope, load_example, wrap_envelope


class TestVoucherSchema:
    def test_full_voucher(self, voucher_created_data):
        """The full Voucher loads into the Voucher dataclass; campaign is the name, campaign_id the id."""
        voucher = VoucherSchema().load(voucher_created_data["voucher"])

        assert (
            Voucher(
                id="v_T3TAfGlOsyjEQkfvUvknNYfcynUEvJ3i",
                code="Your-applicable-9",
                campaign="Your-campaign-applicable-to",
                campaign_id="camp_18NCNUkQIaXnqbHqhtQnt355",
                type="DISCOUNT_VOUCHER",
                active=True,
                category_id="cat_0e156dab8f2e43873a",
                metadata={},
                start_date=datetime(2024, 2, 17, tzinfo=UTC),
                expiration_date=datetime(2024, 2, 29, tzinfo=UTC),
                created_at=datetime(2024, 2, 9, 11, 11, 11, 111000, tzinfo=UTC),
            )
            == voucher
        )

    def test_full_voucher_needs_no_code(self):
        """The full Voucher schema requires nothing (the spec requires nothing there)."""
        assert Voucher() == VoucherSchema().load({})

    def test_simple_voucher_needs_a_code(self):
        """SimpleVoucher requires `code`: the spec does and every example has one."""
        with pytest.raises(ValidationError) as ei:
            SimpleVoucherSchema().load({"id": "v_1"})

        assert ei.value.messages == {"code": ["Missing data for required field."]}

    def test_six_digit_timestamps(self):
        """voucher.updated uses only 6-digit fractions; they keep their microseconds."""
        data = parse_event(example_envelope("voucher.updated")).data

        assert isinstance(data, VoucherUpdated)
        assert datetime(2024, 1, 1, 11, 11, 11, 572692, tzinfo=UTC) == data.voucher.updated_at
        assert datetime(2023, 12, 12, 12, 12, 12, 638000, tzinfo=UTC) == data.voucher.created_at

    def test_null_metadata_is_empty(self):
        """metadata: null becomes {} so actions can always .get() on it."""
        assert VoucherSchema().load({"code": "A", "metadata": None}).metadata == {}


class TestVoucherRejections:
    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("voucher", "code"), 123, "Not a valid string."),
            (("voucher", "id"), 42, "Not a valid string."),
            (("voucher", "campaign_id"), ["camp_1"], "Not a valid string."),
            (("voucher", "created_at"), "yesterday", "Not a valid datetime."),
            (("voucher", "expiration_date"), 1707480000, "Not a valid datetime."),
            (("voucher", "discount", "amount_limit"), "abc", "Not a valid integer."),
            (("voucher", "discount", "amount_limit"), "15000", "Not a valid integer."),
            (("voucher", "discount", "amount_limit"), 150.5, "Not a valid integer."),
            (("voucher", "discount", "amount_limit"), True, "Not a valid integer."),
            (("voucher", "discount", "percent_off"), "abc", "Not a valid number."),
            (("voucher", "redemption", "redeemed_quantity"), "4", "Not a valid integer."),
            (("campaign", "id"), 1, "Not a valid string."),
        ],
    )
    @pytest.mark.parametrize("event_type", ["voucher.created", "voucher.enabled"])
    def test_wrong_types(self, event_type, path, value, message):
        """Wrong types in ids, codes, amounts and dates fail with the field's path under `data`."""
        data = load_example(event_type)
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope(event_type, data))

        expected: object = [message]
        for key in reversed(path):
            expected = {key: expected}
        assert {"data": expected} == ei.value.messages

    def test_voucher_not_an_object(self):
        """`voucher` must be an object when present."""
        with pytest.raises(ValidationError) as ei:
            parse_event(wrap_envelope("voucher.updated", {"voucher": "v_1"}))

        assert ei.value.messages == {"data": {"voucher": {"_schema": ["Invalid input type."]}}}
