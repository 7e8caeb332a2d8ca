"""pytest fixtures for testing handlers, registered through the `pytest11` entry point in pyproject.toml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workers.handlers import Event
from workers.testing import OnceMemory, example_event


@pytest.fixture
def voucherify_event() -> Callable[..., Event]:
    """`voucherify_event("voucher.updated", data={...})`: example events sharing one OnceMemory per test."""
    memory = OnceMemory()

    def make(name: str, **kwargs: Any) -> Event:
        return example_event(name, once=memory, **kwargs)

    return make
