"""SMTP servers for the mail tests: one slow on purpose (SlowSmtp), and aiosmtpd with TLS and AUTH (serving)
under a throwaway CA (make_pki); plus the email they are sent (sample_message)."""

from __future__ import annotations

import contextlib
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port
from workers.actions.notify import NotifyCustomer
from workers.mail import LogMailer

USER, PASSWORD = "shop", "s3cret pass"
CREDENTIALS = "shop:s3cret%20pass"  # USER:PASSWORD as SMTP_URL spells them


def sample_message(pub: str = "pub_1") -> Message:
    """What notify_customer sends for publication `pub`."""
    notify = NotifyCustomer(LogMailer(), sender="shop@example.com", reservation_ttl=60, remember_s=60)
    return notify.compose("zoe@example.com", "Zoë", ["CODE-1"], "Café crème", pub)


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


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate: what SMTP_CA_FILE points at
    cert: Path  # the server's certificate (127.0.0.1 and localhost), signed by the CA
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_pki(d: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1 signed by it, made with the openssl command in directory `d`."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-x509", *ec, *ca, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return Pki(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


class AuthRecorder:
    """Keeps the messages, and every login attempt with whether the session was encrypted then."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, bool]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.logins.append((data.login.decode(), encrypted))
        return AuthResult(success=(data.login.decode(), data.password.decode()) == (USER, PASSWORD))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def serving(**kwargs: Any) -> Iterator[tuple[AuthRecorder, int]]:
    handler = AuthRecorder()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate, **kwargs
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
