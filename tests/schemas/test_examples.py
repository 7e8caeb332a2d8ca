"""Every example payload Voucherify documents goes through parse_event."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from schemas import DATA_SCHEMAS, ValidationError, parse_event
from tests.payloads import (
    example_envelope,
    example_event_type,
    example_kind,
    example_names,
    load_example,
)
from tests.schemas.helpers import REJECTED

VALID = [name for name in example_names() if name not in REJECTED]


def expected_schema_name(event_type: str) -> str:
    """``voucher.loyalty_card.points_added`` -> ``VoucherLoyaltyCardPointsAddedDataSchema``."""
    return "".join(part.capitalize() for part in re.split(r"[._]", event_type)) + "DataSchema"


@cache
def spec_events() -> dict:
    # The `events` section of shared/voucherify-spec/webhook-schemas.json, kept beside this test so the suite
    # needs nothing outside the repository.
    path = Path(__file__).with_name("spec_events.json")
    return json.loads(path.read_text(encoding="utf-8"))["events"]


class TestExamples:
    def test_all_examples_found(self):
        """The example folder holds the 76 files the spec and docs provide."""
        assert len(example_names()) == 76

    @pytest.mark.parametrize("name", VALID)
    def test_validates_to_its_schema(self, name):
        """Each example (wrapped when data-only) validates with no errors against its event's data schema."""
        parsed = parse_event(example_envelope(name))

        assert parsed.event_type == example_event_type(name)
        assert parsed.schema == expected_schema_name(parsed.event_type)
        assert parsed.data is not None
        assert type(parsed.data).__name__ == parsed.schema.removesuffix("DataSchema")

    @pytest.mark.parametrize("name", sorted(REJECTED))
    def test_designer_bodies_are_rejected(self, name):
        """Payload designer bodies fail with a message on the key that shows they are not standard."""
        with pytest.raises(ValidationError) as ei:
            parse_event(example_envelope(name))

        assert REJECTED[name] in ei.value.messages

    def test_raw_designer_body_names_the_envelope(self):
        """A raw designer body is rejected at `event`, with a message saying what it probably is."""
        with pytest.raises(ValidationError) as ei:
            parse_event(example_envelope("customer.publication.succeeded-3.json"))

        assert "Payload designer" in ei.value.messages["event"][0]

    def test_designer_data_names_the_missing_keys(self):
        """The designer-shaped envelope fails on each key the standard data has and it lacks."""
        with pytest.raises(ValidationError) as ei:
            parse_event(example_envelope("customer.publication.succeeded-2.json"))

        assert ei.value.messages == {
            "data": {
                key: ["Missing data for required field."]
                for key in ("customer", "campaign", "publication", "voucher")
            }
        }

    def test_kinds(self):
        """Only the docs' -2/-3 files are not bare data objects."""
        assert {n for n in example_names() if example_kind(n) != "data"} == {
            "customer.publication.succeeded-2.json",
            "customer.publication.succeeded-3.json",
            "customer.redemption.succeeded-2.json",
            "voucher.published-2.json",
        }


class TestCoverage:
    def test_every_spec_type_has_a_schema(self):
        """The registry covers exactly the spec's 72 webhook types, each under its conventional name."""
        assert set(DATA_SCHEMAS) == set(spec_events())
        assert {t: s.__name__ for t, s in DATA_SCHEMAS.items()} == {
            t: expected_schema_name(t) for t in DATA_SCHEMAS
        }

    def test_every_type_has_an_example(self):
        """Every registered type is exercised by at least one example file."""
        assert {example_event_type(n) for n in example_names()} == set(DATA_SCHEMAS)

    @pytest.mark.parametrize("event_type", sorted(spec_events()))
    def test_required_keys(self, event_type):
        """A data key is required exactly when the spec requires it and every standard example has it."""
        spec_required = {
            k for k, v in spec_events()[event_type]["data_top_level"].items() if v.get("required")
        }
        examples = [
            load_example(n) if example_kind(n) == "data" else load_example(n)["data"]
            for n in example_names()
            if example_event_type(n) == event_type and n not in REJECTED
        ]
        always_present = set.intersection(*(set(e) for e in examples))
        schema = DATA_SCHEMAS[event_type]()

        required = {f.data_key or n for n, f in schema.fields.items() if f.required}

        assert required == spec_required & always_present
