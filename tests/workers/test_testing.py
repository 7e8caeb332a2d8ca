"""workers.testing and the voucherify_event fixture: what users unit-test their handlers with."""

from __future__ import annotations

import pytest

from workers.handlers import Event, PermanentError, Skip, TransientError
from workers.testing import OnceMemory, example_event, run


def sync_voucher(event: Event) -> str | Skip:
    voucher = event.data.voucher
    if not voucher.active:
        return Skip("inactive")
    event.once(voucher.code, lambda: None)
    return f"synced {voucher.code}"


class TestExampleEvent:
    def test_a_validated_event_from_the_corpus(self):
        event = example_event("voucher.updated")
        assert event.type == "voucher.updated"
        assert event.voucherify_id
        assert event.data.voucher.code
        assert event.id.startswith("evt_test")

    def test_data_overrides_one_field(self):
        """`data` merges into the example one level deep, and the result is validated like a delivery."""
        assert run(
            sync_voucher, example_event("voucher.updated", data={"voucher": {"active": False}})
        ) == Skip("inactive")

    def test_an_invalid_override_fails_like_a_real_delivery(self):
        from workers.errors import InvalidPayloadError

        with pytest.raises(InvalidPayloadError):
            example_event("voucher.updated", data={"voucher": {"code": 12}})

    def test_once_memory_shared_between_events(self):
        memory = OnceMemory()
        first = example_event("voucher.updated", once=memory)
        second = example_event("voucher.updated", once=memory)
        calls = []
        assert first.once("k", lambda: calls.append(1))
        assert not second.once("k", lambda: calls.append(2))
        assert (calls, memory.ran) == ([1], ["k"])

    def test_errors_reach_the_test(self):
        def flaky(event):
            raise TransientError("later")

        def broken(event):
            raise PermanentError("never")

        with pytest.raises(TransientError):
            run(flaky, example_event("voucher.updated"))
        with pytest.raises(PermanentError):
            run(broken, example_event("voucher.updated"))


def test_the_fixture_is_registered(voucherify_event):
    """Installed, the package gives pytest the voucherify_event fixture (entry point pytest11)."""
    event = voucherify_event("voucher.updated")
    assert run(sync_voucher, event) == f"synced {event.data.voucher.code}"
    assert not voucherify_event("voucher.updated").once(event.data.voucher.code, lambda: None)
