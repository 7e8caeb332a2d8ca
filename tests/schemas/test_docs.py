"""docs/event-types.md stays in step with the registry."""

from __future__ import annotations

import re
from pathlib import Path

from schemas import DATA_SCHEMAS

DOC = Path(__file__).resolve().parents[2] / "docs" / "event-types.md"
ROW = re.compile(
    r"^\| `(?P<type>[^`]+)` \| [^|]+ \| (?P<schema>[^|]+) \| (?P<example>[^|]+) \| (?P<route>[^|]+) \|$"
)


def rows() -> dict[str, dict[str, str]]:
    found = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if m := ROW.match(line):
            found[m["type"]] = {k: v.strip() for k, v in m.groupdict().items()}
    return found


class TestEventTypesDoc:
    def test_every_schema_listed(self):
        """Every registered type has a row naming its schema class."""
        table = rows()

        for event_type, schema in DATA_SCHEMAS.items():
            assert table[event_type]["schema"] == f"`{schema.__module__}.{schema.__name__}`"

    def test_unregistered_rows_have_no_schema(self):
        """Rows for types without a schema say so, and have no example."""
        for event_type, row in rows().items():
            if event_type not in DATA_SCHEMAS:
                assert (row["schema"], row["example"]) == ("— (envelope only)", "no")

    def test_seed_routes(self):
        """Only the two publication events start on notify_customer; everything else is ignored."""
        routes = {t: r["route"] for t, r in rows().items()}

        assert {t for t, r in routes.items() if r != "ignored"} == {
            "publication.succeeded",
            "voucher.published",
        }
        assert routes["publication.succeeded"] == routes["voucher.published"] == "notify_customer"
