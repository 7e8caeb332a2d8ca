"""The buffering worker against real clients: what HTTP/1.1 allows still works, and nothing blocks a thread.

One gunicorn process, started with ingest.server's arguments, and raw sockets so each test controls exactly
what is sent when.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from core import examples
from ingest import signature
from tests.support import SECRET, Proc, start_procfile_intake

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HEADER_S, BODY_S = 1.0, 2.0


@pytest.fixture
def intake(redis_url, tmp_path) -> Iterator[tuple[Proc, int]]:
    proc, base = start_procfile_intake(
        redis_url,
        tmp_path,
        workers=1,
        INTAKE_HEADER_TIMEOUT_SECONDS=str(HEADER_S),
        INTAKE_BODY_TIMEOUT_SECONDS=str(BODY_S),
        MAX_BODY_BYTES="100000",
    )
    try:
        yield proc, int(base.rsplit(":", 1)[1])
    finally:
        proc.stop()


def delivery(*extra: str, chunked: bool = False) -> tuple[bytes, bytes]:
    """(headers, body) of a signed delivery with a fresh event id."""
    doc = examples.example_envelope("voucher.updated")
    doc["event"]["id"] = f"ev_buf_{time.time_ns()}"
    body = json.dumps(doc, separators=(",", ":")).encode()
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    lines = [
        "POST /webhooks/voucherify HTTP/1.1",
        "Host: intake",
        "Content-Type: application/json",
        f"{signature.HEADER}: {signature.sign(SECRET, body)}",
        framing,
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


def read_answers(sock: socket.socket, n: int, timeout: float = 5.0) -> list[int]:
    """The status codes of the next n final answers (1xx interim answers included in the list)."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        out.append(status)
        if status < 200:
            n += 1
            continue
        length = next(
            (int(x.split(b":")[1]) for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:")),
            0,
        )
        while len(buf) < length:
            buf += sock.recv(65536)
        buf = buf[length:]
    return out


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


class TestWhatHttpAllows:
    def test_expect_100_continue(self, intake):
        """A client that waits for 100 Continue gets exactly one, then its 202 (curl does this past 1 KiB)."""
        _, port = intake
        head, body = delivery("Expect: 100-continue")
        with connect(port) as s:
            s.sendall(head)
            interim = b""
            while b"\r\n\r\n" not in interim:
                interim += s.recv(1)  # byte by byte: read nothing past the interim answer
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            s.sendall(body)
            assert read_answers(s, 1) == [202]  # a second 100 would show up here first

    def test_chunked_body(self, intake):
        _, port = intake
        head, body = delivery(chunked=True)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:100], body[100:])) + b"0\r\n\r\n"
        with connect(port) as s:
            s.sendall(head + chunks)
            assert read_answers(s, 1) == [202]

    def test_pipelined_requests_are_all_answered(self, intake):
        """Two requests in one write: the second, read ahead with the first, is answered too."""
        _, port = intake
        first, second = (b"".join(delivery()) for _ in range(2))
        with connect(port) as s:
            s.sendall(first + second)
            assert read_answers(s, 2) == [202] * 2

    def test_too_large_is_answered_without_waiting_for_the_body(self, intake):
        """413 from the header alone, and the connection closed: the body is never waited for."""
        _, port = intake
        with connect(port) as s:
            s.sendall(b"POST /webhooks/voucherify HTTP/1.1\r\nHost: i\r\nContent-Length: 200000\r\n\r\n{")
            assert read_answers(s, 1) == [413]
            assert s.recv(10) == b""


class TestNothingBlocks:
    def test_a_chunked_body_over_the_limit_is_refused_at_once(self, intake):
        """Regression: a chunk declared past the limit went to the app, which read on from the stalled
        client to find out; now the intake answers 413 as soon as the chunk's size line is in."""
        _, port = intake
        head, _ = delivery(chunked=True)
        with connect(port) as s:
            s.sendall(head + b"FFFFFFFF\r\n{")
            assert read_answers(s, 1) == [413]

    def test_a_garbled_chunk_size_is_refused(self, intake):
        _, port = intake
        head, _ = delivery(chunked=True)
        with connect(port) as s:
            s.sendall(head + b"zz\r\n{")
            assert read_answers(s, 1) == [400]

    def test_a_kept_alive_connection_stalling_its_next_request_gets_408(self, intake):
        """The deadline covers every request on a connection, not only its first."""
        _, port = intake
        head, body = delivery()
        with connect(port) as s:
            s.sendall(head + body)
            assert read_answers(s, 1) == [202]
            s.sendall(head + body[:1])
            assert read_answers(s, 1, timeout=BODY_S + 5) == [408]
            assert s.recv(10) == b""

    def test_clients_that_never_close_do_not_stall_the_process(self, intake):
        """Regression: gunicorn waited up to 2 s per closed connection, in its event loop, for the client
        to close its side; 8 clients that never do held every other request for 16 s."""
        _, port = intake
        idle = []
        for _ in range(8):
            s = connect(port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: i\r\nConnection: close\r\n\r\n")
            idle.append(s)
        try:
            for s in idle:
                assert read_answers(s, 1) == [200]
            started = time.monotonic()
            head, body = delivery()
            with connect(port) as s:
                s.sendall(head + body)
                assert read_answers(s, 1) == [202]
            assert time.monotonic() - started < 1.0  # the bound for a delivery under slow clients
        finally:
            for s in idle:
                s.close()
