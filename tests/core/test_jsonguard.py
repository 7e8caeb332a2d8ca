"""core.jsonguard: the byte scan agrees with a real parse, and whitespace removal re-spells nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import jsonguard

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(codec="utf-8")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=30,
)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(JSON, st.integers(min_value=0, max_value=8))
def test_depth_scan_agrees_with_the_parse(value, limit):
    """Brackets inside strings do not count; the scan says "too deep" exactly when the parse would."""
    body = json.dumps(value, ensure_ascii=False).encode()
    assert jsonguard.too_deep(body, limit) == (depth(value) > limit)


@given(JSON)
def test_stripping_whitespace_gives_the_compact_form(value):
    """Pretty-printed JSON minus its whitespace is exactly JSON.stringify's compact form."""
    pretty = json.dumps(value, indent=2, ensure_ascii=False).encode()
    assert (
        jsonguard.strip_whitespace(pretty)
        == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    )


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000])
def test_deep_bodies_are_refused_before_parsing(body):
    with pytest.raises(jsonguard.TooDeepError):
        jsonguard.loads(body)


def test_duplicate_keys_are_refused_when_asked():
    assert jsonguard.loads(b'{"a":1,"a":2}') == {"a": 2}
    with pytest.raises(jsonguard.DuplicateKeyError, match="'a'"):
        jsonguard.loads(b'{"b":{"a":1,"a":2}}', unique_keys=True)
