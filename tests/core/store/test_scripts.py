"""The Lua scripts: each documents its contract and spells the Python constants it uses the same way."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from core.states import TERMINAL
from core.store import LATENCY_BUCKETS
from core.store.base import lua

SCRIPTS = sorted(p.name.removesuffix(".lua") for p in resources.files("core.store").joinpath("lua").iterdir())


def test_every_script_is_there():
    """The scripts the store runs are the files in core/store/lua (a rename breaks this, not production)."""
    assert SCRIPTS == [
        "accept",
        "begin_many",
        "claim_due",
        "collect",
        "compact",
        "expand",
        "forget",
        "hand_over",
        "mark_late",
        "release",
        "release_lock",
        "reserve_many",
        "restore",
        "set_status",
        "take_duplicates",
        "withdraw_hand_off",
    ]


@pytest.mark.parametrize("name", SCRIPTS)
def test_header_lists_keys_argv_and_return(name):
    """Every script opens with a comment block naming its KEYS, its ARGV and what it returns."""
    header = []
    for line in lua(name).splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    text = "\n".join(header)
    assert text.startswith(f"-- {name}:")
    for word in ("KEYS:", "ARGV:", "Returns"):
        assert word in text, f"{name}.lua does not say its {word}"


@pytest.mark.parametrize("name", ["begin_many", "hand_over", "set_status"])
def test_terminal_statuses_agree(name):
    """The scripts' TERMINAL table is core.states.TERMINAL."""
    table = re.search(r"^local TERMINAL = \{(.*)\}", lua(name), re.M)
    assert table is not None
    assert set(re.findall(r"(\w+) = true", table.group(1))) == {str(s) for s in TERMINAL}


def test_latency_buckets_agree():
    """set_status.lua counts latency into exactly core.store.LATENCY_BUCKETS."""
    table = re.search(r"^local BUCKETS = \{(.*?)\}", lua("set_status"), re.M | re.S)
    assert table is not None
    assert re.findall(r"'([\d.]+)'", table.group(1)) == [f"{b:g}" for b in LATENCY_BUCKETS]


def test_scripts_are_read_once():
    """The text is cached: a store built per request does not read files."""
    assert lua("accept") is lua("accept")
