"""A lean SMTP server for the benchmark: it accepts every message and counts it, and keeps nothing.

    python -m benchmarks.smtp_sink --port 2525 [--host 127.0.0.1]

The benchmark's emails should not go to the tests' aiosmtpd sink: it runs in the benchmark's own process and
parses and keeps every message, about 1 ms of CPU each, charged on 2 cores to the pipeline being measured.
This one is a bare asyncio.Protocol in its own process that looks for line ends and the end of data, nothing
more.

It is the server side of RFC 5321 that real clients need: a 220 greeting; EHLO (offering PIPELINING,
8BITMIME and SIZE), HELO, MAIL, RCPT, DATA (dot-unstuffed, its end found across reads), RSET, NOOP, QUIT;
500 for an unknown command or a too-long line, 501 for bad syntax, 503 for a command out of order, 555 for an
unknown MAIL/RCPT parameter. Commands that arrive together (PIPELINING, RFC 2920) are answered in one write.

Reading the totals: the non-standard command `XCOUNT` answers `250 <messages> <bytes>` (the bytes of message
content after unstuffing), e.g. `smtplib.SMTP(host, port).docmd("XCOUNT")`. The sink prints one line when it
is ready, `listening on HOST:PORT` (`--port 0` takes a free port and says which), and on SIGTERM or SIGINT
one JSON object with the totals; then it exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass

MAX_SIZE = 32 * 1024 * 1024  # advertised with SIZE; a bigger message is refused (552) once it has been read
MAX_LINE = 64 * 1024  # RFC 5321 4.5.3.1 allows 1000 octets per line; this only bounds the buffer

EHLO = b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE %d\r\n" % MAX_SIZE


@dataclass
class Totals:
    messages: int = 0
    bytes: int = 0
    connections: int = 0


class SmtpSession(asyncio.Protocol):
    """One client connection. Only complete lines are consumed, so `buf` always starts at a line start."""

    def __init__(self, totals: Totals, sessions: set[SmtpSession]) -> None:
        self.totals = totals
        self.sessions = sessions
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.greeted = False
        self.sender = False  # a MAIL was accepted
        self.recipients = 0
        self.in_data = False
        self.size = 0  # of the message being received, unstuffed
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sessions.add(self)
        self.totals.connections += 1
        transport.write(b"220 smtp-sink ESMTP\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.sessions.discard(self)

    # A client writing faster than it reads its replies is not read from until they have drained.
    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.closing:
            return
        self.buf += data
        buf, pos = self.buf, 0
        out: list[bytes] = []
        while not self.closing:
            if self.in_data:
                pos, done = self._content(pos, out)
                if not done:
                    break
                continue
            end = buf.find(b"\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_LINE:
                    out.append(b"500 5.5.6 Line too long\r\n")
                    self.closing = True
                break
            line = bytes(buf[pos:end]).rstrip(b"\r")
            pos = end + 1
            out.append(self._command(line))
        del buf[:pos]
        if out:
            self.transport.write(b"".join(out))
        if self.closing:
            self.transport.close()

    def _content(self, pos: int, out: list[bytes]) -> tuple[int, bool]:
        """Message content from buf[pos:]: how far it was consumed, and whether its CRLF "." CRLF end was."""
        buf = self.buf
        if buf.startswith(b".\r\n", pos):
            end = pos
        else:
            end = buf.find(b"\r\n.\r\n", pos)
            if end < 0:
                # The complete lines are counted; a partial one (a split terminator, say) waits for more.
                last = buf.rfind(b"\r\n", pos)
                if last < 0:
                    if len(buf) - pos > MAX_LINE:
                        out.append(b"500 5.5.6 Line too long\r\n")
                        self.closing = True
                    return pos, False
                self.size += _unstuffed(buf, pos, last + 2)
                return last + 2, False
            end += 2
        self.size += _unstuffed(buf, pos, end)
        if self.size > MAX_SIZE:
            out.append(b"552 5.3.4 Message too big\r\n")
        else:
            self.totals.messages += 1
            self.totals.bytes += self.size
            out.append(b"250 2.0.0 OK\r\n")
        self.in_data = False
        self._reset()
        return end + 3, True

    def _reset(self) -> None:
        self.sender = False
        self.recipients = 0
        self.size = 0

    def _command(self, line: bytes) -> bytes:
        verb, _, arg = line.partition(b" ")
        handler = _VERBS.get(verb.upper())
        if handler is None:
            return b"500 5.5.2 Command unrecognized\r\n"
        return handler(self, arg.strip())

    def _ehlo(self, arg: bytes) -> bytes:
        if not arg:
            return b"501 5.5.4 EHLO needs a domain\r\n"
        self.greeted = True
        self._reset()
        return EHLO

    def _helo(self, arg: bytes) -> bytes:
        if not arg:
            return b"501 5.5.4 HELO needs a domain\r\n"
        self.greeted = True
        self._reset()
        return b"250 smtp-sink\r\n"

    def _mail(self, arg: bytes) -> bytes:
        if not self.greeted:
            return b"503 5.5.1 EHLO or HELO first\r\n"
        if self.sender:
            return b"503 5.5.1 Nested MAIL\r\n"
        path = _path(arg, b"FROM:")
        if path is None:
            return b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
        for param in path[1]:
            key, _, value = param.upper().partition(b"=")
            if key == b"SIZE":
                if not value.isdigit():
                    return b"501 5.5.4 Syntax: SIZE=<number>\r\n"
                if int(value) > MAX_SIZE:
                    return b"552 5.3.4 Message too big\r\n"
            elif key == b"BODY":
                if value not in (b"7BIT", b"8BITMIME"):
                    return b"501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME\r\n"
            else:
                return b"555 5.5.4 Unsupported MAIL parameter\r\n"
        self.sender = True
        return b"250 2.1.0 OK\r\n"

    def _rcpt(self, arg: bytes) -> bytes:
        if not self.sender:
            return b"503 5.5.1 MAIL first\r\n"
        path = _path(arg, b"TO:")
        if path is None or not path[0]:
            return b"501 5.5.4 Syntax: RCPT TO:<address>\r\n"
        if path[1]:
            return b"555 5.5.4 Unsupported RCPT parameter\r\n"
        self.recipients += 1
        return b"250 2.1.5 OK\r\n"

    def _data(self, arg: bytes) -> bytes:
        if arg:
            return b"501 5.5.4 Syntax: DATA\r\n"
        if not self.recipients:
            return b"503 5.5.1 RCPT first\r\n"
        self.in_data = True
        return b"354 End data with <CR><LF>.<CR><LF>\r\n"

    def _rset(self, arg: bytes) -> bytes:
        self._reset()
        return b"250 2.0.0 OK\r\n"

    def _noop(self, arg: bytes) -> bytes:
        return b"250 2.0.0 OK\r\n"

    def _quit(self, arg: bytes) -> bytes:
        self.closing = True
        return b"221 2.0.0 Bye\r\n"

    def _xcount(self, arg: bytes) -> bytes:
        return b"250 %d %d\r\n" % (self.totals.messages, self.totals.bytes)


_VERBS: dict[bytes, Callable[[SmtpSession, bytes], bytes]] = {
    b"EHLO": SmtpSession._ehlo,
    b"HELO": SmtpSession._helo,
    b"MAIL": SmtpSession._mail,
    b"RCPT": SmtpSession._rcpt,
    b"DATA": SmtpSession._data,
    b"RSET": SmtpSession._rset,
    b"NOOP": SmtpSession._noop,
    b"QUIT": SmtpSession._quit,
    b"XCOUNT": SmtpSession._xcount,
}


def _path(arg: bytes, prefix: bytes) -> tuple[bytes, list[bytes]] | None:
    """The address and parameters of `FROM:<address> ...` / `TO:<address> ...`; None when malformed."""
    if arg[: len(prefix)].upper() != prefix:
        return None
    rest = arg[len(prefix) :].lstrip()
    close = rest.find(b">")
    if not rest.startswith(b"<") or close < 0:
        return None
    return rest[1:close], rest[close + 1 :].split()


def _unstuffed(buf: bytearray, start: int, end: int) -> int:
    """Length of buf[start:end] (whole lines) once the dot a client puts before each line starting "." is
    removed (RFC 5321 4.5.2)."""
    return end - start - buf.count(b"\r\n.", start, end) - buf.startswith(b".", start, end)


async def serve(host: str, port: int) -> Totals:
    """Run until SIGTERM or SIGINT; the totals."""
    loop = asyncio.get_running_loop()
    totals, sessions = Totals(), set[SmtpSession]()
    server = await loop.create_server(lambda: SmtpSession(totals, sessions), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    await stop.wait()
    server.close()
    for session in list(sessions):
        if session.transport is not None:
            session.transport.write(b"421 4.3.2 Shutting down\r\n")
            session.transport.close()
    await server.wait_closed()
    return totals


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525, help="0 = a free port (printed when ready)")
    args = p.parse_args(argv)
    print(json.dumps(asdict(asyncio.run(serve(args.host, args.port)))), flush=True)


if __name__ == "__main__":
    main()
