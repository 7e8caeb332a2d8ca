"""Dispatch is data: which actions run for which event type.

Routing is on `event.type`, never the top-level `type` (for distribution webhooks that is free text).
A type with no route is `ignored`: stored and acknowledged, never an error, because Voucherify adds event
types without notice; `IGNORED` lists the types we skip on purpose, so a new type is told apart.
`forward:<destination>` actions are added for every destination that wants the type.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.settings import Settings

NOTIFY_CUSTOMER = "notify_customer"
FORWARD = "forward"

ROUTES: Mapping[str, tuple[str, ...]] = {
    # Both announce that a customer was given codes; the email is sent once per publication id.
    "publication.succeeded": (NOTIFY_CUSTOMER,),
    "voucher.published": (NOTIFY_CUSTOMER,),
}


# The event types we knowingly do nothing with out of the box, as zulip's integrations list theirs: each one
# is stored, acknowledged and `ignored` with reason `no_route` (a handler or a forward destination that wants
# it routes it, and a replay backfills what arrived before). A type in neither table is one Voucherify added
# since: `ignored` with reason `unknown_type`, so the two are told apart in logs, the admin API and metrics.
IGNORED: frozenset[str] = frozenset(
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
        "voucher.updated",
    }
)

NO_ROUTE = "no_route"
UNKNOWN_TYPE = "unknown_type"


def ignore_reason(event_type: str) -> str:
    """Why an event of this type, with nothing routed, is `ignored`: a type we skip, or one we do not know."""
    return NO_ROUTE if event_type in IGNORED or event_type in ROUTES else UNKNOWN_TYPE


def forward_action(destination: str) -> str:
    return f"{FORWARD}:{destination}"


def designer_actions_for(source: str, settings: Settings) -> tuple[str, ...]:
    """The actions a Payload-designer body from `source` goes to: a distribution endpoint's name, or the
    `source.id` of a distribution's body on the main URL (forwards only: no other action can read a body
    whose shape the user designed)."""
    return tuple(
        forward_action(d.name) for d in settings.forward_destinations if source and source in d.sources
    )


def actions_for(event_type: str, settings: Settings) -> tuple[str, ...]:
    """The actions an event of this type fans out to, in order."""
    names = list(ROUTES.get(event_type, ()))
    names += [forward_action(d.name) for d in settings.forward_destinations if d.wants(event_type)]
    return tuple(names)
