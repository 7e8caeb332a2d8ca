"""The one base schema and the lenient field types every Voucherify schema is built from.

Conventions (see /work/shared/VOUCHERIFY.md section 6 for the evidence):

- Everything is nullable unless a field says otherwise: the spec's own examples put ``null`` into hundreds of
  fields the spec calls non-nullable, so the field classes below default to ``allow_none=True``.
- ``required=True`` only where the spec requires a key *and* every standard example has it: top-level ``data``
  keys on exactly that rule (``tests/schemas/test_examples.py`` checks all 72 types against the spec), and
  inside entities only identifiers (an entity's ``id``, a ``SimpleVoucher``'s ``code``). Voucherify's own
  examples omit keys its spec requires, so nothing else is required.
- Timestamps are ISO-8601 with ``Z``, with 3 or 6 fractional digits, sometimes mixed in one payload.
- Money and points are integers in minor units; ``Integer`` refuses strings, booleans and fractions.
- ``metadata`` is free-form: any JSON value under string keys.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, fields, post_load

from schemas.fastpath import FastLoad

__all__ = [
    "BaseSchema",
    "Bool",
    "Date",
    "DateTime",
    "Email",
    "Integer",
    "IntegerOrNumericString",
    "List",
    "Metadata",
    "Nested",
    "Number",
    "Object",
    "OneOrMany",
    "Raw",
    "Str",
]


def _freeze(value: Any) -> Any:
    """Lists become tuples so the frozen dataclasses built from loaded data are immutable all the way down."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


class BaseSchema(FastLoad, Schema):
    """Base of every schema in this package.

    Subclasses may set ``__model__`` to a dataclass; ``load`` then returns an instance of it, built from the
    loaded keys that match its field names (absent keys take the field default, lists become tuples).
    """

    class Meta:
        # Voucherify adds fields to payloads without notice ("backward-compatible changes", API overview), and
        # the worker keeps the raw body anyway, so unknown keys are dropped instead of failing the event.
        # Meta does not propagate to nested schemas: every nested schema must derive from BaseSchema too.
        unknown = EXCLUDE

    __model__: ClassVar[type | None] = None

    @post_load
    def _make_model(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if self.__model__ is None:
            return data
        return self.build(data)

    def build(self, data: dict[str, Any]) -> Any:
        """Turn loaded data into ``__model__``; override to derive attributes."""
        assert self.__model__ is not None
        return self.__model__(
            **{name: _freeze(data[name]) for name in _init_names(self.__model__) if name in data}
        )


@functools.cache
def _init_names(model: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(model) if f.init)


class _Lean(fields.Field):
    """Skips validation when a field has no validators.

    marshmallow builds a validator chain (`And(*self.validators)`) for every value it loads, validators or
    not; with ~100 fields in a voucher that was a sixth of the time a worker spends validating an event.
    """

    validators: list[Any]

    def _validate(self, value: Any) -> None:
        if self.validators:
            super()._validate(value)


# Nullable-by-default versions of the marshmallow fields. Pass allow_none=False where null is really wrong.


class Str(_Lean, fields.String):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Email(_Lean, fields.Email):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Bool(_Lean, fields.Boolean):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Number(_Lean, fields.Float):
    """A plain number such as ``percent_off``; accepts ints, floats and numeric strings, never booleans."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault("allow_nan", False)
        super().__init__(**kwargs)


class Integer(_Lean, fields.Field):
    """An integer: money in minor units (4198 = 41.98), points, counts.

    Strings, booleans and fractional numbers are refused; ``300.0`` is accepted as 300 because JSON encoders
    are free to write whole numbers that way.
    """

    default_error_messages = {"invalid": "Not a valid integer."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise self.make_error("invalid")


class IntegerOrNumericString(Integer):
    """An integer that Voucherify sometimes sends as a string.

    ``campaign.referral_program.referee_reward.amount`` is a string in the spec and ``300`` in its examples.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError as e:
                raise self.make_error("invalid") from e
        return super()._deserialize(value, attr, data, **kwargs)


# "2024-05-13T10: 23: 57.997Z": a docs example (customer.reward_redemptions.completed) was pretty-printed
# with a space after every colon, timestamps included. Tolerate exactly that shape, nothing looser.
_SPACED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d: \d\d: \d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _parse_datetime(value: str) -> datetime:
    text = value.strip()
    if _SPACED_TIME.fullmatch(text):
        text = text.replace(": ", ":")
    parsed = datetime.fromisoformat(text)
    # Voucherify always sends UTC ("Z"); a timestamp without offset is read as UTC rather than left naive.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class DateTime(_Lean, fields.Field):
    """An ISO-8601 timestamp with ``Z`` and 3 or 6 fractional digits (both occur, even in one payload).

    Returns an aware ``datetime`` in UTC. A date-only string is accepted as midnight UTC.
    """

    default_error_messages = {"invalid": "Not a valid datetime."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return _parse_datetime(value)
        except ValueError as e:
            raise self.make_error("invalid") from e


class Date(_Lean, fields.Field):
    """A date-only value (``birthdate``, ``activates_at``, ``buckets[].expires_at`` ...).

    A full timestamp is accepted too and reduced to its (UTC) date, in case Voucherify widens a field.
    """

    default_error_messages = {"invalid": "Not a valid date."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> date:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
        try:
            return _parse_datetime(value).astimezone(UTC).date()
        except ValueError as e:
            raise self.make_error("invalid") from e


class Metadata(_Lean, fields.Dict):
    """Free-form ``metadata``: string keys, any JSON values (``"test": true``, ``"sign-up": "true"``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(keys=fields.String(), values=fields.Raw(allow_none=True), **kwargs)


class Object(_Lean, fields.Dict):
    """An object whose contents we do not model (``user``, ``source``, ``balance`` in some events)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Raw(_Lean, fields.Raw):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)


class Nested(_Lean, fields.Nested):
    def __init__(self, nested: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(nested, **kwargs)


class List(_Lean, fields.List):
    def __init__(self, inner: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        super().__init__(inner, **kwargs)


class OneOrMany(List):
    """A list that Voucherify sometimes sends as a single item; always loads as a list.

    ``buckets`` is an array in one loyalty event and a single object in the spec of its twin (whose
    example is an array again); ``distribution_channels`` is an enum string in the spec and
    ``["webhook"]`` in the example.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if not isinstance(value, list | tuple):
            value = [value]
        return super()._deserialize(value, attr, data, **kwargs)


# Field classes that return a value of this exact type as it is (IntegerOrNumericString subclasses Integer):
# the fast path passes such values through (schemas/fastpath.py). Set here, below the classes it names.
BaseSchema.unchanged = ((Str, str), (Bool, bool), (Integer, int))
