"""The intake's gunicorn worker: gthread, except that no thread ever waits for a client to send.

gunicorn's gthread worker hands a connection to a request thread as soon as its first byte arrives, and the
thread then blocks reading the rest: 16 clients that send a webhook's headers and one byte of its body hold
every thread of a 2 x 8 intake, and signed deliveries time out (issue 17). Here a thread reads only what
has arrived, without blocking, and asks ingest/buffering.py whether the request is complete: if it is, the
thread serves it from those bytes; if not, it keeps them and gives the connection back to the event loop,
which hands it to a thread again when more arrives. (Reading in the thread rather than in the event loop
keeps the loop's work per request what gthread's is: each extra blocking call in the loop waits for the GIL
behind the request threads, and the intake benchmark showed it.)

A connection that has not sent its headers within INTAKE_HEADER_TIMEOUT_SECONDS, or then its body within
INTAKE_BODY_TIMEOUT_SECONDS, is answered 408 and closed; one address may hold at most
INTAKE_MAX_CONNECTIONS_PER_CLIENT connections per process, and gets 429 past that. Both are counted as
intake requests (`outcome="timeout"` / `"limited"`) and logged once per address per minute.

Closing after an answer does not block either: gunicorn lingers up to 2 s in its event loop for the client
to close its side, which a client that never closes turned into a 2 s stall of the whole process.

TLS is not terminated here (the shipped deployments do not); with gunicorn's TLS options set, this worker
behaves as plain gthread and says so at start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

from core.settings import Settings
from ingest import metrics
from ingest.buffering import (
    ClientCounts,
    OncePerWindow,
    Phase,
    Scan,
    continue_line,
    error_answer,
    scan,
    without_expect,
)

log = logging.getLogger("ingest.intake.slow_clients")

# What gunicorn's graceful close allows a client to close its side after our answer, and drains meanwhile:
# at least LINGER_MAX_BYTES, and up to a few times the body limit, so a client still sending an oversized
# body (its 413 is answered at once) can finish writing and read the answer instead of being reset.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024
LINGER_BODIES = 4
# A first read as large as gunicorn's own (a webhook is a few KiB); past that, larger ones, as gunicorn's
# body reads do (each read waits for the GIL again). A 256 KiB first read cost the intake throughput: each
# is a large allocation, given back to the system at once.
_FIRST_RECV = 8192
_RECV = 256 * 1024
# One call at a time without blocking, whatever the socket's mode: switching the mode is a system call that
# lets go of the GIL, and one more of those per request cost the intake benchmark throughput.
_DONTWAIT = socket.MSG_DONTWAIT
# What a thread's handle() returns besides gthread's True (keep alive) and False (close).
_WAIT = object()  # the request is not all here: the event loop waits for more
_REFUSE = object()  # the request is answered by the event loop (conn.refusal says how)

# Requests answered here, because the app would have to read the rest from the client to answer them:
# (status, reason, outcome counted, message).
_REFUSALS = {
    Phase.TOO_LONG: (431, "headers_too_large", None, "the request headers are too large"),
    Phase.TOO_LARGE: (413, "too_large", "too_large", "the chunked body is over the size limit"),
    Phase.BAD_CHUNK: (400, "bad_chunked_body", None, "a chunk size in the body is not valid"),
}


class Conn(TConn):
    """gunicorn's connection, with the request read so far, its deadline, and its client's address."""

    def __init__(self, worker: BufferedThreadWorker, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.address = client[0] if isinstance(client, tuple) else "local"
        self.buf = bytearray()
        self.scan: Scan | None = None  # the last verdict on buf, so the next looks only at what is new
        self.phase = "headers"  # "headers", "body", "ready" (handed to gunicorn's parser) or "linger"
        self.deadline: float | None = None  # set when the request's first bytes arrive
        self.refusal: tuple[int, str, str | None, str] | None = None
        self.close_after = False  # answered before its body was read: never kept alive
        self.gone = False  # the client closed its side: nothing to linger for
        self.counted = False  # in the worker's per-address counts
        self.drained = 0

    def close(self, graceful: bool = False) -> None:
        self.worker.close_conn(self, graceful)


class BufferedThreadWorker(ThreadWorker):
    """gthread whose threads never block on a client; read deadlines and a per-address limit."""

    def init_process(self) -> None:
        settings = Settings.from_env()
        self.settings = settings
        self.header_timeout = settings.intake_header_timeout_s
        self.linger_max = max(LINGER_MAX_BYTES, LINGER_BODIES * settings.max_body_bytes)
        self.body_timeout = settings.intake_body_timeout_s
        self.max_body = settings.max_body_bytes
        self.counts = ClientCounts(settings.intake_max_connections_per_client)
        self.log_limiter = OncePerWindow(60.0)
        self.parked: dict[Any, Conn] = {}  # connections the event loop watches, by socket
        self.buffering = not self.cfg.is_ssl
        if not self.buffering:
            log.warning("TLS is on: slow-client protection is off (terminate TLS in front instead)")
        super().init_process()  # loads the app, then runs the loop: last, as gunicorn requires

    # -- event loop (main thread) ------------------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        if not self.buffering:
            return super().accept(listener)
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return None
        self.nr_conns += 1
        conn = Conn(self, self.cfg, sock, client, listener.getsockname())
        if not self.counts.admit(conn.address):
            self._refuse(conn, 429, "too_many_connections", "limited", "too many open connections")
            return None
        conn.counted = True
        conn.deadline = time.monotonic() + self.header_timeout  # a new connection's clock runs from now
        self._park(conn)
        return None

    def _park(self, conn: Conn) -> None:
        if conn.deadline is None:  # woken with nothing to read: the next request's clock starts now
            conn.deadline = time.monotonic() + self.header_timeout
        self.parked[conn.sock] = conn
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._parked_readable, conn))

    def _unpark(self, conn: Conn) -> None:
        self.parked.pop(conn.sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _parked_readable(self, conn: Conn, sock: Any) -> None:
        if conn.phase == "linger":
            self._drain(conn)
            return
        self._unpark(conn)
        self.enqueue_req(conn)  # a thread reads what arrived, without blocking

    def finish_request(self, conn: Any, fs: Any) -> None:
        result = None if fs.cancelled() or fs.exception() is not None else fs.result()
        if result is _WAIT:
            self._park(conn)
            return
        if result is _REFUSE:
            self._refuse(conn, *conn.refusal)
            return
        if result is True and isinstance(conn, Conn) and conn.parser.unreader.buf.getvalue():
            # The client pipelined its next request behind the answered one, and gunicorn read some of it
            # ahead; gthread would give that straight to a thread that then blocks reading the rest.
            conn.buf = bytearray(conn.parser.unreader.take_buffered())
            conn.phase, conn.scan, conn.deadline = "headers", None, None
            self.enqueue_req(conn)
            return
        if result is True and isinstance(conn, Conn):
            conn.phase, conn.deadline = "headers", None  # the next request's clock starts at its first byte
        super().finish_request(conn, fs)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.parked:
            first = min(c.deadline or 0.0 for c in self.parked.values())
            timeout = max(0.0, min(timeout, first - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        if self.parked:
            self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        for conn in [c for c in self.parked.values() if (c.deadline or 0.0) <= now]:
            self._unpark(conn)
            if conn.phase == "linger":
                self._really_close(conn)
                continue
            what = "headers" if conn.phase == "headers" else "body"
            self._refuse(
                conn,
                408,
                f"{what}_timeout",
                "timeout",
                f"the request {what} did not arrive in time",
                answer=bool(conn.buf),  # a connection that sent nothing is closed without an answer
            )

    # -- request threads ---------------------------------------------------------------------------------

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn, Conn) or conn.phase == "ready":
            return super().handle(conn)
        try:
            ended = self._read_available(conn)
        except OSError:
            conn.gone = True
            return False
        verdict = conn.scan = scan(conn.buf, self.max_body, conn.scan)
        if ended and verdict.phase in (Phase.HEADERS, Phase.BODY):
            conn.gone = True
            return False  # the client went away before its request was complete
        if verdict.phase is Phase.HEADERS:
            return _WAIT
        refusal = _REFUSALS.get(verdict.phase)
        if refusal is not None:
            conn.refusal = refusal
            return _REFUSE
        if verdict.phase is Phase.BODY:
            if conn.phase == "headers":
                conn.phase = "body"
                conn.deadline = time.monotonic() + self.body_timeout
                if verdict.expects_continue:
                    # The client waits for this before sending its body; gunicorn must not send a second.
                    conn.buf = bytearray(without_expect(conn.buf, verdict.headers_end))
                    conn.scan = None  # the headers got shorter: where the body starts moved
                    with contextlib.suppress(OSError):
                        conn.sock.send(continue_line(), _DONTWAIT)
            return _WAIT
        # Complete (or answerable from its headers): gunicorn's parser reads it from what is buffered.
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.buf))
        conn.buf, conn.scan, conn.phase = bytearray(), None, "ready"
        conn.close_after = verdict.phase is Phase.EARLY
        conn.data_ready = True  # gthread's own wait for a first byte has nothing to wait for
        result = super().handle(conn)
        conn.phase = "headers"
        return result

    def _read_available(self, conn: Conn) -> bool:
        """Add everything the socket holds now to conn.buf, without blocking; True if the client is done
        sending (it may still wait for the answer: a request followed by a half-close is served)."""
        size = _FIRST_RECV
        while True:
            try:
                data = conn.sock.recv(size, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return False
            if not data:
                return True
            if conn.deadline is None:  # a kept-alive connection's next request: its clock starts now
                conn.deadline = time.monotonic() + self.header_timeout
            conn.buf += data
            if len(data) < size:
                return False
            size = _RECV

    def _keepalive_after(self, conn: Any, keepalive: Any) -> bool:
        # Answered without its body (413, 400): reading the rest would hold this thread on the client.
        if getattr(conn, "close_after", False):
            return False
        return super()._keepalive_after(conn, keepalive)

    # -- answering and closing (event loop) --------------------------------------------------------------

    def _refuse(
        self, conn: Conn, status: int, reason: str, outcome: str | None, message: str, *, answer: bool = True
    ) -> None:
        """Answer (without blocking: a full send buffer just loses the answer) and close; count and log."""
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(error_answer(status, reason, message), _DONTWAIT)
        self.nr_conns -= 1
        # Closed gracefully when answered: a close with the client's bytes unread would reset the
        # connection, and the client could lose the answer.
        self.close_conn(conn, graceful=answer)
        if outcome:
            # The app's factory made this process's series (same directory): this only finds them.
            metrics.intake_metrics(metrics.multiproc_dir(self.settings)).requests.labels(outcome).inc()
        folded = self.log_limiter.hit(conn.address)
        if folded is not None:
            log.warning(
                "slow or greedy client closed",
                extra={
                    "reason": reason,
                    "client": conn.address,
                    "closed_since_last_line": folded,
                    "open_connections": self.counts.open(conn.address),
                },
            )

    def close_conn(self, conn: Conn, graceful: bool) -> None:
        """gunicorn closing a connection: gracefully means half-close and drain, here in the event loop."""
        if not graceful or conn.gone:
            self._really_close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._really_close(conn)
            return
        conn.phase = "linger"
        conn.deadline = time.monotonic() + LINGER_SECONDS
        self._park(conn)

    def _drain(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(_RECV, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained > self.linger_max:
            self._unpark(conn)
            self._really_close(conn)

    def _really_close(self, conn: Conn) -> None:
        if conn.counted:
            conn.counted = False
            self.counts.release(conn.address)
        with contextlib.suppress(OSError):
            conn.sock.close()
