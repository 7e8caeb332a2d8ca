"""Dispatch is data: which actions run for which event type.

Routing is on `event.type`, never the top-level `type` (for distribution webhooks that is free text).
A type with no route is `ignored`: stored and acknowledged, never an error, because Voucherify adds event
types without notice; `IGNORED` lists the types we skip on purpose, so a new type is told apart. Users'
handlers (workers/handlers.py) add their actions after the built-in ones.
`forward:<destination>` actions are added for every destination that wants the type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from core.settings import Settings
from schemas import event_types

if TYPE_CHECKING:
    from workers.handlers import HandlerSpec

NOTIFY_CUSTOMER = "notify_customer"
FORWARD = "forward"

ROUTES: Mapping[str, tuple[str, ...]] = {
    # Both announce that a customer was given codes; the email is sent once per publication id.
    "publication.succeeded": (NOTIFY_CUSTOMER,),
    "voucher.published": (NOTIFY_CUSTOMER,),
}


# The event types we knowingly do nothing with out of the box, as zulip's integrations list theirs: every type
# Voucherify documents (schemas/event_types.py, kept equal to docs/event-types.md by a test) that no built-in
# action takes. Each is stored, acknowledged and `ignored` with reason `no_route` (a handler or a forward
# destination that wants it routes it, and a replay backfills what arrived before). A type in neither table
# is one Voucherify added since: `ignored` with reason `unknown_type`, so the two are told apart in logs, the
# admin API and metrics.
IGNORED: frozenset[str] = event_types.DOCUMENTED - set(ROUTES)

NO_ROUTE = "no_route"
UNKNOWN_TYPE = "unknown_type"


def ignore_reason(event_type: str) -> str:
    """Why an event of this type, with nothing routed, is `ignored`: a type we skip, or one we do not know."""
    return NO_ROUTE if event_type in IGNORED or event_type in ROUTES else UNKNOWN_TYPE


def forward_action(destination: str) -> str:
    return f"{FORWARD}:{destination}"


def routes_table(settings: Settings, handlers: Sequence[HandlerSpec] = ()) -> dict[str, tuple[str, ...]]:
    """Every documented type, and each undocumented one a handler names, with the actions it runs."""
    types = sorted(event_types.DOCUMENTED | {p for h in handlers if h.undocumented for p in h.patterns})
    return {t: actions_for(t, settings, handlers) for t in types}


def designer_actions_for(source: str, settings: Settings) -> tuple[str, ...]:
    """The actions a Payload-designer body from `source` goes to: a distribution endpoint's name, or the
    `source.id` of a distribution's body on the main URL (forwards only: no other action can read a body
    whose shape the user designed)."""
    return tuple(
        forward_action(d.name) for d in settings.forward_destinations if source and source in d.sources
    )


def actions_for(event_type: str, settings: Settings, handlers: Sequence[HandlerSpec] = ()) -> tuple[str, ...]:
    """The actions an event of this type fans out to, in order: built-in, then handlers, then forwards."""
    names = list(ROUTES.get(event_type, ()))
    names += [h.name for h in handlers if h.wants(event_type)]
    names += [forward_action(d.name) for d in settings.forward_destinations if d.wants(event_type)]
    return tuple(names)
