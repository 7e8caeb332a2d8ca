"""Which deliveries are the same webhook.

Voucherify documents no idempotency key. A retry of a send-out, a manual re-send from the audit log, and the
same event sent to several endpoints all carry the triggering `event.id`; `source.id` tells the endpoints
apart, so (source.id, event.id) is the key. Without an `event.id` we fall back to the send-out `id`, then to
a hash of the body (VOUCHERIFY.md §5).
"""

from __future__ import annotations

import hashlib
from typing import Any

from core import jsonguard


def dedup_key(body: bytes, path_source: str = "", *, doc: Any = jsonguard.NOT_PARSED) -> str:
    """The dedup key of a delivery (the intake computes it without validating anything).

    `doc` is the body's parse when the caller already has it (the signature fallback does), so a body is
    parsed at most once per request.
    """
    if doc is jsonguard.NOT_PARSED:
        try:
            doc = jsonguard.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
    if isinstance(doc, dict):
        event, source = doc.get("event"), doc.get("source")
        event_id = event.get("id") if isinstance(event, dict) else None
        source_id = source.get("id") if isinstance(source, dict) else None
        if isinstance(event_id, str) and event_id:
            src = source_id if isinstance(source_id, str) and source_id else (path_source or "-")
            return f"ev:{src}:{event_id}"
        send_id = doc.get("id")
        if isinstance(send_id, str) and send_id:
            return f"send:{path_source or '-'}:{send_id}"
    return f"sha256:{path_source or '-'}:{hashlib.sha256(body).hexdigest()}"
