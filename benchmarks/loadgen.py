"""A keep-alive HTTP load generator for signed webhooks, run in its own process.

    python -m benchmarks.loadgen URL --secret S --seconds 5 --connections 16 [--rate 500]

Without --rate it runs closed-loop (each connection sends as soon as its last answer came: saturation); with
--rate it runs open-loop (request i is due at start + i/rate, and its latency counts from when it was due,
so a slow server cannot hide its queueing). Bodies are real `voucher.updated` envelopes with unique event ids,
each correctly signed. Prints one JSON object: count, errors, statuses, rps, p50/p90/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from urllib.parse import urlsplit

from core import examples


def _template(event_type: str) -> tuple[bytes, bytes]:
    doc = examples.example_envelope(event_type)
    doc["event"]["id"] = "@@ID@@"
    body = json.dumps(doc, separators=(",", ":")).encode()
    head, _, tail = body.partition(b"@@ID@@")
    return head, tail


async def _run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    head, tail = _template(args.event_type)
    key = args.secret.encode()
    prefix = secrets.token_hex(4).encode()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    counter = 0
    start = time.perf_counter()
    stop_at = start + args.seconds

    def next_request() -> tuple[int, bytes]:
        nonlocal counter
        counter += 1
        body = head + b"ev_bench_" + prefix + str(counter).encode() + tail
        sig = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        req = (
            b"POST "
            + url.path.encode()
            + b" HTTP/1.1\r\nHost: "
            + url.netloc.encode()
            + b"\r\nContent-Type: application/json\r\nx-voucherify-signature: "
            + sig
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        return counter, req

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while True:
                i, req = next_request()
                if args.rate:
                    due = start + (i - 1) / args.rate
                    if due >= stop_at:
                        return
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    t0 = due
                else:
                    t0 = time.perf_counter()
                    if t0 >= stop_at:
                        return
                writer.write(req)
                head_bytes = await reader.readuntil(b"\r\n\r\n")
                status = int(head_bytes[9:12])
                length = 0
                for line in head_bytes.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(args.connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else 0.0
        )

    return {
        "count": len(latencies),
        "errors": errors,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--secret", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rate", type=float, default=0.0, help="requests/s (open loop); 0 = saturate")
    p.add_argument("--event-type", default="voucher.updated")
    print(json.dumps(asyncio.run(_run(p.parse_args()))))


if __name__ == "__main__":
    main()
