"""The routes table the workers publish at start, for the intake (which never imports workers/)."""

from __future__ import annotations

from workers import dispatch


class TestPublishedRoutes:
    def test_round_trip_with_when(self, store):
        store.publish_routes(
            {"publication.succeeded": ("notify_customer",), "voucher.updated": ()}, now=1000.0
        )
        routes, at = store.published_routes()
        assert routes == {"publication.succeeded": ("notify_customer",), "voucher.updated": ()}
        assert at == 1000.0

    def test_nothing_published_yet(self, store):
        assert store.published_routes() is None

    def test_the_table_is_what_routes_prints(self, settings):
        """Every documented type is in it, with the worker's own actions_for."""
        table = dispatch.routes_table(settings, ())
        assert table["publication.succeeded"] == ("notify_customer",)
        assert table["voucher.updated"] == ()
        assert set(table) >= {"voucher.published", "customer.created"}
