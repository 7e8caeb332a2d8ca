"""Small helpers for schema tests: edit a nested key, build the expected field-keyed message."""

from __future__ import annotations

from typing import Any

from schemas import ValidationError, parse_event
from tests.payloads import load_example, wrap_envelope

# Example bodies we reject on purpose, with the top-level key whose message says why.
REJECTED = {
    # Payload designer "Raw payload": the designed object only, no envelope at all.
    "customer.publication.succeeded-3.json": "event",
    # A standard envelope whose `data` the Payload designer replaced with {To, From, Subject, Body}. The
    # customer.publication.succeeded data schema requires customer/campaign/publication/voucher (the spec
    # does and every standard example has them), so this fails at `data` instead of loading as an event
    # whose every field is None. Designer shapes are user-defined; the worker quarantines them or gives
    # such distributions their own URL.
    "customer.publication.succeeded-2.json": "data",
}


def set_path(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Set ``data[path[0]][path[1]]... = value`` in place and return ``data``."""
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def nest(path: tuple[Any, ...], leaf: Any) -> Any:
    """``nest(("a", "b"), x)`` -> ``{"a": {"b": x}}``."""
    for key in reversed(path):
        leaf = {key: leaf}
    return leaf


def errors_for(event_type: str, path: tuple[Any, ...], value: Any, example: str | None = None) -> Any:
    """parse_event's messages after setting ``path`` in the example's data to ``value`` (None if it loads)."""
    data = set_path(load_example(example or event_type), path, value)
    try:
        parse_event(wrap_envelope(event_type, data))
    except ValidationError as e:
        return e.messages
    return None
