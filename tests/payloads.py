"""The example corpus for tests: core.examples (the one loader), under the names the schema tests use.

The examples ship in ``core/examples`` (a copy of ``shared/voucherify-events``); ``VOUCHERIFY_EVENTS_DIR``
points the tests at another folder, so the tests need nothing outside the repository.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from core import examples

__all__ = [
    "events_dir",
    "example_envelope",
    "example_event_type",
    "example_kind",
    "example_names",
    "load_example",
    "wrap_envelope",
]


def events_dir() -> Path:
    """The folder holding the example payloads."""
    override = os.environ.get("VOUCHERIFY_EVENTS_DIR")
    return Path(override) if override else examples.DIR


def _corpus() -> examples.Corpus:
    return examples.Corpus(events_dir())


def example_names() -> list[str]:
    """Every example file name (``voucher.published-2.json`` ...), sorted."""
    return [f"{n}.json" for n in _corpus().names()]


def load_example(name: str) -> Any:
    """A fresh copy of one example file, as decoded JSON (``.json`` may be omitted)."""
    return _corpus().load(name)


def example_event_type(name: str) -> str:
    """The event type an example belongs to."""
    return _corpus().event_type_of(name)


def example_kind(name: str) -> str:
    """``"data"`` (bare data object), ``"envelope"`` (full body) or ``"raw"`` (designer raw body)."""
    return _corpus().kind(name)


def wrap_envelope(event_type: str, data: Any, **overrides: Any) -> dict[str, Any]:
    """A project-settings webhook body around a copy of ``data`` (tests mutate bodies freely); the same
    input gives the same body."""
    return examples.envelope(event_type, copy.deepcopy(data), stable=True, **overrides)


def example_envelope(name: str) -> dict[str, Any]:
    """The full body for any example: envelope and raw files as they are, data-only files wrapped."""
    return _corpus().example_envelope(name, stable=True)
