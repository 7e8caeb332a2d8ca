"""BaseSchema's shortcuts give exactly what marshmallow's own code gives: results and errors.

Each body is loaded twice, once as shipped and once with the off switch (SCHEMA_FAST_PATH=0), which sends
every load through marshmallow's own Schema._deserialize and _invoke_load_processors, and the outcomes are
compared: the same loaded event, or the same error messages.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema

from schemas import ValidationError, fastpath, parse_event
from tests.payloads import example_envelope, example_names
from tests.schemas.helpers import JSON, get, nodes, put

PROFILE = settings.get_profile(os.environ.get("SCHEMAS_HYPOTHESIS_PROFILE", "schemas"))


def outcome(body: Any) -> tuple[str, Any]:
    try:
        return "ok", parse_event(copy.deepcopy(body))
    except ValidationError as exc:
        return "invalid", exc.messages


def both(body: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[str, Any], tuple[str, Any]]:
    fast = outcome(body)
    fastpath.configure(False)  # the off switch: marshmallow's own loop and hook dispatch
    try:
        reference = outcome(body)
    finally:
        fastpath.configure(True)
    return fast, reference


@pytest.mark.parametrize("name", example_names())
def test_every_example_loads_the_same(name, monkeypatch):
    fast, reference = both(example_envelope(name), monkeypatch)
    assert fast == reference


def test_the_reference_really_is_marshmallows_loop(monkeypatch):
    """Guard for the test itself: the off switch must change which loop runs."""
    calls = []
    original = Schema._deserialize

    def spy(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Schema, "_deserialize", spy)
    parse_event(example_envelope("voucher.updated"))
    assert calls == []  # BaseSchema's own loop never calls marshmallow's for a valid body
    fastpath.configure(False)
    try:
        parse_event(example_envelope("voucher.updated"))
    finally:
        fastpath.configure(True)
    assert calls


def test_the_switch_comes_from_the_environment(settings):
    """SCHEMA_FAST_PATH=0 reaches the worker: create_celery turns the fast path off."""
    from core.settings import Settings
    from workers.app import create_celery

    assert Settings.from_env({"SCHEMA_FAST_PATH": "0"}).schema_fast_path is False
    try:
        create_celery(settings.with_(schema_fast_path=False))
        assert not fastpath.enabled()
    finally:
        fastpath.configure(True)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> dict:
    """An example whose values at a few random places are replaced by any JSON, or removed."""
    body = example_envelope(draw(st.sampled_from(example_names())))
    places = [path for path, field, value in nodes(body) if path]
    if not places:
        return body  # a Payload-designer body: nothing the schemas know
    for path in draw(st.lists(st.sampled_from(places), min_size=1, max_size=4)):
        try:
            get(body, path[:-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a parent
        parent = get(body, path[:-1])
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            try:
                put(body, path, draw(JSON))
            except (KeyError, IndexError, TypeError):
                continue
    return body


@PROFILE
@given(body=mutated_bodies())
def test_mutated_bodies_give_the_same_result_or_errors(body):
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, reference = both(body, monkeypatch)
    assert fast == reference


@pytest.mark.parametrize(
    "value",
    [None, "", "text", 0, 1, -3, 2.0, 2.5, float("inf"), True, False, [], ["a"], {}, {"a": 1}],
    ids=repr,
)
def test_each_kind_of_value_in_each_kind_of_field(value, monkeypatch):
    """One value of every JSON kind in every field of a full voucher, one field at a time."""
    body = example_envelope("voucher.updated")
    for path, _field, _ in nodes(body):
        if not path or path[0] != "data":
            continue
        changed = copy.deepcopy(body)
        try:
            put(changed, path, value)
        except (KeyError, IndexError, TypeError):
            continue
        fast, reference = both(changed, monkeypatch)
        assert fast == reference, path
