"""A keep-alive HTTP load generator for signed webhooks, run in its own process.

    python -m benchmarks.loadgen URL [URL ...] --secret S --seconds 5 --connections 16 [--rate 500]
        [--slice 0.5] [--requests-per-connection 200]

Without --rate it runs closed-loop (each connection sends as soon as its last answer came: saturation); with
--rate it runs open-loop (request i is due at start + i/rate, and its latency counts from when it was due,
so a slow server cannot hide its queueing). Bodies are real `voucher.updated` envelopes with unique event ids,
each correctly signed. Prints one JSON object per URL, one a line: count, errors, statuses, rps, p50/p90/p99
in ms.

Given several URLs, it takes turns: --slice seconds on each, round after round, until each has had
--seconds. Two servers measured that way see the same machine to within a slice, which matters on a machine
shared with other work whose load changes from one second to the next. Each slice opens its connections
afresh, and a connection is closed and opened again after --requests-per-connection requests (a sender does
not hold one connection forever): a server of several processes gets its connections by an accept race, and
a split fixed for a whole run (14 connections on one process, 2 on the other) measured the split, not the
server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core import examples


def _template(event_type: str) -> tuple[bytes, bytes]:
    doc = examples.example_envelope(event_type)
    doc["event"]["id"] = "@@ID@@"
    body = json.dumps(doc, separators=(",", ":")).encode()
    head, _, tail = body.partition(b"@@ID@@")
    return head, tail


@dataclass
class Tally:
    """What one URL got over all its slices."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    connections: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else 0.0

        return {
            "count": len(lat),
            "errors": self.errors,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "rps": round(len(lat) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
        }


async def _slice(args: argparse.Namespace, url: str, seconds: float, tally: Tally) -> None:
    """One slice on one URL: `args.connections` connections for `seconds`, closed at the end."""
    target = urlsplit(url)
    head, tail = _template(args.event_type)
    key = args.secret.encode()
    prefix = secrets.token_hex(4).encode()
    counter = 0
    start = time.perf_counter()
    stop_at = start + seconds

    def next_request() -> tuple[int, bytes]:
        nonlocal counter
        counter += 1
        body = head + b"ev_bench_" + prefix + str(counter).encode() + tail
        sig = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        req = (
            b"POST "
            + target.path.encode()
            + b" HTTP/1.1\r\nHost: "
            + target.netloc.encode()
            + b"\r\nContent-Type: application/json\r\nx-voucherify-signature: "
            + sig
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        return counter, req

    def over() -> bool:
        if args.rate:
            return start + counter / args.rate >= stop_at  # the next request would be due too late
        return time.perf_counter() >= stop_at

    async def connection() -> None:
        while not over():
            reader, writer = await asyncio.open_connection(target.hostname, target.port)
            tally.connections += 1
            sent = 0
            try:
                while not args.requests_per_connection or sent < args.requests_per_connection:
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
                    tally.latencies.append(time.perf_counter() - t0)
                    tally.statuses[status] += 1
                    sent += 1
            except (ConnectionError, asyncio.IncompleteReadError):
                tally.errors += 1
                return
            finally:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(args.connections)))
    tally.seconds += time.perf_counter() - start


async def _run(args: argparse.Namespace) -> list[dict[str, object]]:
    tallies = [Tally() for _ in args.url]
    slice_seconds = args.slice or args.seconds
    rounds = max(1, math.ceil(args.seconds / slice_seconds - 1e-9))
    for r in range(rounds):
        seconds = min(slice_seconds, args.seconds - r * slice_seconds)
        for url, tally in zip(args.url, tallies, strict=True):
            await _slice(args, url, seconds, tally)
    return [t.summary() for t in tallies]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url", nargs="+")
    p.add_argument("--secret", required=True)
    p.add_argument("--seconds", type=float, default=5.0, help="seconds on each URL")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rate", type=float, default=0.0, help="requests/s (open loop); 0 = saturate")
    p.add_argument("--slice", type=float, default=0.0, help="seconds per turn on each URL; 0 = --seconds")
    p.add_argument(
        "--requests-per-connection", type=int, default=0, help="reconnect after this many; 0 = never"
    )
    p.add_argument("--event-type", default="voucher.updated")
    for result in asyncio.run(_run(p.parse_args())):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
