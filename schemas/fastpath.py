"""The one place we reach inside marshmallow: a faster field loop for the path valid payloads take.

marshmallow's public API has no hook for how a schema walks its fields, and its own loop costs more per
event than everything else a worker does with it (docs/benchmarks.md). So `FastLoad` overrides two private
`Schema` methods, `_deserialize` and `_invoke_load_processors`, and hands anything unusual back to them.

What keeps this safe:
- an off switch: `SCHEMA_FAST_PATH=0` (core/settings.py; the worker calls `configure` at start) makes every
  load take marshmallow's own code, unchanged;
- a differential test (tests/schemas/test_fast_path.py) loads every example and Hypothesis-generated bad
  bodies both ways and requires the same result and the same error messages;
- marshmallow is pinned to the minor version that test ran against (pyproject.toml): a private method may
  change in any release, so upgrading means running that test first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing
from marshmallow.decorators import POST_LOAD
from marshmallow.error_store import ErrorStore
from marshmallow.types import UnknownOption
from marshmallow.utils import set_value

_enabled = True


def configure(enabled: bool) -> None:
    """Turn the fast path on (the default) or off for this process."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether loads take the fast path."""
    return _enabled


# One loadable field: attribute, key in the data, field, whether the inline path applies, and the type whose
# values it returns unchanged (None if it has no such type).
_Step = tuple[str, str, fields.Field, bool, type | None]


class FastLoad(Schema):
    """A Schema whose field loop skips marshmallow's per-field overhead where the result is the same."""

    # (field class, value type) pairs: a value of that type is returned unchanged by that field when the field
    # has no validators or post-load functions. Set by schemas.base, which defines the field classes.
    unchanged: ClassVar[tuple[tuple[type, type], ...]] = ()
    _plan: tuple[_Step, ...] | None = None

    def _deserialize(
        self,
        data: Any,
        *,
        error_store: ErrorStore,
        many: bool = False,
        partial: Any = None,
        unknown: UnknownOption = RAISE,
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
        generated bad input.
        """
        if not _enabled or many or partial is not None or unknown != EXCLUDE or not isinstance(data, Mapping):
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
        if _enabled and tag == POST_LOAD and not many and len(hooks) == 1 and hooks[0][0] == "_make_model":
            return self._make_model(data)  # type: ignore[attr-defined]  # BaseSchema's post-load hook
        return super()._invoke_load_processors(tag, data, many=many, **kwargs)


def _load_plan(schema: FastLoad) -> tuple[_Step, ...]:
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
        same = next((t for cls, t in type(schema).unchanged if plain and isinstance(field, cls)), None)
        plan.append((attr, field.data_key if field.data_key is not None else name, field, fast, same))
    return tuple(plan)
