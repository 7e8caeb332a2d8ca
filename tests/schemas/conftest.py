from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.payloads import example_envelope, load_example

# Property tests run example payloads through parse_event; cap them so the schema suite stays fast.
# test_properties applies "schemas" unless SCHEMAS_HYPOTHESIS_PROFILE names another (e.g. schemas-thorough).
# Registered, not loaded: loading would change Hypothesis defaults for the other packages' tests too.
settings.register_profile(
    "schemas",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("schemas-thorough", parent=settings.get_profile("schemas"), max_examples=500)


@pytest.fixture
def publication_succeeded() -> dict[str, Any]:
    """The spec's publication.succeeded example, wrapped in an envelope."""
    return example_envelope("publication.succeeded")


@pytest.fixture
def voucher_created_data() -> dict[str, Any]:
    """The spec's voucher.created example: a bare data object with a full Voucher."""
    return load_example("voucher.created")
