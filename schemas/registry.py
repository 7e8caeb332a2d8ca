"""Which data schema validates which event type.

Types missing here (documented-but-unspecified ones such as ``campaign.earning_rule.assigned``, and whatever
Voucherify adds next) get their envelope validated and their ``data`` left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from schemas.base import BaseSchema
from schemas.campaign import (
    CampaignCreatedDataSchema,
    CampaignDeletedDataSchema,
    CampaignDisabledDataSchema,
    CampaignEnabledDataSchema,
    CampaignUpdatedDataSchema,
    CampaignVouchersGenerationCompletedDataSchema,
)
from schemas.publication import (
    CustomerPublicationSucceededDataSchema,
    PublicationSucceededDataSchema,
    VoucherPublishedDataSchema,
)
from schemas.voucher import (
    VoucherCreatedDataSchema,
    VoucherDeletedDataSchema,
    VoucherDisabledDataSchema,
    VoucherEnabledDataSchema,
    VoucherUpdatedDataSchema,
)

__all__ = ["DATA_SCHEMAS", "data_schema_for"]

DATA_SCHEMAS: Mapping[str, type[BaseSchema]] = MappingProxyType(
    {
        "campaign.created": CampaignCreatedDataSchema,
        "campaign.deleted": CampaignDeletedDataSchema,
        "campaign.disabled": CampaignDisabledDataSchema,
        "campaign.enabled": CampaignEnabledDataSchema,
        "campaign.updated": CampaignUpdatedDataSchema,
        "campaign.vouchers.generation.completed": CampaignVouchersGenerationCompletedDataSchema,
        "customer.publication.succeeded": CustomerPublicationSucceededDataSchema,
        "publication.succeeded": PublicationSucceededDataSchema,
        "voucher.created": VoucherCreatedDataSchema,
        "voucher.deleted": VoucherDeletedDataSchema,
        "voucher.disabled": VoucherDisabledDataSchema,
        "voucher.enabled": VoucherEnabledDataSchema,
        "voucher.published": VoucherPublishedDataSchema,
        "voucher.updated": VoucherUpdatedDataSchema,
    }
)


def data_schema_for(event_type: str) -> BaseSchema | None:
    """The (shared, cached) data schema instance for ``event_type``, or None when the type has none."""
    # Only known types reach the cache: event types come from the payload, so caching misses would let
    # senders grow it without bound.
    if event_type not in DATA_SCHEMAS:
        return None
    return _schema_instance(event_type)


@cache
def _schema_instance(event_type: str) -> BaseSchema:
    return DATA_SCHEMAS[event_type]()
