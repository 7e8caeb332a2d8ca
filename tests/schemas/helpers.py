"""Small helpers for schema tests: edit a nested key, build the expected field-keyed message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st
from marshmallow import Schema, fields

from schemas import DATA_SCHEMAS, EnvelopeSchema, ValidationError, parse_event
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


Path = tuple[str | int, ...]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def walk(schema: Schema, value: Any, path: Path = ()) -> Iterator[tuple[Path, fields.Field | None, Any]]:
    """Yield ``(path, field, value)`` for every key of every schema-backed object in ``value``.

    The root object comes first with field None. Free-form parts (metadata, maps keyed by id or name) are not
    entered: their keys are data, not fields.
    """
    if path == ():
        yield (), None, value
    if not isinstance(value, dict):
        return
    by_key = {f.data_key or name: f for name, f in schema.fields.items()}
    for key, item in value.items():
        field = by_key.get(key)
        if field is None:
            continue
        here = (*path, key)
        yield here, field, item
        yield from _walk_field(schema, field, key, item, here, value)


def _walk_field(
    schema: Schema, field: fields.Field, key: str, item: Any, here: Path, parent: dict
) -> Iterator[tuple[Path, fields.Field | None, Any]]:
    if isinstance(schema, EnvelopeSchema) and key == "data":
        event_type = parent.get("event", {}).get("type")
        if event_type in DATA_SCHEMAS:
            yield from walk(DATA_SCHEMAS[event_type](), item, here)
        return
    if isinstance(field, fields.Nested) and isinstance(item, dict):
        yield from walk(field.schema, item, here)
    elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested) and isinstance(item, list):
        for index, element in enumerate(item):
            yield (*here, index), field.inner, element
            yield from walk(field.inner.schema, element, (*here, index))


def is_schema_object(path: Path, field: fields.Field | None, value: Any) -> bool:
    """An object whose keys are fields: the body, `data`, or anything a Nested schema loads."""
    if not isinstance(value, dict):
        return False
    return field is None or path == ("data",) or isinstance(field, fields.Nested)


def nodes(body: dict) -> list[tuple[Path, fields.Field | None, Any]]:
    return list(walk(EnvelopeSchema(), body))


def get(body: Any, path: Path) -> Any:
    for key in path:
        body = body[key]
    return body


def put(body: Any, path: Path, value: Any) -> None:
    get(body, path[:-1])[path[-1]] = value
