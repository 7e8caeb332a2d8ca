"""ingest.buffering: when a request is all here, per-address counts, and the once-a-minute log gate."""

import json

import pytest

from ingest.buffering import (
    MAX_HEADER_BYTES,
    ClientCounts,
    OncePerWindow,
    Phase,
    error_answer,
    scan,
    without_expect,
)

HEAD = b"POST /webhooks/voucherify HTTP/1.1\r\nHost: x\r\n"


def post(body: bytes, *headers: bytes) -> bytes:
    return HEAD + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


class TestScan:
    def test_headers_not_yet_complete(self):
        assert scan(HEAD + b"Content-Le", 100).phase is Phase.HEADERS

    def test_content_length_body_arriving(self):
        """Complete only once Content-Length bytes followed the headers."""
        full = post(b'{"a":1}', b"Content-Length: 7")
        partial = scan(full[:-1], 100)
        assert partial.phase is Phase.BODY
        assert partial.headers_end == full.index(b"{")
        assert scan(full, 100).phase is Phase.COMPLETE

    def test_no_framing_means_no_body(self):
        """A GET, or a POST with neither Content-Length nor Transfer-Encoding, is complete at its headers."""
        assert scan(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 100).phase is Phase.COMPLETE

    def test_too_large_goes_to_the_app_early(self):
        """Over the body limit the app answers 413 from the header alone: nothing to wait for."""
        assert scan(post(b"", b"Content-Length: 101"), 100).phase is Phase.EARLY

    @pytest.mark.parametrize(
        "headers",
        [
            (b"Content-Length: 5", b"Content-Length: 6"),
            (b"Content-Length: -5",),
            (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
        ],
    )
    def test_framings_gunicorn_refuses_go_early(self, headers):
        """gunicorn answers 400 to these before reading a body, so they are not buffered."""
        assert scan(post(b"", *headers), 100).phase is Phase.EARLY

    def test_chunked(self):
        """Complete at the last chunk and the blank line after any trailers."""
        head = post(b"", b"Transfer-Encoding: chunked")
        assert scan(head + b"3\r\nabc\r\n", 100).phase is Phase.BODY
        assert scan(head + b"3\r\nabc\r\n0\r\n", 100).phase is Phase.BODY
        assert scan(head + b"3\r\nabc\r\n0\r\n\r\n", 100).phase is Phase.COMPLETE
        assert scan(head + b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", 100).phase is Phase.COMPLETE

    def test_chunked_past_the_limit_or_garbled_is_answered_here(self):
        """The app would have to read the rest from the client to answer these, so they never reach it."""
        head = post(b"", b"Transfer-Encoding: chunked")
        assert scan(head + b"65\r\n" + b"x" * 20, 100).phase is Phase.TOO_LARGE
        assert scan(head + b"FFFFFFFF\r\n", 100).phase is Phase.TOO_LARGE
        assert scan(head + b"zz\r\n", 100).phase is Phase.BAD_CHUNK
        assert scan(head + b"1" * 2000, 100).phase is Phase.BAD_CHUNK

    def test_carrying_on_gives_the_same_verdicts(self):
        """Fed a byte at a time with the previous verdict, every step agrees with a scan from scratch."""
        chunked = post(b"", b"Transfer-Encoding: chunked") + b"3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nT: 1\r\n\r\n"
        plain = post(b'{"a":1}', b"Content-Length: 7", b"Expect: 100-continue")
        for request in (chunked, plain):
            previous = None
            for i in range(1, len(request) + 1):
                previous = scan(request[:i], 100, previous)
                fresh = scan(request[:i], 100)
                assert (previous.phase, previous.headers_end) == (fresh.phase, fresh.headers_end), i
            assert previous is not None
            assert previous.phase is Phase.COMPLETE

    def test_endless_headers_are_too_long(self):
        assert scan(HEAD + b"X-A: " + b"a" * MAX_HEADER_BYTES, 100).phase is Phase.TOO_LONG

    def test_expect_continue_is_noticed_on_http11_only(self):
        assert scan(post(b"", b"Content-Length: 5", b"Expect: 100-continue"), 100).expects_continue
        old = b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        assert not scan(old, 100).expects_continue

    def test_without_expect_keeps_everything_else(self):
        req = post(b"ab", b"Content-Length: 5", b"Expect: 100-continue")
        out = without_expect(req, scan(req, 100).headers_end)
        assert out == post(b"ab", b"Content-Length: 5")


class TestClientCounts:
    def test_limit_per_address(self):
        counts = ClientCounts(2)
        assert counts.admit("a")
        assert counts.admit("a")
        assert not counts.admit("a")
        assert counts.admit("b")
        counts.release("a")
        assert counts.admit("a")
        assert counts.open("a") == 2

    def test_zero_is_no_limit(self):
        counts = ClientCounts(0)
        assert all(counts.admit("a") for _ in range(10_000))


class TestOncePerWindow:
    def test_one_line_per_address_per_window_with_what_it_folded(self):
        now = [0.0]
        gate = OncePerWindow(60.0, clock=lambda: now[0])
        assert gate.hit("a") == 1
        assert [gate.hit("a") for _ in range(5)] == [None] * 5
        assert gate.hit("b") == 1  # another address has its own line
        now[0] = 61.0
        assert gate.hit("a") == 6  # this line stands for itself and the five kept quiet


def test_error_answer_is_the_apps_json_shape():
    raw = error_answer(408, "body_timeout", "too slow")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in head
    assert json.loads(body) == {"error": "body_timeout", "message": "too slow"}
