"""The lenient field types every schema is built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from marshmallow import ValidationError

from schemas.base import (
    BaseSchema,
    Date,
    DateTime,
    Integer,
    IntegerOrNumericString,
    List,
    Metadata,
    Nested,
    Str,
)


class TestDateTime:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2024-02-09T11:11:11.111Z", datetime(2024, 2, 9, 11, 11, 11, 111000, tzinfo=UTC)),
            ("2024-01-15T12:20:38.596843Z", datetime(2024, 1, 15, 12, 20, 38, 596843, tzinfo=UTC)),
            ("2024-01-15T12:20:38.213000Z", datetime(2024, 1, 15, 12, 20, 38, 213000, tzinfo=UTC)),
            ("2024-01-15T12:20:38Z", datetime(2024, 1, 15, 12, 20, 38, tzinfo=UTC)),
            ("2024-01-15T14:20:38.5+02:00", datetime(2024, 1, 15, 12, 20, 38, 500000, tzinfo=UTC)),
            ("2024-01-15T12:20:38.111", datetime(2024, 1, 15, 12, 20, 38, 111000, tzinfo=UTC)),
            ("2024-02-17", datetime(2024, 2, 17, tzinfo=UTC)),
        ],
    )
    def test_accepts(self, value, expected):
        """3- and 6-digit fractions, Z or offsets, and date-only all load as aware UTC datetimes."""
        loaded = DateTime().deserialize(value)

        assert loaded == expected
        assert loaded.utcoffset() is not None

    def test_docs_spaced_timestamp(self):
        """Regression: customer.reward_redemptions.completed's example writes "10: 23: 57.997Z"; it loads."""
        assert DateTime().deserialize("2024-05-13T10: 23: 57.997Z") == datetime(
            2024, 5, 13, 10, 23, 57, 997000, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        "value", ["yesterday", "", "2024-13-01T00:00:00Z", "10: 23: 57", 1707480000, 1.5, True, [], {}]
    )
    def test_rejects(self, value):
        """Anything that is not an ISO-8601 string is 'Not a valid datetime.'."""
        with pytest.raises(ValidationError) as ei:
            DateTime().deserialize(value)

        assert ei.value.messages == ["Not a valid datetime."]

    def test_null(self):
        """Null is allowed unless a field says otherwise."""
        assert DateTime().deserialize(None) is None


class TestDate:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("2026-01-31", date(2026, 1, 31)), ("2026-01-31T23:00:00.000Z", date(2026, 1, 31))],
    )
    def test_accepts(self, value, expected):
        """Date-only strings load; a full timestamp is reduced to its date."""
        assert Date().deserialize(value) == expected

    @pytest.mark.parametrize("value", ["soon", "2026-02-30", 20260131])
    def test_rejects(self, value):
        """Non-dates are 'Not a valid date.'."""
        with pytest.raises(ValidationError) as ei:
            Date().deserialize(value)

        assert ei.value.messages == ["Not a valid date."]


class TestInteger:
    @pytest.mark.parametrize(("value", "expected"), [(4198, 4198), (0, 0), (-5, -5), (300.0, 300)])
    def test_accepts(self, value, expected):
        """Integers (and whole floats) load as int."""
        assert Integer().deserialize(value) == expected

    @pytest.mark.parametrize("value", ["abc", "300", 41.98, True, False, [], {}])
    def test_rejects(self, value):
        """Strings, booleans and fractions are not minor-unit amounts."""
        with pytest.raises(ValidationError) as ei:
            Integer().deserialize(value)

        assert ei.value.messages == ["Not a valid integer."]

    def test_or_numeric_string(self):
        """IntegerOrNumericString also takes "300" but still refuses "abc"."""
        field = IntegerOrNumericString()

        assert field.deserialize("300") == 300
        assert field.deserialize(300) == 300
        with pytest.raises(ValidationError):
            field.deserialize("abc")


class TestMetadata:
    def test_mixed_values(self):
        """Metadata keeps any JSON values, mixed types included."""
        value = {"test": True, "sign-up": "true", "n": 1.5, "nested": {"a": [1, None]}, "none": None}

        assert Metadata().deserialize(value) == value

    def test_not_an_object(self):
        """Metadata must be an object."""
        with pytest.raises(ValidationError):
            Metadata().deserialize(["a"])


class TestBaseSchema:
    def test_unknown_excluded_at_every_depth(self):
        """Unknown keys are dropped in nested schemas too, because they share the base."""

        class Inner(BaseSchema):
            a = Str()

        class Outer(BaseSchema):
            inner = Nested(Inner)

        assert Outer().load({"x": 1, "inner": {"a": "1", "y": 2}}) == {"inner": {"a": "1"}}

    def test_model_gets_lists_as_tuples(self):
        """__model__ receives tuples for lists, so frozen dataclasses stay immutable."""

        @dataclass(frozen=True)
        class Model:
            items: tuple[str, ...] = ()
            name: str | None = None

        class ModelSchema(BaseSchema):
            __model__ = Model

            items = List(Str())
            name = Str()

        assert ModelSchema().load({"items": ["a", "b"]}) == Model(items=("a", "b"))
