"""The benchmark's SMTP sink: its own process with real clients over TCP, and its protocol fed split reads."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import signal
import smtplib
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.smtp_sink import SmtpSession, Totals
from tests.support import Proc, wait_for
from workers.actions.notify import NotifyCustomer
from workers.mail import LogMailer, SmtpMailer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@dataclass
class Sink:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=5)

    def count(self) -> tuple[int, int]:
        """(messages, bytes) as XCOUNT tells them."""
        with self.client() as conn:
            code, reply = conn.docmd("XCOUNT")
        assert code == 250
        messages, size = reply.split()
        return int(messages), int(size)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    proc = Proc(
        [sys.executable, "-m", "benchmarks.smtp_sink", "--port", "0"], os.environ, tmp_path / "sink.log"
    )
    try:
        proc.wait_for_output("listening on ", timeout=15)
        port = wait_for(
            lambda: (m := re.search(r"listening on 127\.0\.0\.1:(\d+)\n", proc.output())) and int(m[1]),
            timeout=5,
            what="the sink's port",
        )
        yield Sink(proc, port)
    finally:
        proc.stop(timeout=5)


def email(n: int = 1) -> Message:
    notify = NotifyCustomer(LogMailer(), sender="shop@example.com", reservation_ttl=60, remember_s=60)
    return notify.compose(f"c{n}@example.com", "Zoë Åström", [f"CODE-{n}"], "Café", f"pub_{n}")


def wire(msg: Message) -> bytes:
    """The message as smtplib sends it, before dot-stuffing: what the sink counts once it has unstuffed."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(msg, linesep="\r\n")
    return out.getvalue()


def replies(sock: socket.socket, n: int) -> list[bytes]:
    """The next n complete replies (multi-line ones as one), read however they were split."""
    data = b""
    while len(done := re.findall(rb"(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n", data)) < n:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    assert b"".join(done) == data, "more replies than asked for"
    return done


class TestClients:
    def test_smtplib_sends_one_command_at_a_time(self, sink: Sink):
        """A plain client: EHLO offers what the sink supports, the message is counted with its size."""
        body = wire(email())
        with sink.client() as conn:
            assert conn.ehlo()[0] == 250
            assert {"pipelining", "8bitmime", "size"} <= set(conn.esmtp_features)
            assert conn.sendmail("shop@example.com", ["c1@example.com"], body) == {}
        assert sink.count() == (1, len(body))

    def test_smtp_mailer_pipelines_over_one_connection(self, sink: Sink):
        """SmtpMailer pipelines (the sink offers PIPELINING) several emails over its one connection."""
        mailer = SmtpMailer(sink.url, timeout=5)
        try:
            messages = [email(n) for n in range(5)]
            for msg in messages:
                mailer.send(msg)
        finally:
            mailer.close()
        assert sink.count() == (5, sum(len(wire(m)) for m in messages))

    def test_concurrent_connections(self, sink: Sink):
        """Eight clients at once, each on its own connection, none of them losing a message."""

        def send_25(worker: int) -> None:
            mailer = SmtpMailer(sink.url, timeout=5)
            try:
                for n in range(25):
                    mailer.send(email(worker * 100 + n))
            finally:
                mailer.close()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send_25, range(8)))
        assert sink.count()[0] == 200


class TestData:
    def test_lines_starting_with_a_dot_are_unstuffed(self, sink: Sink):
        """A line that is "." alone does not end the message; each stuffed dot is removed, once."""
        body = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle.\r\n...three\r\nlast\r\n"
        with sink.client() as conn:
            assert conn.sendmail("shop@example.com", ["c@example.com"], body) == {}
            assert conn.noop()[0] == 250
        assert sink.count() == (1, len(body))

    def test_message_split_across_reads(self, sink: Sink):
        """Pipelined commands in one write; then a body trickling in pieces, its end split over three."""
        with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b"EHLO test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            greeting, ehlo, mail, rcpt, data = replies(sock, 5)
            assert (greeting[:4], ehlo[:4], mail[:4], rcpt[:4], data[:4]) == (
                b"220 ",
                b"250-",
                b"250 ",
                b"250 ",
                b"354 ",
            )
            for piece in (b"Subject: split\r\n\r\n..st", b"uffed\r\nline\r", b"\n.", b"\r"):
                sock.sendall(piece)
                time.sleep(0.05)  # its own read
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(4096)  # no reply: the end has not fully arrived
            sock.settimeout(5)
            sock.sendall(b"\nNOOP\r\n")
            assert [r[:4] for r in replies(sock, 2)] == [b"250 ", b"250 "]
        assert sink.count() == (1, len(b"Subject: split\r\n\r\n.stuffed\r\nline\r\n"))

    def test_empty_message(self, sink: Sink):
        """The end marker right after 354 (in the same read or the next): an empty message, still one."""
        with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as sock:
            sock.sendall(
                b"HELO test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n.\r\n"
            )
            assert [r[:4] for r in replies(sock, 6)] == [b"220 ", b"250 ", b"250 ", b"250 ", b"354 ", b"250 "]
            sock.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
            assert [r[:4] for r in replies(sock, 3)] == [b"250 ", b"250 ", b"354 "]
            sock.sendall(b".\r\n")
            assert [r[:4] for r in replies(sock, 1)] == [b"250 "]
        assert sink.count() == (2, 0)


class TestCommands:
    def test_out_of_order_and_unknown_commands(self, sink: Sink):
        """503 for a command out of order, 500 for an unknown one, 501/555 for bad arguments."""
        with sink.client() as conn:
            assert conn.docmd("MAIL", "FROM:<a@example.com>")[0] == 503  # before EHLO
            assert conn.docmd("FROB")[0] == 500
            assert conn.ehlo()[0] == 250
            assert conn.docmd("RCPT", "TO:<b@example.com>")[0] == 503
            assert conn.docmd("DATA")[0] == 503
            assert conn.docmd("MAIL", "FROM:a@example.com")[0] == 501
            assert conn.docmd("MAIL", "FROM:<a@example.com> SMTPUTF8")[0] == 555
            assert conn.docmd("MAIL", "FROM:<a@example.com> BODY=8BITMIME SIZE=10")[0] == 250
            assert conn.docmd("MAIL", "FROM:<a@example.com>")[0] == 503
            assert conn.docmd("RCPT", "TO:<>")[0] == 501
            assert conn.docmd("RSET")[0] == 250
            assert conn.docmd("RCPT", "TO:<b@example.com>")[0] == 503
            assert conn.docmd("HELO", "test")[0] == 250
            assert conn.docmd("MAIL", "FROM:<>")[0] == 250  # the null reverse-path of bounces
        assert sink.count() == (0, 0)


class TestShutdown:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_signal_stops_it_cleanly(self, sink: Sink, sig):
        """Open connections are told 421, the totals are printed as JSON, the exit status is 0."""
        mailer = SmtpMailer(sink.url, timeout=5)
        mailer.send(email())
        with sink.client() as idle:
            idle.ehlo()
            sink.proc.kill(sig)
            assert idle.getreply()[0] == 421
            assert sink.proc.popen.wait(timeout=10) == 0
        mailer.close()
        *_, last = sink.proc.output().splitlines()
        assert json.loads(last) == {"messages": 1, "bytes": len(wire(email())), "connections": 2}


class RecordingTransport(asyncio.Transport):
    """Keeps what the session writes; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


# Three pipelined transactions as a client sends them: dot-stuffed lines, an empty message, a body that ends
# in a stuffed "." line, then NOOP and QUIT.
STREAM = (
    b"EHLO t\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    b"Subject: x\r\n\r\n..\r\n...\r\n..a\r\nb.\r\n\r\n.\r\n"
    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n.\r\n"
    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n\r\n..\r\n.\r\nNOOP\r\nQUIT\r\n"
)


def play(cuts: list[int]) -> tuple[bytes, Totals, bool]:
    """STREAM fed to one session in reads split at `cuts`: (its replies, its totals, whether it closed)."""
    totals, transport = Totals(), RecordingTransport()
    session = SmtpSession(totals, set())
    session.connection_made(transport)
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    for start, end in itertools.pairwise(bounds):
        if end > start:
            session.data_received(STREAM[start:end])
    return bytes(transport.written), totals, transport.closed


class TestReads:
    def test_one_read(self):
        """All of it in one read: every reply in order, the content counted after unstuffing."""
        written, totals, closed = play([])
        codes = [line[:4] for line in written.split(b"\r\n") if line]
        transaction = [b"250 ", b"250 ", b"354 ", b"250 "]  # MAIL, RCPT, DATA, end of data
        assert codes == [b"220 ", b"250-", b"250-", b"250-", b"250 ", *transaction * 3, b"250 ", b"221 "]
        unstuffed = [b"Subject: x\r\n\r\n.\r\n..\r\n.a\r\nb.\r\n\r\n", b"", b"\r\n.\r\n"]
        assert (totals.messages, totals.bytes) == (3, sum(map(len, unstuffed)))
        assert closed

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.integers(0, len(STREAM)), max_size=40))
    def test_any_split_into_reads_is_the_same(self, cuts):
        """However the stream is cut into reads (inside a line, a stuffed dot, the end marker): the same."""
        assert play(cuts) == play([])
