"""The v2024-01-01 webhook envelope that wraps every event's ``data``.

https://docs.voucherify.io/api-reference/introduction-to-webhooks ("Voucherify webhook structure").
Route on ``event.type``: the top-level ``type`` is the free-text "Event name" for distribution webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import fields, validate

from schemas.base import BaseSchema, DateTime, Nested, Str

__all__ = [
    "Envelope",
    "EnvelopeSchema",
    "EventRef",
    "EventRefSchema",
    "EventSourceSchema",
    "Source",
    "SourceSchema",
]

NOT_AN_ENVELOPE = (
    "Missing data for required field. A v2024-01-01 webhook body has an `event` object; "
    "this looks like a Payload designer 'Raw payload' body or not a Voucherify webhook."
)


@dataclass(frozen=True)
class Source:
    id: str | None = None
    object: str | None = None
    target_url: str | None = None


@dataclass(frozen=True)
class EventRef:
    id: str
    type: str
    created_at: datetime | None = None
    entity_id: str | None = None
    group_id: str | None = None
    # USER_PORTAL, API, CLIENT_API or INTERNAL: who caused the event.
    channel: str | None = None


@dataclass(frozen=True)
class Envelope:
    id: str | None
    project_id: str | None
    created_at: datetime | None
    type: str | None
    source: Source | None
    event: EventRef
    data: dict[str, Any]


class SourceSchema(BaseSchema):
    __model__ = Source

    id = Str()
    object = Str()
    target_url = Str()


class EventSourceUserSchema(BaseSchema):
    id = Str()


class EventSourceApiKeySchema(BaseSchema):
    name = Str()
    app_id = Str()


class EventSourceSchema(BaseSchema):
    channel = Str()
    user = Nested(EventSourceUserSchema)
    api_key = Nested(EventSourceApiKeySchema)


class EventRefSchema(BaseSchema):
    __model__ = EventRef

    id = Str(required=True, allow_none=False)
    type = Str(required=True, allow_none=False, validate=validate.Length(min=1))
    created_at = DateTime()
    entity_id = Str()
    group_id = Str()
    event_source = Nested(EventSourceSchema)

    def build(self, data: dict[str, Any]) -> EventRef:
        return EventRef(
            id=data["id"],
            type=data["type"],
            created_at=data.get("created_at"),
            entity_id=data.get("entity_id"),
            group_id=data.get("group_id"),
            channel=(data.get("event_source") or {}).get("channel"),
        )


class EnvelopeSchema(BaseSchema):
    """The envelope; ``data`` is checked to be an object and left as is (see ``schemas.registry``)."""

    __model__ = Envelope

    id = Str()
    project_id = Str()
    created_at = DateTime()
    # Free text for distribution webhooks (may be ""): informational only, never used for routing.
    type = Str()
    data = fields.Dict(required=True, allow_none=False)
    source = Nested(SourceSchema)
    event = Nested(
        EventRefSchema,
        required=True,
        allow_none=False,
        error_messages={"required": NOT_AN_ENVELOPE},
    )

    def build(self, data: dict[str, Any]) -> Envelope:
        return Envelope(
            id=data.get("id"),
            project_id=data.get("project_id"),
            created_at=data.get("created_at"),
            type=data.get("type"),
            source=data.get("source"),
            event=data["event"],
            data=data["data"],
        )
