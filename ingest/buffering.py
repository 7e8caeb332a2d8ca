"""Plain pieces of the intake's slow-client defence (the gunicorn side is ingest/buffered_worker.py).

`scan` tells from the bytes received so far whether an HTTP/1.x request is complete, so a request reaches a
thread (and Flask) only once it is all here; `ClientCounts` caps the connections one address holds;
`OncePerWindow` keeps the log at one line per address per minute however many connections it opens.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

# Past this without the blank line that ends them, the headers are refused (431), never buffered further.
# gunicorn's own limits (100 fields of 8190 bytes) are far above anything Voucherify sends.
MAX_HEADER_BYTES = 64 * 1024

_LINE = re.compile(rb"\r?\n")
# A chunk-size line (hex digits and extensions) longer than this is not one.
_MAX_CHUNK_LINE = 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Phase(enum.Enum):
    """Where a request stands after the bytes received so far."""

    HEADERS = "headers"  # still reading the headers
    BODY = "body"  # headers complete, the body is not
    COMPLETE = "complete"  # the whole request is here
    # Headers complete and the answer needs no body: too large by its Content-Length (Flask's 413), or a
    # framing gunicorn refuses (400) before reading one. The request goes to the app now, and the
    # connection is closed after its answer.
    EARLY = "early"
    # Answered here (and closed), because the app would have to read the rest from the client to answer:
    TOO_LONG = "too_long"  # no end of headers within MAX_HEADER_BYTES (431)
    TOO_LARGE = "too_large"  # a chunked body past the limit (413)
    BAD_CHUNK = "bad_chunk"  # a chunk size that is not one (400)


@dataclass(frozen=True)
class Scan:
    """`scan`'s verdict, and where it got to, so the next call on a longer buffer carries on from there."""

    phase: Phase
    headers_end: int = 0  # where the body starts (0 while unknown)
    expects_continue: bool = False
    searched: int = 0  # HEADERS: bytes already searched for the blank line
    length: int | None = None  # BODY with Content-Length: the body's length
    chunk_pos: int = 0  # BODY, chunked: where the next chunk-size line starts
    chunk_total: int = 0  # BODY, chunked: data bytes in the chunks before it


def scan(buf: bytes | bytearray, max_body: int, previous: Scan | None = None) -> Scan:
    """How far the request at the start of `buf` has arrived (Content-Length and chunked bodies).

    Pass the previous verdict for the same request: each call then looks only at what is new, so a client
    sending a byte at a time costs a byte's work each time, not the whole buffer's.
    """
    if previous is not None and previous.phase is Phase.BODY:
        if previous.length is not None:
            done = len(buf) - previous.headers_end >= previous.length
            return replace(previous, phase=Phase.COMPLETE) if done else previous
        return _scan_chunked(buf, previous, max_body)
    start = max(0, previous.searched - 3) if previous is not None else 0
    end = buf.find(b"\r\n\r\n", start)
    if end < 0:
        if len(buf) > MAX_HEADER_BYTES:
            return Scan(Phase.TOO_LONG)
        return Scan(Phase.HEADERS, searched=len(buf))
    headers_end = end + 4
    if headers_end > MAX_HEADER_BYTES:
        return Scan(Phase.TOO_LONG)
    lines = _LINE.split(bytes(buf[:end]))
    version = lines[0].rsplit(b" ", 1)[-1].strip().upper()
    lengths: set[bytes] = set()
    chunked = expects = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            lengths.add(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"expect" and value.lower() == b"100-continue":
            expects = version == b"HTTP/1.1"  # RFC 9110 10.1.1: ignored on an HTTP/1.0 request
    if chunked:
        if lengths:
            return Scan(Phase.EARLY, headers_end)  # both framings: gunicorn answers 400
        body = Scan(Phase.BODY, headers_end, expects, chunk_pos=headers_end)
        return _scan_chunked(buf, body, max_body)
    if not lengths:
        return Scan(Phase.COMPLETE, headers_end)  # a request without either framing has no body
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        return Scan(Phase.EARLY, headers_end)  # gunicorn answers 400 without reading a body
    length = int(next(iter(lengths)))
    if length > max_body:
        return Scan(Phase.EARLY, headers_end)  # Flask answers 413 from the header alone
    if len(buf) - headers_end >= length:
        return Scan(Phase.COMPLETE, headers_end)
    return Scan(Phase.BODY, headers_end, expects, length=length)


def _scan_chunked(buf: bytes | bytearray, at: Scan, max_body: int) -> Scan:
    pos, total = at.chunk_pos, at.chunk_total
    while True:
        eol = buf.find(b"\r\n", pos, pos + _MAX_CHUNK_LINE)
        if eol < 0:
            if len(buf) - pos >= _MAX_CHUNK_LINE:
                return Scan(Phase.BAD_CHUNK, at.headers_end)
            break
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            return Scan(Phase.BAD_CHUNK, at.headers_end)
        if size < 0:
            return Scan(Phase.BAD_CHUNK, at.headers_end)
        if size == 0:
            # The last chunk, then trailer fields, then a blank line.
            if buf[eol + 2 : eol + 4] == b"\r\n" or buf.find(b"\r\n\r\n", eol) >= 0:
                return Scan(Phase.COMPLETE, at.headers_end)
            break
        if total + size > max_body:
            return Scan(Phase.TOO_LARGE, at.headers_end)
        if len(buf) < eol + 2 + size + 2:
            break
        pos, total = eol + 2 + size + 2, total + size
    return replace(at, chunk_pos=pos, chunk_total=total)


def without_expect(buf: bytes | bytearray, headers_end: int) -> bytes:
    """The request with its `Expect: 100-continue` line dropped: we answered it, so gunicorn must not."""
    head = bytes(buf[:headers_end]).split(b"\r\n")
    kept = [line for line in head if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + bytes(buf[headers_end:])


def continue_line() -> bytes:
    """The interim answer that tells a client waiting on `Expect: 100-continue` to send its body."""
    return _CONTINUE


def error_answer(status: int, error: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, in the app's one JSON error shape."""
    reason = {
        400: "Bad Request",
        408: "Request Timeout",
        413: "Request Entity Too Large",
        429: "Too Many Requests",
        431: "Request Header Fields Too Large",
    }
    body = f'{{"error":"{error}","message":"{message}"}}\n'.encode()
    retry = "Retry-After: 5\r\n" if status == 429 else ""
    return (
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{retry}Connection: close\r\n\r\n"
    ).encode() + body


class ClientCounts:
    """Open connections per client address, against a limit (0: none). One process's view, one thread's."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def admit(self, client: str) -> bool:
        """Count a new connection from `client`; False (and not counted) when it already holds the limit."""
        n = self._open.get(client, 0)
        if self.limit and n >= self.limit:
            return False
        self._open[client] = n + 1
        return True

    def release(self, client: str) -> None:
        """A connection from `client` closed."""
        n = self._open.get(client, 0) - 1
        if n > 0:
            self._open[client] = n
        else:
            self._open.pop(client, None)

    def open(self, client: str) -> int:
        """How many connections `client` holds now."""
        return self._open.get(client, 0)


class OncePerWindow:
    """Says when to log an address's event: the first in each window, with how many were folded into it."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # address -> (last logged at, events since)

    def hit(self, key: str) -> int | None:
        """Record one event for `key`; the number of events this line stands for, or None to stay quiet."""
        now = self.clock()
        logged, since = self._seen.get(key, (float("-inf"), 0))
        if now - logged < self.window:
            self._seen[key] = (logged, since + 1)
            return None
        if len(self._seen) > 4096:
            # Many addresses: forget the quiet ones rather than grow without bound.
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
        self._seen[key] = (now, 0)
        return since + 1
