"""The intake: verifies Voucherify's signature, stores the raw delivery, enqueues it, answers 202."""

from ingest.app import create_app

__all__ = ["create_app"]
