"""Voucherify example payloads for tests, wrapped in a realistic v2024-01-01 envelope when they are data-only.

The examples ship in ``core/examples`` (a copy of ``shared/voucherify-events``; override the folder with
``VOUCHERIFY_EVENTS_DIR``), so the tests need nothing outside the repository.
Most are the spec's bare ``data`` objects; ``_index.json`` says which files are full envelopes already.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "events_dir",
    "example_envelope",
    "example_event_type",
    "example_kind",
    "example_names",
    "load_example",
    "wrap_envelope",
]

_REPO = Path(__file__).resolve().parent.parent


def events_dir() -> Path:
    """The folder holding the example payloads."""
    override = os.environ.get("VOUCHERIFY_EVENTS_DIR")
    return Path(override) if override else _REPO / "core" / "examples"


def _index() -> dict[str, Any]:
    return _read_index(events_dir())


@cache
def _read_index(directory: Path) -> dict[str, Any]:
    path = directory / "_index.json"
    return json.loads(path.read_text(encoding="utf-8"))["files"] if path.exists() else {}


def example_names() -> list[str]:
    """Every example file name (``voucher.published-2.json`` ...), sorted, without ``_index.json``."""
    return sorted(p.name for p in events_dir().glob("*.json") if not p.name.startswith("_"))


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_example(name: str) -> dict[str, Any]:
    """A fresh copy of one example file, as decoded JSON (``.json`` may be omitted)."""
    if not name.endswith(".json"):
        name += ".json"
    return json.loads(_read(events_dir() / name))


def example_event_type(name: str) -> str:
    """The event type an example belongs to (from ``_index.json``, else from the file name)."""
    if not name.endswith(".json"):
        name += ".json"
    entry = _index().get(name)
    if entry is not None:
        return entry["event_type"]
    stem = name.removesuffix(".json")
    base, _, suffix = stem.rpartition("-")
    return base if base and suffix.isdigit() else stem


def example_kind(name: str) -> str:
    """``"data"`` (bare data object), ``"envelope"`` (full body) or ``"raw"`` (designer raw body)."""
    if not name.endswith(".json"):
        name += ".json"
    kind = _index().get(name, {}).get("kind", "")
    if kind.startswith("data-only"):
        return "data"
    if kind.startswith("full envelope"):
        return "envelope"
    if kind:
        return "raw"
    body = load_example(name)
    return "envelope" if isinstance(body.get("event"), dict) and "data" in body else "data"


def wrap_envelope(event_type: str, data: Any, **overrides: Any) -> dict[str, Any]:
    """A project-settings webhook body around ``data``, shaped like the docs' real ``voucher.published`` one.

    ``overrides`` replace top-level keys (``source=...``, ``type=""``); ``event=`` is merged into ``event``.
    """
    created_at = "2024-02-09T11:11:11.111Z"
    event: dict[str, Any] = {
        "id": "evvou_0e16e42bc6e0c65b57",
        "type": event_type,
        "created_at": created_at,
        "group_id": "v-0e16e42bc6e0c65b57",
        "event_source": {"channel": "API", "api_key": {"name": "test", "app_id": "0e16e42b-c6e0-c65b"}},
    }
    event.update(overrides.pop("event", {}))
    body: dict[str, Any] = {
        "id": "whs_0e16e42bc6e0c65b57",
        "project_id": "proj_YaEcEOLM",
        "created_at": created_at,
        "type": event_type,
        "data": copy.deepcopy(data),
        "source": {
            "id": "wh_j56Vfy47Vx9YOX7QYD1fzHnc",
            "object": "webhook",
            "target_url": "https://hooks.example.com/voucherify",
        },
        "event": event,
    }
    body.update(overrides)
    return body


def example_envelope(name: str) -> dict[str, Any]:
    """The full body for any example: envelope files as they are, data-only files wrapped."""
    body = load_example(name)
    if example_kind(name) == "data":
        return wrap_envelope(example_event_type(name), body)
    return body
