"""Voucher transactions and balances: gift-card credits and loyalty-card points moving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.base import BaseSchema, DateTime, Integer, Nested, Object, Str
from schemas.loyalty import (
    EarningRuleRefSchema,
    EventRefDetailsSchema,
    IdRefSchema,
    LoyaltyPendingPointsSchema,
)

__all__ = [
    "Balance",
    "BalanceSchema",
    "Transaction",
    "VoucherTransactionSchema",
]


@dataclass(frozen=True)
class Balance:
    """A voucher's balance after a change: gift ``amount``s or loyalty ``points``, in minor units / points."""

    type: str | None = None
    operation_type: str | None = None
    amount: int | None = None
    points: int | None = None
    total: int | None = None
    balance: int | None = None
    related_object_id: str | None = None
    related_object_type: str | None = None


class RelatedObjectSchema(BaseSchema):
    id = Str()
    type = Str()


class BalanceSchema(BaseSchema):
    """A voucher balance after a change: ``amount`` for gift cards, ``points`` for loyalty cards.

    One schema for three spec schemas with the same shape: ``VoucherBalance``,
    ``LoyaltiesMembersBalanceUpdateResponseBody`` and ``VouchersBalanceUpdateResponseBody``.
    """

    __model__ = Balance

    type = Str()
    operation_type = Str()
    amount = Integer()
    points = Integer()
    total = Integer()
    balance = Integer()
    related_object = Nested(RelatedObjectSchema)
    object = Str()

    def build(self, data: dict) -> Balance:
        related = data.get("related_object") or {}
        return Balance(
            type=data.get("type"),
            operation_type=data.get("operation_type"),
            amount=data.get("amount"),
            points=data.get("points"),
            total=data.get("total"),
            balance=data.get("balance"),
            related_object_id=related.get("id"),
            related_object_type=related.get("type"),
        )


class TransactionDetailsSchema(BaseSchema):
    balance = Nested(BalanceSchema)
    order = Nested(IdRefSchema)
    event = Nested(EventRefDetailsSchema)
    earning_rule = Nested(EarningRuleRefSchema)
    pending_points = Nested(LoyaltyPendingPointsSchema)
    holder_loyalty_tier = Nested(IdRefSchema)
    loyalty_tier = Nested(IdRefSchema)
    segment = Nested(IdRefSchema)
    redemption = Nested(IdRefSchema)
    rollback = Nested(IdRefSchema)
    reward = Nested(IdRefSchema)
    custom_event = Object()
    event_schema = Object()
    source_voucher = Object()
    destination_voucher = Object()


@dataclass(frozen=True)
class Transaction:
    id: str
    type: str | None = None
    source: str | None = None
    source_id: str | None = None
    reason: str | None = None
    voucher_id: str | None = None
    campaign_id: str | None = None
    related_transaction_id: str | None = None
    balance: Balance | None = None
    created_at: datetime | None = None


class VoucherTransactionSchema(BaseSchema):
    """``VoucherTransaction``: one credit/points movement (``CREDITS_ADDITION``, ``POINTS_ACCRUAL`` ...)."""

    __model__ = Transaction

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    source_id = Str()
    voucher_id = Str()
    campaign_id = Str()
    source = Str()
    reason = Str()
    type = Str()
    details = Nested(TransactionDetailsSchema)
    related_transaction_id = Str()
    created_at = DateTime()

    def build(self, data: dict) -> Transaction:
        return Transaction(
            id=data["id"],
            type=data.get("type"),
            source=data.get("source"),
            source_id=data.get("source_id"),
            reason=data.get("reason"),
            voucher_id=data.get("voucher_id"),
            campaign_id=data.get("campaign_id"),
            related_transaction_id=data.get("related_transaction_id"),
            balance=(data.get("details") or {}).get("balance"),
            created_at=data.get("created_at"),
        )
