"""docs/event-types.md stays in step with the registry."""

from __future__ import annotations

from schemas import DATA_SCHEMAS
from tests.support import event_types_doc as rows


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
