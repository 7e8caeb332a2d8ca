"""Gift cards: credits added and gift-card transactions."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import BaseSchema, Nested
from schemas.campaign import Campaign, SimpleCampaignSchema
from schemas.customer import Customer, SimpleCustomerSchema
from schemas.order import Order, SimpleOrderSchema
from schemas.redemption import Redemption, SimpleRedemptionSchema
from schemas.transaction import Balance, BalanceSchema, Transaction, VoucherTransactionSchema
from schemas.voucher import SimpleVoucherSchema, Voucher, VoucherSchema

__all__ = [
    "CustomerVoucherGiftBalanceAdded",
    "CustomerVoucherGiftBalanceAddedDataSchema",
    "VoucherGiftBalanceAdded",
    "VoucherGiftBalanceAddedDataSchema",
    "VoucherGiftTransactionCreated",
    "VoucherGiftTransactionCreatedDataSchema",
]


@dataclass(frozen=True)
class VoucherGiftBalanceAdded:
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    balance: Balance | None = None
    transaction: Transaction | None = None


@dataclass(frozen=True)
class CustomerVoucherGiftBalanceAdded(VoucherGiftBalanceAdded):
    customer: Customer | None = None


class VoucherGiftBalanceAddedDataSchema(BaseSchema):
    # The spec's example for this type is labelled "voucher.loyalty_card.points_added"; its content is a
    # gift-card credit (balance.type "gift_voucher", amount in minor units).
    __model__ = VoucherGiftBalanceAdded

    voucher = Nested(SimpleVoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    balance = Nested(BalanceSchema)
    transaction = Nested(VoucherTransactionSchema)


class CustomerVoucherGiftBalanceAddedDataSchema(VoucherGiftBalanceAddedDataSchema):
    __model__ = CustomerVoucherGiftBalanceAdded

    customer = Nested(SimpleCustomerSchema)


@dataclass(frozen=True)
class VoucherGiftTransactionCreated:
    transaction: Transaction | None = None
    voucher: Voucher | None = None
    campaign: Campaign | None = None
    holder: Customer | None = None
    balance: Balance | None = None
    order: Order | None = None
    redemption: Redemption | None = None
    rollback: Redemption | None = None


class VoucherGiftTransactionCreatedDataSchema(BaseSchema):
    __model__ = VoucherGiftTransactionCreated

    transaction = Nested(VoucherTransactionSchema)
    voucher = Nested(VoucherSchema)
    campaign = Nested(SimpleCampaignSchema)
    holder = Nested(SimpleCustomerSchema)
    balance = Nested(BalanceSchema)
    order = Nested(SimpleOrderSchema)
    redemption = Nested(SimpleRedemptionSchema)
    rollback = Nested(SimpleRedemptionSchema)
