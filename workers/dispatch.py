"""Dispatch is data: which actions run for which event type.

Routing is on `event.type`, never the top-level `type` (for distribution webhooks that is free text).
A type with no route is `ignored`: stored and acknowledged, never an error, because Voucherify adds event
types without notice. `forward:<destination>` actions are added for every destination that wants the type.
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


def forward_action(destination: str) -> str:
    return f"{FORWARD}:{destination}"


def designer_actions_for(source: str, settings: Settings) -> tuple[str, ...]:
    """The actions a Payload-designer body from distribution endpoint `source` goes to (forwards only:
    no other action can read a body whose shape the user designed)."""
    return tuple(
        forward_action(d.name) for d in settings.forward_destinations if source and source in d.sources
    )


def actions_for(event_type: str, settings: Settings) -> tuple[str, ...]:
    """The actions an event of this type fans out to, in order."""
    names = list(ROUTES.get(event_type, ()))
    names += [forward_action(d.name) for d in settings.forward_destinations if d.wants(event_type)]
    return tuple(names)
