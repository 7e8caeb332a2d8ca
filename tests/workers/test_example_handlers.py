"""docs/examples/shop_handlers.py, the example docs/handlers.md walks through, against a real HTTP server.

Kept working by this test, written the way docs/handlers.md tells users to test theirs (workers.testing).
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.support import ROOT
from workers import handlers
from workers.handlers import PermanentError, Skip, TransientError


@pytest.fixture
def shop(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "examples"))
    monkeypatch.setitem(sys.modules, "shop_handlers", None)  # imported afresh here, forgotten after
    del sys.modules["shop_handlers"]
    import shop_handlers

    return shop_handlers


def test_it_loads_as_a_worker_loads_it(shop):
    """The example passes every check a worker makes at start (types exist, names unique)."""
    names = [s.name for s in handlers.load(["shop_handlers"])]
    assert names == ["handler:shop_handlers.announce_codes", "handler:shop_handlers.sync_voucher"]


class TestAnnounceCodes:
    def test_posts_once_per_generation(self, shop, sink, monkeypatch, voucherify_event):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", sink.url)
        event = voucherify_event("campaign.vouchers.generation.completed")
        assert shop.announce_codes(event) == "posted to Slack"
        assert shop.announce_codes(voucherify_event("campaign.vouchers.generation.completed")) == Skip(
            "already posted"
        )
        ((_, body),) = sink.requests
        assert "5 codes generated for *Test-campaign-applicable-to*" in json.loads(body)["text"]

    def test_skips_without_a_url(self, shop, monkeypatch, voucherify_event):
        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
        assert shop.announce_codes(voucherify_event("campaign.vouchers.generation.completed")) == Skip(
            "SLACK_WEBHOOK_URL is not set"
        )


class TestSyncVoucher:
    def test_sends_the_voucher_with_the_event_id_as_idempotency_key(
        self, shop, sink, monkeypatch, voucherify_event
    ):
        monkeypatch.setenv("CRM_URL", sink.url)
        event = voucherify_event("voucher.updated", data={"voucher": {"active": False}})
        assert shop.sync_voucher(event) == f"synced {event.data.voucher.code}"
        ((headers, body),) = sink.requests
        assert headers["idempotency-key"] == event.voucherify_id
        assert json.loads(body)["active"] is False

    @pytest.mark.parametrize(
        ("status", "error"), [(503, TransientError), (429, TransientError), (400, PermanentError)]
    )
    def test_refusals_are_classified(self, shop, sink, monkeypatch, voucherify_event, status, error):
        monkeypatch.setenv("CRM_URL", sink.url)
        sink.status = status
        with pytest.raises(error, match=str(status)):
            shop.sync_voucher(voucherify_event("voucher.updated"))
