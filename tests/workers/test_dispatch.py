"""The dispatch table: what runs for each event type, and which types we knowingly ignore."""

from __future__ import annotations

from core.settings import ForwardDestination
from schemas import DATA_SCHEMAS
from tests.support import event_types_doc as rows
from workers import dispatch


class TestTable:
    def test_every_documented_type_is_routed_or_knowingly_ignored(self):
        """Every type docs/event-types.md lists is in ROUTES or in IGNORED, never both."""
        documented = set(rows())
        assert set(dispatch.ROUTES) | dispatch.IGNORED == documented
        assert not set(dispatch.ROUTES) & dispatch.IGNORED

    def test_every_schema_type_is_documented(self):
        assert set(DATA_SCHEMAS) <= set(dispatch.ROUTES) | dispatch.IGNORED

    def test_doc_routes_are_the_table(self):
        """The doc's "default route" column is what the table routes (not a copy kept in a test)."""
        for event_type, row in rows().items():
            expected = ", ".join(dispatch.ROUTES.get(event_type, ())) or "ignored"
            assert row["route"] == expected, event_type


class TestIgnoreReason:
    def test_known_and_unknown(self):
        assert dispatch.ignore_reason("voucher.updated") == dispatch.NO_ROUTE
        assert dispatch.ignore_reason("voucher.teleported") == dispatch.UNKNOWN_TYPE


class TestActionsFor:
    def test_builtin_then_forwards_that_want_the_type(self, settings):
        """Built-in actions first, then each destination whose filter takes the type."""
        s = settings.with_(
            forward_destinations=(
                ForwardDestination("crm", "http://crm.test/hook", event_types=("voucher.*",)),
                ForwardDestination("all", "http://all.test/hook"),
            )
        )
        assert dispatch.actions_for("voucher.published", s) == (
            "notify_customer",
            "forward:crm",
            "forward:all",
        )
        assert dispatch.actions_for("campaign.created", s) == ("forward:all",)
        assert dispatch.actions_for("campaign.created", settings) == ()

    def test_designer_bodies_go_only_to_destinations_that_list_the_source(self, settings):
        s = settings.with_(
            forward_destinations=(ForwardDestination("mkt", "http://mkt.test/hook", sources=("newsletter",)),)
        )
        assert dispatch.designer_actions_for("newsletter", s) == ("forward:mkt",)
        assert dispatch.designer_actions_for("other", s) == ()
        assert dispatch.designer_actions_for("", s) == ()
