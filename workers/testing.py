"""Unit-test your handlers with Voucherify's own example payloads, no Redis or worker needed.

    from workers.testing import example_event, run

    def test_sync_voucher():
        event = example_event("voucher.updated", data={"voucher": {"active": False}})
        assert run(sync_voucher, event) == "synced"

`example_event` builds the `Event` a worker would hand your handler for any example in the packaged corpus
(`voucherify-ingest send-test --list` names them), validated by the same schemas; `run` calls a handler the
way the worker does (a `Skip` comes back as it is; `TransientError`/`PermanentError` are raised to you).
`event.once` remembers its keys in the event's `OnceMemory`, shared between events when you pass one.
The `voucherify_event` pytest fixture (workers/pytest_plugin.py, found by pytest through the package's
entry point) is `example_event` with one `OnceMemory` per test.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, cast

from core import examples
from workers.actions import ActionContext
from workers.handlers import Event, Skip
from workers.pipeline import parse

__all__ = ["OnceMemory", "example_event", "run"]


class OnceMemory:
    """`event.once` for tests: each key runs its function once; `ran` lists the keys in order."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def __call__(self, key: str, fn: Callable[[], Any]) -> bool:
        if key in self.ran:
            return False
        fn()
        self.ran.append(key)
        return True


def example_event(
    name: str,
    *,
    data: Mapping[str, Any] | None = None,
    once: OnceMemory | None = None,
    **envelope: Any,
) -> Event:
    """The Event for example `name` (an event type or example name), validated like a real delivery.

    `data` is merged into the example's `data` key by key (one level deep into objects, so
    `{"voucher": {"active": False}}` changes one field); other keyword arguments replace envelope keys.
    """
    doc = copy.deepcopy(examples.example_envelope(name))
    for key, value in (data or {}).items():
        current = doc["data"].get(key)
        doc["data"][key] = (
            {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
        )
    doc.update(envelope)
    raw = json.dumps(doc).encode()
    parsed = parse(raw)  # the worker's own validation: an invalid test payload fails here, as it would there
    ctx = ActionContext(
        event_id=f"evt_test{secrets.token_hex(6)}",
        attempt_id="test",
        parsed=parsed,
        raw=raw,
        store=cast(Any, None),  # no store: `once` is the OnceMemory
    )
    return Event(ctx, once if once is not None else OnceMemory())


def run(handler: Callable[[Event], str | Skip | None], event: Event) -> str | Skip | None:
    """Call `handler` as the worker would: its return value, or the exception it raises."""
    return handler(event)
