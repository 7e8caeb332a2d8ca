"""The corpus of real Voucherify example payloads shipped with the package (core/examples/*.json).

Most files are the `data` object alone (that is all Voucherify's spec models); `envelope()` wraps one in a
realistic v2024-01-01 envelope. `_index.json` says which files are full envelopes already, and which are a
distribution's raw Payload-designer body (sent as they are). Used by `voucherify-ingest send-test`, the
benchmark and the tests: the one loader of the corpus.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

DIR = Path(__file__).with_name("examples")

Kind = Literal["data", "envelope", "raw"]


@dataclass(frozen=True)
class Corpus:
    """The examples in one folder (the packaged one, or another a test points at)."""

    directory: Path = DIR

    def names(self) -> list[str]:
        """Example names (file names without .json), sorted."""
        return sorted(p.stem for p in self.directory.glob("*.json") if not p.name.startswith("_"))

    def load(self, name: str) -> Any:
        """The example as stored (`name` with or without .json); a fresh copy each time."""
        path = self.directory / f"{name.removesuffix('.json')}.json"
        if not path.is_file():
            raise KeyError(f"no example named {name!r}; see `voucherify-ingest send-test --list`")
        return json.loads(_read(path))

    def event_type_of(self, name: str) -> str:
        """The event type of an example: from the index, else `voucher.published-2` -> `voucher.published`."""
        stem = name.removesuffix(".json")
        entry = _index(self.directory).get(f"{stem}.json")
        if entry is not None:
            return str(entry["event_type"])
        base, _, suffix = stem.rpartition("-")
        return base if base and suffix.isdigit() else stem

    def kind(self, name: str) -> Kind:
        """`data` (a bare data object), `envelope` (a whole body) or `raw` (a Payload-designer body)."""
        stem = name.removesuffix(".json")
        described = str(_index(self.directory).get(f"{stem}.json", {}).get("kind", ""))
        if described.startswith("data-only"):
            return "data"
        if described.startswith("full envelope"):
            return "envelope"
        if described:
            return "raw"
        return "envelope" if is_envelope(self.load(stem)) else "data"

    def example_envelope(self, name: str, *, stable: bool = False, **overrides: Any) -> dict[str, Any]:
        """The body to send for any example: whole bodies as they are, data-only files wrapped."""
        doc = self.load(name)
        if self.kind(name) != "data":
            return {**doc, **overrides}
        return envelope(self.event_type_of(name), doc, stable=stable, **overrides)


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _index(directory: Path) -> dict[str, Any]:
    path = directory / "_index.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))["files"]) if path.exists() else {}


PACKAGED = Corpus()


def names() -> list[str]:
    """Example names of the packaged corpus, sorted."""
    return PACKAGED.names()


def load(name: str) -> Any:
    """A packaged example as stored."""
    return PACKAGED.load(name)


def event_type_of(name: str) -> str:
    """The event type of a packaged example."""
    return PACKAGED.event_type_of(name)


def event_types() -> list[str]:
    """Event types with at least one packaged example."""
    return sorted({event_type_of(n) for n in names()})


def example_envelope(name: str, **overrides: Any) -> dict[str, Any]:
    """The body to send for a packaged example."""
    return PACKAGED.example_envelope(name, **overrides)


def is_envelope(doc: Any) -> bool:
    """True for a whole webhook body (an `event` object and `data`), False for a bare data object."""
    return isinstance(doc, dict) and isinstance(doc.get("event"), dict) and "data" in doc


def envelope(event_type: str, data: Any, *, stable: bool = False, **overrides: Any) -> dict[str, Any]:
    """Wrap a `data` object the way Voucherify's project-settings webhooks do; ids are fresh.

    `overrides` replace top-level keys (`source=...`, `type=""`); a dict given for a dict key is merged into
    it (`event={"entity_id": ...}`). `stable` makes the same input give the same body (ids from a hash of
    it, a fixed time), for tests that compare bodies.
    """
    if stable:
        digest = hashlib.sha256(json.dumps([event_type, data], sort_keys=True).encode()).hexdigest()
        ids = [digest[:18]] * 3
        now = "2024-02-09T11:11:11.111Z"
    else:
        ids = [secrets.token_hex(9) for _ in range(3)]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    doc: dict[str, Any] = {
        "id": f"whs_{ids[0]}",
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
            "id": f"evtest_{ids[1]}",
            "type": event_type,
            "created_at": now,
            "group_id": f"v-{ids[2]}",
            "event_source": {"channel": "API"},
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc
