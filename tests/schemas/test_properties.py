"""Properties over the valid examples: what Voucherify may vary never breaks one; broken ids always do."""

from __future__ import annotations

import copy
import os
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields

from schemas import ValidationError, parse_event
from tests.payloads import example_envelope, example_names
from tests.schemas.helpers import JSON, REJECTED, Path, get, is_schema_object, nodes, put

# "schemas" keeps the suite fast; SCHEMAS_HYPOTHESIS_PROFILE=schemas-thorough for a longer hunt.
PROFILE = settings.get_profile(os.environ.get("SCHEMAS_HYPOTHESIS_PROFILE", "schemas"))

VALID = [name for name in example_names() if name not in REJECTED]


# Declared fields never start with "zz_", so these keys are unknown wherever they land.
UNKNOWN_KEYS = st.text(max_size=10).map(lambda s: "zz_" + s)
NOT_A_STRING = st.one_of(
    st.integers(), st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)
)

TS3 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z$")
TS6 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z$")


def messages_at(messages: Any, path: Path) -> Any:
    for key in path:
        assert isinstance(messages, dict), messages
        assert key in messages, (key, messages)
        messages = messages[key]
    return messages


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict:
    return example_envelope(draw(st.sampled_from(VALID)))


class TestToleratedVariations:
    @PROFILE
    @given(body=valid_bodies(), data=st.data())
    def test_unknown_keys_anywhere(self, body, data):
        """Unknown keys added to any object, at any depth, never turn a valid payload invalid."""
        objects = [path for path, field, value in nodes(body) if is_schema_object(path, field, value)]
        targets = data.draw(st.lists(st.sampled_from(objects), min_size=1, max_size=5))
        for path in targets:
            get(body, path)[data.draw(UNKNOWN_KEYS)] = data.draw(JSON)

        parse_event(body)

    @PROFILE
    @given(body=valid_bodies(), data=st.data())
    def test_null_optional_objects(self, body, data):
        """Nulling any object the schemas call optional (nullable) never turns a valid payload invalid."""
        optional = [
            path
            for path, field, value in nodes(body)
            if isinstance(field, fields.Nested) and field.allow_none and isinstance(value, dict)
        ]
        if not optional:
            return
        for path in sorted(data.draw(st.sets(st.sampled_from(optional), min_size=1, max_size=4)), key=len):
            try:
                put(body, path, None)
            except TypeError:
                # An ancestor was nulled already.
                continue

        parse_event(body)

    @PROFILE
    @given(body=valid_bodies(), data=st.data())
    def test_timestamp_precision(self, body, data):
        """Switching any timestamps between 3- and 6-digit fractions never turns a valid payload invalid."""
        stamps = [
            path
            for path, _, value in nodes(body)
            if isinstance(value, str) and (TS3.match(value) or TS6.match(value))
        ]
        if not stamps:
            return
        for path in data.draw(st.sets(st.sampled_from(stamps), min_size=1)):
            value = get(body, path)
            if m := TS3.match(value):
                put(body, path, f"{m[1]}.{m[2]}000Z")
            else:
                m = TS6.match(value)
                put(body, path, f"{m[1]}.{m[2][:3]}Z")

        parse_event(body)

    def test_examples_have_both_precisions(self):
        """The examples the properties draw from contain both 3- and 6-digit timestamps."""
        values = [v for n in VALID for _, _, v in nodes(example_envelope(n)) if isinstance(v, str)]

        assert any(TS3.match(v) for v in values)
        assert any(TS6.match(v) for v in values)


def _id_paths(body: dict) -> list[tuple[Path, fields.Field]]:
    return [
        (path, field)
        for path, field, value in nodes(body)
        if isinstance(field, fields.String)
        and isinstance(path[-1], str)
        and (path[-1] in ("id", "code") or path[-1].endswith("_id"))
        and isinstance(value, str)
    ]


class TestBrokenIdentifiers:
    @PROFILE
    @given(body=valid_bodies(), bad=st.one_of(st.just(""), st.none(), NOT_A_STRING), delete=st.booleans())
    def test_event_type(self, body, bad, delete):
        """A missing, null, empty or non-string event.type always fails, at event.type."""
        if delete:
            del body["event"]["type"]
        else:
            body["event"]["type"] = bad

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert messages_at(ei.value.messages, ("event", "type"))

    @PROFILE
    @given(body=valid_bodies(), bad=st.one_of(st.none(), NOT_A_STRING), delete=st.booleans())
    def test_event_id(self, body, bad, delete):
        """A missing, null or non-string event.id always fails, at event.id."""
        if delete:
            del body["event"]["id"]
        else:
            body["event"]["id"] = bad

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert messages_at(ei.value.messages, ("event", "id"))

    @PROFILE
    @given(body=valid_bodies(), data=st.data())
    def test_non_string_ids(self, body, data):
        """Any id, *_id or code set to a non-string fails, with the message at that id's path."""
        candidates = _id_paths(body)
        path, _ = data.draw(st.sampled_from(candidates))
        put(body, path, data.draw(NOT_A_STRING))

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert messages_at(ei.value.messages, path) == ["Not a valid string."]

    @PROFILE
    @given(body=valid_bodies(), data=st.data())
    def test_required_ids(self, body, data):
        """Deleting or nulling a required id (or a SimpleVoucher's code) always fails, at its path."""
        required = [(path, field) for path, field in _id_paths(body) if field.required]
        if not required:
            return
        path, _ = data.draw(st.sampled_from(required))
        if data.draw(st.booleans()):
            del get(body, path[:-1])[path[-1]]
            expected = ["Missing data for required field."]
        else:
            put(body, path, None)
            expected = ["Field may not be null."]

        with pytest.raises(ValidationError) as ei:
            parse_event(body)

        assert messages_at(ei.value.messages, path) == expected

    def test_required_ids_exist(self):
        """The examples contain required ids below the envelope, so the property above has work to do."""
        found = {
            path[-1]
            for n in VALID
            for path, field in _id_paths(example_envelope(n))
            if field.required and path[0] == "data"
        }

        assert {"id", "code"} <= found


def test_examples_are_not_mutated():
    """Each draw works on its own copy: example_envelope hands out fresh dicts."""
    first = example_envelope(VALID[0])
    second = example_envelope(VALID[0])
    first["zz"] = 1

    assert "zz" not in second
    assert copy.deepcopy(second) == example_envelope(VALID[0])
