"""customer.segment.entered|left."""

from __future__ import annotations

import pytest

from schemas import parse_event
from schemas.segment import CustomerSegmentEntered, CustomerSegmentLeft, Segment
from tests.payloads import example_envelope
from tests.schemas.helpers import errors_for, nest


class TestSegments:
    @pytest.mark.parametrize(
        ("event_type", "cls"),
        [
            ("customer.segment.entered", CustomerSegmentEntered),
            ("customer.segment.left", CustomerSegmentLeft),
        ],
    )
    def test_examples(self, event_type, cls):
        """Segment events carry the full customer and the segment."""
        data = parse_event(example_envelope(event_type)).data

        assert isinstance(data, cls)
        assert isinstance(data.segment, Segment)
        assert data.segment.id.startswith("seg_")

    def test_segment_id(self):
        """A segment id must be a string."""
        errors = errors_for("customer.segment.left", ("segment", "id"), 7)

        assert errors == nest(("data", "segment", "id"), ["Not a valid string."])
