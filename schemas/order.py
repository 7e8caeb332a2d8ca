"""Orders: ``SimpleOrder`` (redemptions, loyalty) and ``OrderCalculated`` (``customer.order.*``, rewards)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import fields

from schemas.base import BaseSchema, DateTime, Integer, List, Metadata, Nested, Str
from schemas.customer import CustomerSchema

__all__ = [
    "Order",
    "OrderCalculatedSchema",
    "OrderItem",
    "OrderItemSchema",
    "SimpleOrderSchema",
]


@dataclass(frozen=True)
class OrderItem:
    id: str | None = None
    product_id: str | None = None
    sku_id: str | None = None
    source_id: str | None = None
    quantity: int | None = None
    price: int | None = None
    amount: int | None = None


@dataclass(frozen=True)
class Order:
    """An order; every amount is in minor units (``4198`` = 41.98)."""

    id: str | None = None
    source_id: str | None = None
    status: str | None = None
    customer_id: str | None = None
    referrer_id: str | None = None
    amount: int | None = None
    discount_amount: int | None = None
    total_discount_amount: int | None = None
    total_amount: int | None = None
    items: tuple[OrderItem, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.items is None:
            object.__setattr__(self, "items", ())
        if self.metadata is None:
            object.__setattr__(self, "metadata", {})


class ProductRefSchema(BaseSchema):
    id = Str()
    source_id = Str()
    name = Str()
    price = Integer()
    metadata = Metadata()
    object = Str()


class SkuRefSchema(BaseSchema):
    id = Str()
    source_id = Str()
    sku = Str()
    price = Integer()
    metadata = Metadata()
    object = Str()


class OrderItemSchema(BaseSchema):
    __model__ = OrderItem

    id = Str()
    object = Str()
    product_id = Str()
    sku_id = Str()
    source_id = Str()
    related_object = Str()
    quantity = Integer()
    discount_quantity = Integer()
    initial_quantity = Integer()
    amount = Integer()
    price = Integer()
    subtotal_amount = Integer()
    discount_amount = Integer()
    applied_discount_amount = Integer()
    product = Nested(ProductRefSchema)
    sku = Nested(SkuRefSchema)
    metadata = Metadata()


class SimpleOrderSchema(BaseSchema):
    """``SimpleOrder``."""

    __model__ = Order

    id = Str()
    source_id = Str()
    status = Str()
    customer_id = Str()
    referrer_id = Str()
    amount = Integer()
    initial_amount = Integer()
    discount_amount = Integer()
    applied_discount_amount = Integer()
    items_discount_amount = Integer()
    items_applied_discount_amount = Integer()
    total_discount_amount = Integer()
    total_applied_discount_amount = Integer()
    total_amount = Integer()
    items = List(Nested(OrderItemSchema))
    metadata = Metadata()
    created_at = DateTime()
    updated_at = DateTime()
    object = Str()


class OrderRedemptionRefSchema(BaseSchema):
    date = DateTime()
    rollback_id = Str()
    rollback_date = DateTime()
    related_object_type = Str()
    related_object_id = Str()
    related_object_parent_id = Str()
    stacked = List(Str())


class OrderCalculatedSchema(SimpleOrderSchema):
    """``OrderCalculated``: an order with its customer, referrer and redemptions."""

    # Required by the spec and present in every example.
    id = Str(required=True, allow_none=False)
    # The full customer shape, with summary/loyalty/referrals/address null in the examples.
    customer = Nested(CustomerSchema)
    referrer = Nested(CustomerSchema)
    # Keyed by redemption id.
    redemptions = fields.Dict(keys=fields.String(), values=Nested(OrderRedemptionRefSchema), allow_none=True)
