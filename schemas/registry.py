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
    CampaignPromotionTierCreatedDataSchema,
    CampaignPromotionTierDeletedDataSchema,
    CampaignPromotionTierDisabledDataSchema,
    CampaignPromotionTierEnabledDataSchema,
    CampaignPromotionTierUpdatedDataSchema,
    CampaignUpdatedDataSchema,
    CampaignVouchersGenerationCompletedDataSchema,
)
from schemas.custom_event import (
    CustomerCustomEventDataSchema,
)
from schemas.customer import (
    CustomerCreatedDataSchema,
    CustomerDeletedDataSchema,
    CustomerUpdatedDataSchema,
)
from schemas.distribution import (
    CustomerOrderCanceledDataSchema,
    CustomerOrderCreatedDataSchema,
    CustomerOrderPaidDataSchema,
    CustomerOrderUpdatedDataSchema,
    ManualDistributionScheduleDataSchema,
)
from schemas.gift import (
    CustomerVoucherGiftBalanceAddedDataSchema,
    VoucherGiftBalanceAddedDataSchema,
    VoucherGiftTransactionCreatedDataSchema,
)
from schemas.loyalty import (
    CampaignLoyaltyTierCreatedDataSchema,
    CampaignLoyaltyTierDeletedDataSchema,
    CampaignLoyaltyTierUpdatedDataSchema,
    CustomerLoyaltyTierDowngradedDataSchema,
    CustomerLoyaltyTierJoinedDataSchema,
    CustomerLoyaltyTierLeftDataSchema,
    CustomerLoyaltyTierProlongedDataSchema,
    CustomerLoyaltyTierUpgradedDataSchema,
)
from schemas.loyalty_card import (
    CustomerVoucherLoyaltyCardPendingPointsActivatedDataSchema,
    CustomerVoucherLoyaltyCardPendingPointsAddedDataSchema,
    CustomerVoucherLoyaltyCardPendingPointsCanceledDataSchema,
    CustomerVoucherLoyaltyCardPendingPointsUpdatedDataSchema,
    CustomerVoucherLoyaltyCardPointsAddedDataSchema,
    CustomerVoucherLoyaltyCardPointsExpiredDataSchema,
    VoucherLoyaltyCardPendingPointsActivatedDataSchema,
    VoucherLoyaltyCardPendingPointsAddedDataSchema,
    VoucherLoyaltyCardPendingPointsCanceledDataSchema,
    VoucherLoyaltyCardPendingPointsUpdatedDataSchema,
    VoucherLoyaltyCardPointsAddedDataSchema,
    VoucherLoyaltyCardPointsExpiredDataSchema,
    VoucherLoyaltyCardTransactionCreatedDataSchema,
)
from schemas.publication import (
    CustomerPublicationSucceededDataSchema,
    PublicationSucceededDataSchema,
    VoucherPublishedDataSchema,
)
from schemas.redemption import (
    CustomerRedemptionRollbackSucceededDataSchema,
    CustomerRedemptionSucceededDataSchema,
    RedemptionFailedDataSchema,
    RedemptionRollbackFailedDataSchema,
    RedemptionRollbackSucceededDataSchema,
    RedemptionSucceededDataSchema,
)
from schemas.reward import (
    CustomerRewardedDataSchema,
    CustomerRewardedLoyaltyPointsDataSchema,
    CustomerRewardRedemptionsCompletedDataSchema,
    CustomerRewardRedemptionsCreatedDataSchema,
    CustomerRewardRedemptionsPendingDataSchema,
)
from schemas.segment import (
    CustomerSegmentEnteredDataSchema,
    CustomerSegmentLeftDataSchema,
)
from schemas.validation_rule import (
    BusinessValidationRuleAssignmentCreatedDataSchema,
    BusinessValidationRuleAssignmentDeletedDataSchema,
    BusinessValidationRuleCreatedDataSchema,
    BusinessValidationRuleDeletedDataSchema,
    BusinessValidationRuleUpdatedDataSchema,
)
from schemas.voucher import (
    CustomerHolderAssignmentCreatedDataSchema,
    CustomerHolderAssignmentDeletedDataSchema,
    VoucherCreatedDataSchema,
    VoucherDeletedDataSchema,
    VoucherDisabledDataSchema,
    VoucherEnabledDataSchema,
    VoucherUpdatedDataSchema,
)

__all__ = ["DATA_SCHEMAS", "data_schema_for"]

DATA_SCHEMAS: Mapping[str, type[BaseSchema]] = MappingProxyType(
    {
        "business_validation_rule.assignment.created": BusinessValidationRuleAssignmentCreatedDataSchema,
        "business_validation_rule.assignment.deleted": BusinessValidationRuleAssignmentDeletedDataSchema,
        "business_validation_rule.created": BusinessValidationRuleCreatedDataSchema,
        "business_validation_rule.deleted": BusinessValidationRuleDeletedDataSchema,
        "business_validation_rule.updated": BusinessValidationRuleUpdatedDataSchema,
        "campaign.created": CampaignCreatedDataSchema,
        "campaign.deleted": CampaignDeletedDataSchema,
        "campaign.disabled": CampaignDisabledDataSchema,
        "campaign.enabled": CampaignEnabledDataSchema,
        "campaign.loyalty_tier.created": CampaignLoyaltyTierCreatedDataSchema,
        "campaign.loyalty_tier.deleted": CampaignLoyaltyTierDeletedDataSchema,
        "campaign.loyalty_tier.updated": CampaignLoyaltyTierUpdatedDataSchema,
        "campaign.promotion_tier.created": CampaignPromotionTierCreatedDataSchema,
        "campaign.promotion_tier.deleted": CampaignPromotionTierDeletedDataSchema,
        "campaign.promotion_tier.disabled": CampaignPromotionTierDisabledDataSchema,
        "campaign.promotion_tier.enabled": CampaignPromotionTierEnabledDataSchema,
        "campaign.promotion_tier.updated": CampaignPromotionTierUpdatedDataSchema,
        "campaign.updated": CampaignUpdatedDataSchema,
        "campaign.vouchers.generation.completed": CampaignVouchersGenerationCompletedDataSchema,
        "customer.created": CustomerCreatedDataSchema,
        "customer.custom_event": CustomerCustomEventDataSchema,
        "customer.deleted": CustomerDeletedDataSchema,
        "customer.holder.assignment.created": CustomerHolderAssignmentCreatedDataSchema,
        "customer.holder.assignment.deleted": CustomerHolderAssignmentDeletedDataSchema,
        "customer.loyalty.tier.downgraded": CustomerLoyaltyTierDowngradedDataSchema,
        "customer.loyalty.tier.joined": CustomerLoyaltyTierJoinedDataSchema,
        "customer.loyalty.tier.left": CustomerLoyaltyTierLeftDataSchema,
        "customer.loyalty.tier.prolonged": CustomerLoyaltyTierProlongedDataSchema,
        "customer.loyalty.tier.upgraded": CustomerLoyaltyTierUpgradedDataSchema,
        "customer.order.canceled": CustomerOrderCanceledDataSchema,
        "customer.order.created": CustomerOrderCreatedDataSchema,
        "customer.order.paid": CustomerOrderPaidDataSchema,
        "customer.order.updated": CustomerOrderUpdatedDataSchema,
        "customer.publication.succeeded": CustomerPublicationSucceededDataSchema,
        "customer.redemption.rollback.succeeded": CustomerRedemptionRollbackSucceededDataSchema,
        "customer.redemption.succeeded": CustomerRedemptionSucceededDataSchema,
        "customer.reward_redemptions.completed": CustomerRewardRedemptionsCompletedDataSchema,
        "customer.reward_redemptions.created": CustomerRewardRedemptionsCreatedDataSchema,
        "customer.reward_redemptions.pending": CustomerRewardRedemptionsPendingDataSchema,
        "customer.rewarded": CustomerRewardedDataSchema,
        "customer.rewarded.loyalty_points": CustomerRewardedLoyaltyPointsDataSchema,
        "customer.segment.entered": CustomerSegmentEnteredDataSchema,
        "customer.segment.left": CustomerSegmentLeftDataSchema,
        "customer.updated": CustomerUpdatedDataSchema,
        "customer.voucher.gift.balance_added": CustomerVoucherGiftBalanceAddedDataSchema,
        "customer.voucher.loyalty_card.pending_points.activated": (
            CustomerVoucherLoyaltyCardPendingPointsActivatedDataSchema
        ),
        "customer.voucher.loyalty_card.pending_points.added": (
            CustomerVoucherLoyaltyCardPendingPointsAddedDataSchema
        ),
        "customer.voucher.loyalty_card.pending_points.canceled": (
            CustomerVoucherLoyaltyCardPendingPointsCanceledDataSchema
        ),
        "customer.voucher.loyalty_card.pending_points.updated": (
            CustomerVoucherLoyaltyCardPendingPointsUpdatedDataSchema
        ),
        "customer.voucher.loyalty_card.points_added": CustomerVoucherLoyaltyCardPointsAddedDataSchema,
        "customer.voucher.loyalty_card.points_expired": CustomerVoucherLoyaltyCardPointsExpiredDataSchema,
        "manual_distribution_schedule": ManualDistributionScheduleDataSchema,
        "publication.succeeded": PublicationSucceededDataSchema,
        "redemption.failed": RedemptionFailedDataSchema,
        "redemption.rollback.failed": RedemptionRollbackFailedDataSchema,
        "redemption.rollback.succeeded": RedemptionRollbackSucceededDataSchema,
        "redemption.succeeded": RedemptionSucceededDataSchema,
        "voucher.created": VoucherCreatedDataSchema,
        "voucher.deleted": VoucherDeletedDataSchema,
        "voucher.disabled": VoucherDisabledDataSchema,
        "voucher.enabled": VoucherEnabledDataSchema,
        "voucher.gift.balance_added": VoucherGiftBalanceAddedDataSchema,
        "voucher.gift.transaction.created": VoucherGiftTransactionCreatedDataSchema,
        "voucher.loyalty_card.pending_points.activated": VoucherLoyaltyCardPendingPointsActivatedDataSchema,
        "voucher.loyalty_card.pending_points.added": VoucherLoyaltyCardPendingPointsAddedDataSchema,
        "voucher.loyalty_card.pending_points.canceled": VoucherLoyaltyCardPendingPointsCanceledDataSchema,
        "voucher.loyalty_card.pending_points.updated": VoucherLoyaltyCardPendingPointsUpdatedDataSchema,
        "voucher.loyalty_card.points_added": VoucherLoyaltyCardPointsAddedDataSchema,
        "voucher.loyalty_card.points_expired": VoucherLoyaltyCardPointsExpiredDataSchema,
        "voucher.loyalty_card.transaction.created": VoucherLoyaltyCardTransactionCreatedDataSchema,
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
