"""Every event type Voucherify documents (docs/event-types.md: those with a data schema and those without).

Pure data. Event types become metric labels and index keys in the store only if they are listed here; any
other string a sender puts in `event.type` counts as `other`, so no sender can grow the label set or the
keyspace without limit. The event document keeps the real type string for display. A test keeps this list
and the doc in agreement.
"""

from __future__ import annotations

OTHER = "other"

DOCUMENTED: frozenset[str] = frozenset(
    {
        "business_validation_rule.assignment.created",
        "business_validation_rule.assignment.deleted",
        "business_validation_rule.created",
        "business_validation_rule.deleted",
        "business_validation_rule.updated",
        "campaign.created",
        "campaign.deleted",
        "campaign.disabled",
        "campaign.earning_rule.assigned",
        "campaign.earning_rule.deleted",
        "campaign.earning_rule.disabled",
        "campaign.earning_rule.enabled",
        "campaign.earning_rule.updated",
        "campaign.enabled",
        "campaign.loyalty_tier.created",
        "campaign.loyalty_tier.deleted",
        "campaign.loyalty_tier.updated",
        "campaign.promotion_stack.created",
        "campaign.promotion_stack.updated",
        "campaign.promotion_tier.created",
        "campaign.promotion_tier.deleted",
        "campaign.promotion_tier.disabled",
        "campaign.promotion_tier.enabled",
        "campaign.promotion_tier.updated",
        "campaign.referral_tier.created",
        "campaign.referral_tier.deleted",
        "campaign.referral_tier.updated",
        "campaign.reward.assignment.created",
        "campaign.reward.assignment.deleted",
        "campaign.reward.assignment.updated",
        "campaign.updated",
        "campaign.vouchers.added",
        "campaign.vouchers.generation.completed",
        "campaign.vouchers.generation.failed",
        "campaign.vouchers.generation.started",
        "customer.confirmed",
        "customer.created",
        "customer.custom_event",
        "customer.deleted",
        "customer.holder.assignment.created",
        "customer.holder.assignment.deleted",
        "customer.loyalty.tier.downgraded",
        "customer.loyalty.tier.joined",
        "customer.loyalty.tier.left",
        "customer.loyalty.tier.prolonged",
        "customer.loyalty.tier.upgraded",
        "customer.order.canceled",
        "customer.order.created",
        "customer.order.paid",
        "customer.order.updated",
        "customer.publication.succeeded",
        "customer.redemption.rollback.succeeded",
        "customer.redemption.succeeded",
        "customer.referred",
        "customer.reward_redemptions.completed",
        "customer.reward_redemptions.created",
        "customer.reward_redemptions.pending",
        "customer.rewarded",
        "customer.rewarded.loyalty_points",
        "customer.segment.entered",
        "customer.segment.left",
        "customer.updated",
        "customer.voucher.gift.balance_added",
        "customer.voucher.loyalty_card.pending_points.activated",
        "customer.voucher.loyalty_card.pending_points.added",
        "customer.voucher.loyalty_card.pending_points.canceled",
        "customer.voucher.loyalty_card.pending_points.updated",
        "customer.voucher.loyalty_card.points_added",
        "customer.voucher.loyalty_card.points_expired",
        "manual_distribution_schedule",
        "publication.succeeded",
        "redemption.failed",
        "redemption.rollback.failed",
        "redemption.rollback.succeeded",
        "redemption.succeeded",
        "voucher.created",
        "voucher.deleted",
        "voucher.disabled",
        "voucher.enabled",
        "voucher.gift.balance_added",
        "voucher.gift.transaction.created",
        "voucher.loyalty_card.pending_points.activated",
        "voucher.loyalty_card.pending_points.added",
        "voucher.loyalty_card.pending_points.canceled",
        "voucher.loyalty_card.pending_points.updated",
        "voucher.loyalty_card.points_added",
        "voucher.loyalty_card.points_expired",
        "voucher.loyalty_card.transaction.created",
        "voucher.published",
        "voucher.updated",
    }
)


def label(event_type: str) -> str:
    """`event_type` if Voucherify documents it, else "other" ("" stays "": no type known yet)."""
    if not event_type:
        return ""
    return event_type if event_type in DOCUMENTED else OTHER
