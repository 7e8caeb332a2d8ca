"""``parse_event``: one call from a decoded webhook body to a validated envelope plus typed ``data``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from marshmallow import ValidationError

from schemas.envelope import Envelope, EnvelopeSchema
from schemas.registry import data_schema_for

__all__ = ["ParsedEvent", "parse_event"]


@cache
def _envelope_schema() -> EnvelopeSchema:
    return EnvelopeSchema()


@dataclass(frozen=True)
class ParsedEvent:
    envelope: Envelope
    # Always envelope.event.type: the type to route on.
    event_type: str
    # The data schema's dataclass, or None when the event type has no data schema.
    data: object | None
    # Class name of the data schema that validated `data`, or None.
    schema: str | None


def parse_event(payload: object) -> ParsedEvent:
    """Validate a decoded webhook body; raise one field-keyed ``ValidationError`` covering the whole body."""
    if not isinstance(payload, Mapping):
        raise ValidationError(
            {"_schema": [f"Invalid input type: a webhook body is a JSON object, got {_json_type(payload)}."]}
        )

    errors: dict[str, Any] = {}
    envelope: Envelope | None = None
    try:
        envelope = _envelope_schema().load(payload)
    except ValidationError as e:
        errors.update(_as_dict(e.messages))

    # Validate `data` even when the envelope failed elsewhere, so one error reports everything wrong.
    event = payload.get("event")
    event_type = event.get("type") if isinstance(event, Mapping) else None
    data = payload.get("data")
    schema = data_schema_for(event_type) if isinstance(event_type, str) and event_type else None
    loaded: object | None = None
    if schema is not None and isinstance(data, Mapping):
        try:
            loaded = schema.load(data)
        except ValidationError as e:
            errors["data"] = _as_dict(e.messages)

    if errors:
        raise ValidationError(errors, data=payload)
    assert envelope is not None
    return ParsedEvent(
        envelope=envelope,
        event_type=envelope.event.type,
        data=loaded,
        schema=type(schema).__name__ if schema is not None else None,
    )


def _as_dict(messages: Any) -> dict[str, Any]:
    return messages if isinstance(messages, dict) else {"_schema": messages}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
