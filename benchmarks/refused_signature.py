"""What a refused (forged) signature costs the intake: ms per request through the Flask test client.

    python -m benchmarks.refused_signature [N]

Bodies just under 1 MiB (the default MAX_BODY_BYTES), pretty-printed and compact, and a pretty-printed one
just under 256 KiB (the default SIGNATURE_FALLBACK_MAX_BYTES, so the compact-form fallback runs), each
POSTed N times with a signature that matches neither form, and N times with none (the request's own cost).
Refused requests never reach the store, so none is needed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import cast

from core.queue import TaskQueue
from core.settings import Settings
from ingest import create_app, signature


class _NoQueue:
    """Stands in for TaskQueue (the methods the intake calls): a refused request is never enqueued."""

    inline = False

    def process_event(self, event_id: str, *, queue: str = "events") -> None:
        raise AssertionError("a refused request must not be enqueued")

    def ping(self) -> bool:
        return True


def _body(pretty: bool, size: int = 1024 * 1024 - 4096) -> bytes:
    """A realistic-looking JSON document of at most `size` bytes: many small objects."""
    item = {"code": "CODE-000000", "active": True, "amount": 1500, "tags": ["a", "b"]}
    items = [{**item, "code": f"CODE-{i:06d}"} for i in range(size // 64)]
    while True:
        body = json.dumps(
            {"data": {"items": items}},
            indent=2 if pretty else None,
            separators=None if pretty else (",", ":"),
        ).encode()
        if len(body) <= size:
            return body
        del items[int(len(items) * size / len(body)) - 1 :]


def measure(n: int) -> dict[str, float]:
    """ms per refused request, by body kind."""
    url = "redis://127.0.0.1:1/0"  # never connected to: a refused request does not touch the store
    settings = Settings(redis_url=url, broker_url=url, webhook_secrets=("secret",), data_dir=Path("var"))
    client = create_app(settings, queue=cast(TaskQueue, _NoQueue())).test_client()
    logging.getLogger().setLevel(logging.ERROR)  # one "webhook refused" line per request is not the point
    forged = {signature.HEADER: signature.sign("not-the-secret", b"x"), "Content-Type": "application/json"}
    out = {}
    # 1 MiB: the default MAX_BODY_BYTES; 256 KiB: the largest body the compact-form fallback still tries.
    for kind, size in (("pretty", 1024 * 1024), ("compact", 1024 * 1024), ("pretty", 256 * 1024)):
        body = _body(kind == "pretty", size - 4096)
        # Without a signature header: the cost of the request itself (reading 1 MiB), for comparison.
        for label, headers in ((f"{kind}, no signature", {}), (f"{kind}, forged signature", forged)):
            client.post("/webhooks/voucherify", data=body, headers=headers)  # warm-up
            started = time.perf_counter()
            for _ in range(n):
                assert client.post("/webhooks/voucherify", data=body, headers=headers).status_code == 401
            out[f"{label} ({len(body) // 1024} KiB)"] = (time.perf_counter() - started) * 1000 / n
    return out


if __name__ == "__main__":
    for kind, ms in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 50).items():
        print(f"{kind}: {ms:.2f} ms per refused request")
