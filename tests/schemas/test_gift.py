"""Gift cards: balance added and transactions."""

from __future__ import annotations

import pytest

from schemas import parse_event
from schemas.gift import (
    CustomerVoucherGiftBalanceAdded,
    VoucherGiftBalanceAdded,
    VoucherGiftTransactionCreated,
)
from schemas.transaction import Balance, Transaction
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestGift:
    def test_balance_added(self):
        """The example (labelled points_added in the spec) is a gift credit in minor units."""
        data = parse_event(example_envelope("voucher.gift.balance_added")).data

        assert isinstance(data, VoucherGiftBalanceAdded)
        assert isinstance(data.balance, Balance)
        assert (data.balance.type, data.balance.amount, data.balance.balance) == ("gift_voucher", 1200, 11500)
        assert data.balance.related_object_id == data.voucher.id

    def test_customer_twin(self):
        """customer.voucher.gift.balance_added adds the customer."""
        data = parse_event(example_envelope("customer.voucher.gift.balance_added")).data

        assert isinstance(data, CustomerVoucherGiftBalanceAdded)
        assert data.customer is not None

    def test_transaction_created(self):
        """voucher.gift.transaction.created carries the transaction with its balance."""
        data = parse_event(example_envelope("voucher.gift.transaction.created")).data

        assert isinstance(data, VoucherGiftTransactionCreated)
        assert isinstance(data.transaction, Transaction)
        assert isinstance(data.transaction.balance, Balance)

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("balance", "amount"), "abc", "Not a valid integer."),
            (("balance", "amount"), 12.5, "Not a valid integer."),
            (("voucher", "gift", "balance"), "11500", "Not a valid integer."),
            (("transaction", "id"), 5, "Not a valid string."),
        ],
    )
    def test_money_is_integer_minor_units(self, path, value, message):
        """Amounts are integers (minor units): strings and fractions are rejected."""
        assert errors_for("voucher.gift.balance_added", path, value) == nest(("data", *path), [message])
