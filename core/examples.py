"""The corpus of real Voucherify example payloads shipped with the package (core/examples/*.json).

Most files are the `data` object alone (that is all Voucherify's spec models); `envelope()` wraps one in a
realistic v2024-01-01 envelope. Used by `voucherify-ingest send-test` and by the tests.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DIR = Path(__file__).with_name("examples")


def names() -> list[str]:
    """Example names (file names without .json), sorted."""
    return sorted(p.stem for p in DIR.glob("*.json") if not p.name.startswith("_"))


def event_types() -> list[str]:
    """Event types with at least one example."""
    return sorted({event_type_of(n) for n in names()})


def event_type_of(name: str) -> str:
    """`voucher.published-2` -> `voucher.published`."""
    base, _, suffix = name.rpartition("-")
    return base if base and suffix.isdigit() else name


def load(name: str) -> Any:
    """The example as stored."""
    path = DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no example named {name!r}; see `voucherify-ingest send-test --list`")
    return json.loads(path.read_text())


def is_envelope(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("event"), dict) and "data" in doc


def envelope(event_type: str, data: Any, **overrides: Any) -> dict[str, Any]:
    """Wrap a `data` object the way Voucherify's project-settings webhooks do; ids are fresh."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    doc: dict[str, Any] = {
        "id": f"whs_{secrets.token_hex(9)}",
        "project_id": "proj_test",
        "created_at": now,
        "type": event_type,
        "data": data,
        "source": {
            "id": "wh_test",
            "object": "webhook",
            "target_url": "http://localhost/webhooks/voucherify",
        },
        "event": {
            "id": f"evtest_{secrets.token_hex(9)}",
            "type": event_type,
            "created_at": now,
            "group_id": f"v-{secrets.token_hex(9)}",
            "event_source": {"channel": "API"},
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def example_envelope(name: str, **overrides: Any) -> dict[str, Any]:
    """A full envelope for any example: envelope files as they are, data-only files wrapped."""
    doc = load(name)
    if is_envelope(doc):
        return {**doc, **overrides}
    return envelope(event_type_of(name), doc, **overrides)
