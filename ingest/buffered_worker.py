"""The intake's gunicorn worker: gthread, except that a request reaches a thread only once it is all here.

gunicorn's gthread worker hands a connection to a request thread as soon as its first byte arrives, and the
thread then blocks reading the rest: 16 clients that send a webhook's headers and one byte of its body hold
every thread of a 2 x 8 intake, and signed deliveries time out (issue 17). This worker keeps a connection in
its event loop, reading whatever arrives without blocking, until the request is complete (ingest/buffering.py
tells), and only then gives it to a thread, with the bytes already read; the thread never waits on a client.
A connection that has not sent its headers within INTAKE_HEADER_TIMEOUT_SECONDS, or then its body within
INTAKE_BODY_TIMEOUT_SECONDS, is answered 408 and closed; one address may hold at most
INTAKE_MAX_CONNECTIONS_PER_CLIENT connections per process. Each is counted as an intake request
(`outcome="timeout"` / `"limited"`) and logged once per address per minute.

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
from dataclasses import dataclass, field
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
    continue_line,
    error_answer,
    scan,
    without_expect,
)

log = logging.getLogger("ingest.intake.slow_clients")

# What gunicorn's graceful close allows a client to close its side after our answer, and drains meanwhile.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024
_RECV = 256 * 1024


class Conn(TConn):
    """gunicorn's connection, remembering its client address and closing through the worker."""

    def __init__(self, worker: BufferedThreadWorker, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.worker = worker
        self.address = client[0] if isinstance(client, tuple) else "local"
        self.close_after = False  # answered before its body was read: never kept alive
        self.closed = False

    def close(self, graceful: bool = False) -> None:
        self.worker.close_conn(self, graceful)


@dataclass
class Waiting:
    """A connection the event loop is reading (or draining, when lingering) until `deadline`."""

    conn: Conn
    phase: str  # "headers", "body" or "linger"
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    drained: int = 0


class BufferedThreadWorker(ThreadWorker):
    """gthread with complete requests only, read deadlines and a per-address connection limit."""

    def init_process(self) -> None:
        settings = Settings.from_env()
        self.header_timeout = settings.intake_header_timeout_s
        self.body_timeout = settings.intake_body_timeout_s
        self.max_body = settings.max_body_bytes
        self.counts = ClientCounts(settings.intake_max_connections_per_client)
        self.log_limiter = OncePerWindow(60.0)
        self.waiting: dict[Any, Waiting] = {}
        self.settings = settings
        self.buffering = not self.cfg.is_ssl
        if not self.buffering:
            log.warning("TLS is on: slow-client protection is off (terminate TLS in front instead)")
        super().init_process()  # loads the app, then runs the loop: last, as gunicorn requires

    # -- connections arriving ----------------------------------------------------------------------------

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
            conn.closed = True  # never counted, so nothing to release
            self._refuse(conn, 429, "too_many_connections", "limited", "too many open connections")
            return None
        self._wait(conn, b"")
        return None

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        # A kept-alive connection's next request: buffered like a first one, its deadline from now.
        if not self.buffering:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._wait(conn, b"")
        return None

    def finish_request(self, conn: Any, fs: Any) -> None:
        # A client may pipeline its next request behind the one answered; gunicorn would hand what it read
        # ahead straight to a thread, which would then block reading the rest. Buffer it like any request.
        if self.buffering and self.alive and not fs.cancelled() and fs.exception() is None and fs.result():
            parser = getattr(conn, "parser", None)
            unreader = getattr(parser, "unreader", None)
            if unreader is not None and unreader.buf.getvalue() and fs.result() is True:
                conn.sock.setblocking(False)
                self._wait(conn, unreader.take_buffered())
                return
        super().finish_request(conn, fs)

    def _keepalive_after(self, conn: Any, keepalive: Any) -> bool:
        # Answered without its body (413, 400): reading the rest would hold this thread on the client.
        if getattr(conn, "close_after", False):
            return False
        return super()._keepalive_after(conn, keepalive)

    # -- buffering ---------------------------------------------------------------------------------------

    def _wait(self, conn: Conn, data: bytes) -> None:
        waiting = Waiting(conn, "headers", time.monotonic() + self.header_timeout, bytearray(data))
        self.waiting[conn.sock] = waiting
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, waiting))
        if data:
            self._progress(waiting)

    def _readable(self, waiting: Waiting, sock: Any) -> None:
        try:
            data = sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if waiting.phase == "linger":
            waiting.drained += len(data)
            if not data or waiting.drained > LINGER_MAX_BYTES:
                self._forget(waiting)
                self._really_close(waiting.conn)
            return
        if not data:  # the client went away before its request was complete
            self._forget(waiting)
            self.nr_conns -= 1
            self._really_close(waiting.conn)
            return
        waiting.buf += data
        self._progress(waiting)

    def _progress(self, waiting: Waiting) -> None:
        verdict = scan(waiting.buf, self.max_body)
        if verdict.phase is Phase.HEADERS:
            return
        if verdict.phase is Phase.TOO_LONG:
            self._forget(waiting)
            self._refuse(waiting.conn, 431, "headers_too_large", None, "the request headers are too large")
            return
        if verdict.phase is Phase.BODY:
            if waiting.phase == "headers":
                waiting.phase = "body"
                waiting.deadline = time.monotonic() + self.body_timeout
                if verdict.expects_continue:
                    # The client waits for this before sending its body; gunicorn must not send a second.
                    waiting.buf = bytearray(without_expect(waiting.buf, verdict.headers_end))
                    with contextlib.suppress(OSError):
                        waiting.conn.sock.send(continue_line())
            return
        self._forget(waiting)
        self._hand_off(waiting.conn, bytes(waiting.buf), close_after=verdict.phase is Phase.EARLY)

    def _hand_off(self, conn: Conn, data: bytes, *, close_after: bool) -> None:
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(data)
        conn.data_ready = True  # gthread's own wait for a first byte has nothing to wait for
        conn.close_after = close_after
        self.enqueue_req(conn)

    def _forget(self, waiting: Waiting) -> None:
        self.waiting.pop(waiting.conn.sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(waiting.conn.sock)

    # -- deadlines ---------------------------------------------------------------------------------------

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.waiting:
            first = min(w.deadline for w in self.waiting.values())
            timeout = max(0.0, min(timeout, first - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        if self.waiting:
            self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        for waiting in [w for w in self.waiting.values() if w.deadline <= now]:
            self._forget(waiting)
            if waiting.phase == "linger":
                self._really_close(waiting.conn)
                continue
            what = "headers" if waiting.phase == "headers" else "body"
            self._refuse(
                waiting.conn,
                408,
                f"{what}_timeout",
                "timeout",
                f"the request {what} did not arrive in time",
                answer=bool(waiting.buf),  # a connection that sent nothing is closed without an answer
            )

    # -- closing -----------------------------------------------------------------------------------------

    def _refuse(
        self, conn: Conn, status: int, reason: str, outcome: str | None, message: str, *, answer: bool = True
    ) -> None:
        """Answer (without blocking: a full send buffer just loses the answer) and close; count and log."""
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(error_answer(status, reason, message))
        self.nr_conns -= 1
        self._really_close(conn)
        if outcome:
            self._count(outcome)
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

    def _count(self, outcome: str) -> None:
        # The app's factory made this process's series (same directory): this only finds them.
        metrics.intake_metrics(metrics.multiproc_dir(self.settings)).requests.labels(outcome).inc()

    def close_conn(self, conn: Conn, graceful: bool) -> None:
        """gunicorn closing a connection: gracefully means half-close and drain, here in the event loop."""
        if not graceful or conn.closed:
            self._really_close(conn)
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            self._really_close(conn)
            return
        waiting = Waiting(conn, "linger", time.monotonic() + LINGER_SECONDS)
        self.waiting[conn.sock] = waiting
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, waiting))

    def _really_close(self, conn: Conn) -> None:
        if not conn.closed:
            conn.closed = True
            self.counts.release(conn.address)
        with contextlib.suppress(OSError):
            conn.sock.close()
