"""Marshmallow schemas for Voucherify webhooks (v2024-01-01). Pure validation: no I/O, nothing at import.

Workers use ``parse_event`` and never need the individual schemas; they are importable from their
family modules (``schemas.publication``, ``schemas.voucher`` ...) for tests and actions.
"""

from marshmallow import ValidationError

from schemas.envelope import Envelope, EnvelopeSchema
from schemas.parse import ParsedEvent, parse_event
from schemas.registry import DATA_SCHEMAS, data_schema_for

__all__ = [
    "DATA_SCHEMAS",
    "Envelope",
    "EnvelopeSchema",
    "ParsedEvent",
    "ValidationError",
    "data_schema_for",
    "parse_event",
]
