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

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing, post_load
from marshmallow.decorators import POST_LOAD
from marshmallow.error_store import ErrorStore
from marshmallow.utils import set_value

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


# One loadable field: attribute, key in the data, field, whether the inline path applies, and the type whose
# values it returns unchanged (None if it has no such type).
_Step = tuple[str, str, fields.Field, bool, type | None]


def _freeze(value: Any) -> Any:
    """Lists become tuples so the frozen dataclasses built from loaded data are immutable all the way down."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


class BaseSchema(Schema):
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
    _plan: tuple[_Step, ...] | None = None

    def _deserialize(
        self,
        data: Any,
        *,
        error_store: ErrorStore,
        many: bool = False,
        partial: Any = None,
        unknown: str = RAISE,
        index: int | None = None,
    ) -> Any:
        """marshmallow's field loop, minus its per-field overhead on the path every valid payload takes.

        For each field marshmallow makes a closure, calls it through an error-catching helper, runs
        `Field.deserialize`'s missing/None/processor checks and stores through a dotted-path setter: for the
        ~100 mostly-null fields of a voucher, more time than the fields' own conversions. Here an absent or
        null value is settled inline, and a present one goes straight to the field's `_deserialize` (plus its
        validators and post-load functions, as `Field.deserialize` would). Anything else (a required field
        missing, a default to fill, a value that fails) takes marshmallow's own path, so results and error
        messages are marshmallow's; tests/schemas/test_fast_path.py checks that on every example and on
        generated bad input. This overrides a private method, so pyproject.toml keeps marshmallow below 5.
        """
        if many or partial is not None or unknown != EXCLUDE or not isinstance(data, Mapping):
            return super()._deserialize(
                data, error_store=error_store, many=many, partial=partial, unknown=unknown, index=index
            )
        plan = self._plan
        if plan is None:
            plan = self._plan = _load_plan(self)
        index = index if self.opts.index_errors else None
        out: dict[str, Any] = self.dict_class()
        get = data.get
        for attr, key, field, fast, same in plan:
            value = get(key, missing)
            if fast:
                if value is missing:
                    continue  # not required, no default: absent stays absent
                if value is None:
                    out[attr] = None  # allow_none (checked when planning)
                    continue
                if type(value) is same:
                    out[attr] = value  # a str for a string field, a bool for a boolean, an int for Integer
                    continue
                try:
                    result = field._deserialize(value, key, data)
                    field._validate(result)
                    for func in field.post_load:
                        result = func(result)
                except ValidationError:
                    pass  # marshmallow's own path below records the error exactly as it would
                else:
                    out[attr] = result
                    continue
            result = self._call_and_store(
                getter_func=lambda v, field=field, key=key: field.deserialize(v, key, data),
                data=value,
                field_name=key,
                error_store=error_store,
                index=index,
            )
            if result is not missing:
                set_value(out, attr, result)
        return out

    def _invoke_load_processors(self, tag: str, data: Any, *, many: bool, **kwargs: Any) -> Any:
        """Call `_make_model` directly when it is the only post-load hook (as in every schema here).

        marshmallow's generic hook dispatch, two passes over the hooks for each of pre- and post-load, cost
        more per nested object than building its dataclass.
        """
        hooks = self._hooks[tag]
        if tag == POST_LOAD and not many and len(hooks) == 1 and hooks[0][0] == "_make_model":
            return self._make_model(data)
        return super()._invoke_load_processors(tag, data, many=many, **kwargs)

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


def _load_plan(schema: Schema) -> tuple[_Step, ...]:
    """How to load each loadable field: one _Step each, in declaration order."""
    plan = []
    for name, field in schema.load_fields.items():
        attr = field.attribute or name
        fast = (
            not field.required
            and field.load_default is missing
            and field.allow_none
            and not field.pre_load
            and "." not in attr
        )
        # The type a value of which the field would return unchanged, if it has nothing to run on it.
        plain = not field.validators and not field.post_load
        same = next((t for cls, t in _UNCHANGED if plain and isinstance(field, cls)), None)
        plan.append((attr, field.data_key if field.data_key is not None else name, field, fast, same))
    return tuple(plan)


@functools.cache
def _init_names(model: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(model) if f.init)


class _Lean:
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


# Field classes that return a value of this exact type as it is (IntegerOrNumericString subclasses Integer).
_UNCHANGED: tuple[tuple[type, type], ...] = ((Str, str), (Bool, bool), (Integer, int))
