"""An SMTP server that is slow on purpose: every reply just under a client's timeout, or trickled."""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time


class SlowSmtp:
    """An SMTP server that answers every command, and greets, `delay` seconds late; keeps the messages.

    No PIPELINING, no STARTTLS: a send is six replies (greeting, EHLO, MAIL, RCPT, DATA, the message).
    `trickle` sends each reply one byte at a time, `delay` seconds apart (no single read ever times out).
    """

    def __init__(self, delay: float, *, trickle: bool = False, confirm_delay: float = 0.0) -> None:
        self.delay = delay
        self.trickle = trickle
        self.confirm_delay = confirm_delay  # extra wait before confirming a message (a content scanner, say)
        self.messages: list[bytes] = []
        self.sessions = 0
        self.active = 0  # sessions still open
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str) -> None:
                data = f"{text}\r\n".encode()
                if outer.trickle:
                    for i in range(len(data)):
                        time.sleep(outer.delay)
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                    return
                time.sleep(outer.delay)
                self.wfile.write(data)
                self.wfile.flush()

            def handle(self) -> None:
                with outer._lock:
                    outer.sessions += 1
                    outer.active += 1
                try:
                    with contextlib.suppress(OSError):  # the client gave up on us: what the tests are about
                        self.converse()
                finally:
                    with outer._lock:
                        outer.active -= 1

            def converse(self) -> None:
                self.reply("220 slow.test ESMTP")
                while line := self.rfile.readline():
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb == b"EHLO":
                        self.reply("250-slow.test\r\n250 8BITMIME")
                    elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        self.reply("250 OK")
                    elif verb == b"DATA":
                        self.reply("354 go ahead")
                        lines = []
                        while (body := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(body)
                        # Accepted once received in full (an MTA queues it), whether or not the client hears.
                        with outer._lock:
                            outer.messages.append(b"".join(lines))
                        time.sleep(outer.confirm_delay)
                        self.reply("250 queued")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SlowSmtp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
