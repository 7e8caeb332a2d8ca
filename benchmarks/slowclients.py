"""Slow clients against a running intake, and signed deliveries timed meanwhile (issue 17's measurement).

    python -m benchmarks.slowclients http://127.0.0.1:8000 --secret S [--stalled 200 --half 200 --trickle 100]

Opens three kinds of slow connection from one address: stalled uploads (a webhook's headers and the first
byte of its body, then nothing), half-sent headers, and bodies trickled a byte a second. While they hang on,
it sends signed deliveries one after another, from another loopback address when it can (so a per-address
limit on the attacker does not touch them), and prints one JSON object: each delivery's status and latency,
and for every slow connection whether and when the server closed it. The tests use the same pieces.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from core import examples
from ingest import signature

STALLED, HALF, TRICKLE = "stalled", "half", "trickle"
# Where deliveries come from: another loopback address than the slow clients' 127.0.0.1 (Linux routes all of
# 127/8 to lo), as Voucherify's addresses differ from an attacker's.
DELIVERY_SOURCE = "127.0.0.2"


@dataclass
class SlowConn:
    """One slow connection: what it is, when it last made progress, and when the server closed it."""

    kind: str
    sock: socket.socket
    opened: float
    headers_done: float | None = None  # when its headers were complete (stalled and trickling uploads)
    closed: float | None = None  # when the server closed it (EOF or reset), by our clock
    answer: bytes = b""
    sent: int = 0
    body: bytes = field(default=b"", repr=False)


def _headers(host: str, path: str, body: bytes) -> bytes:
    sig = signature.sign("not-the-secret", body)  # a slow client need not know the secret
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{signature.HEADER}: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()


def _body() -> bytes:
    return json.dumps(examples.example_envelope("voucher.updated"), separators=(",", ":")).encode()


def open_slow(url: str, stalled: int, half: int, trickle: int, source: str | None = None) -> list[SlowConn]:
    """Open the slow connections; each has sent what its kind sends first."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = _body()
    head = _headers(f"{host}:{port}", "/webhooks/voucherify", body)
    out: list[SlowConn] = []
    for kind, n in ((STALLED, stalled), (HALF, half), (TRICKLE, trickle)):
        for _ in range(n):
            s = socket.create_connection(
                (host, port), timeout=10, source_address=(source, 0) if source else None
            )
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            now = time.monotonic()
            conn = SlowConn(kind, s, now, body=body)
            if kind == HALF:
                s.sendall(head[: len(head) // 2])
            else:
                s.sendall(head + body[:1])
                conn.headers_done, conn.sent = now, 1
            s.setblocking(False)
            out.append(conn)
    return out


class Watcher:
    """Trickles a byte a second into each trickling body, and notes when the server closes a connection."""

    def __init__(self, conns: list[SlowConn]) -> None:
        self.conns = conns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for c in self.conns:
            c.sock.close()

    def open_count(self) -> int:
        return sum(1 for c in self.conns if c.closed is None)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for c in self.conns:
            sel.register(c.sock, selectors.EVENT_READ, c)
        next_trickle = time.monotonic() + 1.0
        while not self._stop.is_set() and self.open_count():
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    c.answer += data
                    continue
                c.closed = time.monotonic()
                sel.unregister(c.sock)
            if time.monotonic() >= next_trickle:
                next_trickle += 1.0
                for c in self.conns:
                    if c.kind == TRICKLE and c.closed is None and c.sent < len(c.body) - 1:
                        with contextlib.suppress(OSError):
                            c.sock.send(c.body[c.sent : c.sent + 1])
                            c.sent += 1
        sel.close()


def deliver(
    url: str,
    secret: str,
    n: int,
    *,
    source: str | None = DELIVERY_SOURCE,
    timeout: float = 10.0,
    give_up_after: int | None = None,
) -> list[tuple[int | None, float]]:
    """Send n correctly signed deliveries one after another; [(status or None, seconds)].

    give_up_after: stop after that many went unanswered (a test against a stuck server ends sooner).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    template = examples.example_envelope("voucher.updated")
    out: list[tuple[int | None, float]] = []
    for i in range(n):
        doc = json.loads(json.dumps(template))
        doc["event"]["id"] = f"ev_slowclients_{time.time_ns()}_{i}"
        body = json.dumps(doc, separators=(",", ":")).encode()
        req = (
            f"POST /webhooks/voucherify HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"{signature.HEADER}: {signature.sign(secret, body)}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + body
        started = time.monotonic()
        status: int | None = None
        try:
            with socket.create_connection(
                (host, port), timeout=timeout, source_address=(source, 0) if source else None
            ) as s:
                s.sendall(req)
                answer = b""
                while b"\r\n" not in answer:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else None
        except OSError:
            status = None
        out.append((status, time.monotonic() - started))
        if give_up_after and sum(1 for st, _ in out if st is None) >= give_up_after:
            break
    return out


def summary(results: list[tuple[int | None, float]]) -> dict[str, object]:
    """Statuses and latency percentiles (ms) of deliveries."""
    lat = sorted(t * 1000 for _, t in results)
    return {
        "count": len(results),
        "statuses": {str(k): sum(1 for s, _ in results if s == k) for k in {s for s, _ in results}},
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "max_ms": round(lat[-1], 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="the intake's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--secret", required=True)
    p.add_argument("--stalled", type=int, default=200)
    p.add_argument("--half", type=int, default=200)
    p.add_argument("--trickle", type=int, default=100)
    p.add_argument("--deliveries", type=int, default=50)
    p.add_argument("--timeout", type=float, default=15.0, help="each delivery's client timeout")
    p.add_argument("--watch", type=float, default=15.0, help="seconds to watch for closes afterwards")
    args = p.parse_args(argv)
    conns = open_slow(args.url, args.stalled, args.half, args.trickle)
    watcher = Watcher(conns).start()
    try:
        time.sleep(0.5)
        results = deliver(args.url, args.secret, args.deliveries, timeout=args.timeout)
        deadline = time.monotonic() + args.watch
        while watcher.open_count() and time.monotonic() < deadline:
            time.sleep(0.1)
        closed = {
            kind: sorted(
                round(c.closed - (c.opened if kind == HALF else c.headers_done or c.opened), 2)
                for c in conns
                if c.kind == kind and c.closed is not None
            )
            for kind in (STALLED, HALF, TRICKLE)
        }
        print(
            json.dumps(
                {
                    "deliveries": summary(results),
                    "still_open": watcher.open_count(),
                    "closed_after_s": {k: (v[0], v[-1], len(v)) if v else None for k, v in closed.items()},
                }
            )
        )
    finally:
        watcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
