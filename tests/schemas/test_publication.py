"""publication.succeeded and voucher.published: what the notify_customer action reads."""

from __future__ import annotations

import pytest

from schemas import parse_event
from schemas.publication import (
    Campaign,
    Customer,
    Publication,
    PublicationSucceeded,
    Voucher,
    VoucherPublished,
    combine_vouchers,
)
from tests.payloads import example_envelope, load_example, wrap_envelope


class TestPublicationSucceeded:
    def test_attributes(self, publication_succeeded):
        """The spec example: vouchers list, publication, customer and campaign come through typed."""
        data = parse_event(publication_succeeded).data

        assert isinstance(data, PublicationSucceeded)
        assert isinstance(data.customer, Customer)
        assert data.customer.id == "cust_IdgAFZxYwwHctOk9pPuMu308"
        assert data.customer.name == "Jack Webhook"
        assert None is data.customer.email
        assert data.customer.source_id == "jck-wbhk"
        assert data.customer.metadata == {"region": "EMEA"}
        assert isinstance(data.campaign, Campaign)
        assert (
            data.campaign.id,
            data.campaign.name,
        ) == ("camp_EV79Z6CjaAMpX4pFxVivvzzk", "Free product zero items-test")
        assert isinstance(data.publication, Publication)
        assert data.publication.id == "pub_r0413bLwExpB6LE0v286eNVmEpx6NxmP"
        assert data.publication.customer_id == "cust_IdgAFZxYwwHctOk9pPuMu308"
        assert data.publication.customer.name == "Jack Webhook"
        assert data.publication.vouchers_id == ("v_gZt6Zc74XKRv6VXSqubC2jDMfHjzbFPi",)
        assert data.user["id"] == "user_ypzfEcSAphSONMGJRlj6trzXKsh7FGX7"

        [voucher] = data.vouchers
        assert isinstance(voucher, Voucher)
        assert voucher.id == "v_gZt6Zc74XKRv6VXSqubC2jDMfHjzbFPi"
        assert voucher.code == "ZERO-8"
        assert voucher.campaign == "Free product zero items-test"
        assert voucher.campaign_id == "camp_EV79Z6CjaAMpX4pFxVivvzzk"

    def test_voucher_next_to_vouchers_is_added(self):
        """A `voucher` that is not in the `vouchers` list is appended to `vouchers`."""
        data = load_example("publication.succeeded")
        data["voucher"] = {"id": "v_other", "code": "OTHER-1", "campaign": "x", "campaign_id": "camp_x"}

        parsed = parse_event(wrap_envelope("publication.succeeded", data)).data

        assert tuple(v.code for v in parsed.vouchers) == ("ZERO-8", "OTHER-1")

    def test_voucher_already_listed_is_not_repeated(self):
        """A `voucher` equal (by id) to a listed one is not counted twice."""
        data = load_example("publication.succeeded")
        data["voucher"] = dict(data["vouchers"][0])

        parsed = parse_event(wrap_envelope("publication.succeeded", data)).data

        assert tuple(v.code for v in parsed.vouchers) == ("ZERO-8",)

    def test_no_vouchers_at_all(self):
        """Neither `vouchers` nor `voucher`: an empty tuple, not None."""
        data = load_example("publication.succeeded")
        del data["vouchers"]

        assert parse_event(wrap_envelope("publication.succeeded", data)).data.vouchers == ()

    def test_frozen(self, publication_succeeded):
        """Actions get immutable values."""
        data = parse_event(publication_succeeded).data

        with pytest.raises(AttributeError):
            data.customer = None
        assert isinstance(data.vouchers, tuple)


class TestVoucherPublished:
    def test_docs_envelope(self):
        """The docs' real envelope: one voucher, surfaced as `vouchers`, with the customer's email."""
        data = parse_event(example_envelope("voucher.published-2.json")).data

        assert isinstance(data, VoucherPublished)
        assert data.customer.email == "alex.doe@doe.alex.io"
        assert data.publication.id == "pub_ID"
        assert data.publication.customer.email == "alex.doe@doe.alex.io"
        assert data.publication.vouchers_id == ("v_ID",)
        assert tuple((v.id, v.code, v.campaign, v.campaign_id) for v in data.vouchers) == (
            ("v_ID", "kUs7oM-cOD3", "Autumn2025", "camp_ID"),
        )
        assert (data.campaign.id, data.campaign.name) == ("camp_ID", "Autumn-2025")

    def test_spec_example(self):
        """The spec example mixes 3- and 6-digit timestamps and still loads."""
        data = parse_event(example_envelope("voucher.published.json")).data

        assert tuple(v.code for v in data.vouchers) == ("L0y4L",)
        assert data.publication.created_at.microsecond == 594000
        assert data.created_at.microsecond == 595000


class TestCombineVouchers:
    def test_matches_by_code_when_ids_missing(self):
        """Without ids, the code decides whether `voucher` is already listed."""
        listed = (Voucher(code="A"),)

        assert listed == combine_vouchers(listed, Voucher(code="A"))
        assert (Voucher(code="A"), Voucher(code="B")) == combine_vouchers(listed, Voucher(code="B"))

    def test_nothing(self):
        """No list and no voucher is an empty tuple."""
        assert combine_vouchers(None, None) == ()
