"""SmtpMailer against real SMTP servers on localhost, with and without ESMTP PIPELINING (RFC 2920)."""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.charset import QP, Charset
from email.header import decode_header, make_header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support import SmtpSink, free_port, wait_for
from workers.actions.notify import NotifyCustomer
from workers.errors import PermanentError, TransientError
from workers.mail import Envelope, LogMailer, SmtpMailer, _path

pytestmark = pytest.mark.timeout(30)


class RecordingSMTP(SMTP):
    """aiosmtpd's server, keeping what each read from the socket brought: how the client batched commands."""

    def __init__(self, handler: Server, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.reads: list[bytes] = []
        handler.sessions.append(self)

    def data_received(self, data: bytes) -> None:
        self.reads.append(bytes(data))
        super().data_received(data)


class Server:
    """A real SMTP server (aiosmtpd) that offers PIPELINING or not, keeps envelopes, refuses when told.

    refuse: {"MAIL" | "RCPT" | "DATA": code}, DATA meaning the reply after the message; 421 then closes.
    accept_data: a broken server that answers DATA with 354 though it refused every recipient.
    """

    def __init__(self, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.refuse: dict[str, int] = {}
        self.refuse_once = False  # forget a refusal once it has been given
        self.accept_data = False
        self.received: list[Any] = []  # accepted envelopes
        self.data_ends: list[bytes] = []  # every message that ended with "." (accepted or not)
        self.sessions: list[RecordingSMTP] = []
        self.port = free_port()
        server = self

        class _Controller(Controller):
            def factory(self) -> RecordingSMTP:
                return RecordingSMTP(server, **self.SMTP_kwargs)

        self.controller = _Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def connections(self) -> list[RecordingSMTP]:
        """Sessions a client spoke in (Controller.start opens a silent one to check the server is up)."""
        return [s for s in self.sessions if s.reads]

    def drop_connections(self) -> None:
        """Close every connection from the server side, as an MTA does with idle clients."""
        open_ = [s for s in self.sessions if s.transport is not None]
        for s in open_:
            self.controller.loop.call_soon_threadsafe(s.transport.close)
        wait_for(lambda: all(s.transport is None for s in open_), timeout=5, what="connections to close")

    def _refusal(self, server: SMTP, step: str) -> str:
        code = self.refuse.pop(step) if self.refuse_once else self.refuse[step]
        reply = f"{code} {step} refused by test"
        if (
            code == 421
        ):  # "closing channel", as an MTA says it: this reply, then none (aiosmtpd's push is lost)
            server.transport.write(f"{reply}\r\n".encode())
            server.transport.close()
        return reply

    async def handle_EHLO(  # noqa: N802 - aiosmtpd API
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves it to a 5-argument EHLO hook
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(  # noqa: N802 - aiosmtpd API
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if "MAIL" in self.refuse:
            return self._refusal(server, "MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd API
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if "RCPT" not in self.refuse or self.accept_data:
            envelope.rcpt_tos.append(address)  # aiosmtpd answers DATA with 354 once there is one
        if "RCPT" in self.refuse:
            return self._refusal(server, "RCPT")
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.data_ends.append(envelope.content)
        if "DATA" in self.refuse:
            return self._refusal(server, "DATA")
        self.received.append(envelope)
        return "250 OK"


@contextmanager
def running(*, pipelining: bool) -> Iterator[Server]:
    srv = Server(pipelining=pipelining)
    srv.controller.start()
    try:
        yield srv
    finally:
        srv.controller.stop()


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with running(pipelining=request.param) as srv:
        yield srv


@pytest.fixture
def pipelining_server() -> Iterator[Server]:
    with running(pipelining=True) as srv:
        yield srv


@pytest.fixture
def mailer(server: Server) -> Iterator[SmtpMailer]:
    m = SmtpMailer(server.url, timeout=5)
    try:
        yield m
    finally:
        m.close()


def compose(to: str = "zoe@example.com", name: str | None = "Zoë Åström", pub: str = "pub_1") -> Message:
    """What notify_customer sends: plain text, RFC 2047 headers and a quoted-printable body when not ASCII."""
    notify = NotifyCustomer(LogMailer(), sender="shop@example.com", reservation_ttl=60, remember_s=60)
    return notify.compose(to, name, ["CODE-1", "CODE-2"], "Café crème", pub)


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def text(msg: Message) -> str:
    """The decoded text/plain part, the wire's CRLF line ends back to LF."""
    (part,) = [p for p in msg.walk() if p.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode(part.get_content_charset()).replace("\r\n", "\n")


def dotted(*, bcc: bool = True) -> Message:
    """Lines an SMTP client must dot-stuff, non-ASCII, a Bcc recipient (envelope only, never a header)."""
    charset = Charset("utf-8")
    charset.body_encoding = QP
    msg = MIMEText(".\n..two dots\n.one dot\nnot. at the start\n\nÉté\n", "plain", charset)
    msg["From"] = "shop@example.com"
    msg["To"] = formataddr(("Zoë", "zoe@example.com"), charset="utf-8")
    if bcc:
        msg["Bcc"] = "audit@example.com"
    msg["Subject"] = "dots"
    msg["Message-ID"] = "<dots@example.com>"
    return msg


class TestWithoutPipelining:
    def test_the_test_sink_does_not_offer_pipelining(self, smtp: SmtpSink):
        """tests.support.SmtpSink (aiosmtpd's defaults) exercises smtplib's own send_message path."""
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as conn:
            conn.ehlo()
            assert conn.has_extn("size")
            assert not conn.has_extn("pipelining")

    def test_non_ascii_name_subject_and_body_arrive_intact(self, smtp: SmtpSink):
        """Through the test sink: RFC 2047 name and subject, quoted-printable UTF-8 body."""
        mailer = SmtpMailer(smtp.url, timeout=5)
        try:
            mailer.send(compose())
        finally:
            mailer.close()

        (msg,) = wait_for(lambda: smtp.to("zoe@example.com"), timeout=5, what="the email")
        assert parseaddr(decoded(msg["To"])) == ("Zoë Åström", "zoe@example.com")
        assert decoded(msg["Subject"]) == "Your voucher codes from Café crème"
        assert text(msg).splitlines() == [
            "Hello Zoë Åström,",
            "",
            "Here are your codes from Café crème:",
            "",
            "    CODE-1",
            "    CODE-2",
            "",
            "Enjoy!",
        ]


class TestEnvelope:
    def test_the_envelope_given_is_the_one_used(self, smtp: SmtpSink):
        """With an envelope, MAIL FROM and RCPT TO are its addresses, not the headers'."""
        mailer = SmtpMailer(smtp.url, timeout=5)
        try:
            mailer.send(compose(), envelope=Envelope("bounces@example.com", ("other@example.com",)))
        finally:
            mailer.close()
        wait_for(lambda: smtp.messages, timeout=5, what="the email")
        assert smtp.envelopes == [("bounces@example.com", ["other@example.com"])]
        assert "zoe@example.com" in smtp.messages[0]["To"]


class TestPipelining:
    def test_mail_rcpt_and_data_go_in_one_write(self, pipelining_server: Server):
        """Each email is 2 writes (commands, then body) over one reused connection, not 4."""
        mailer = SmtpMailer(pipelining_server.url, timeout=5)
        try:
            for n in range(3):
                mailer.send(compose(pub=f"pub_{n}"))
        finally:
            mailer.close()

        (conn,) = pipelining_server.connections()
        ehlo, *mails, quit_ = conn.reads
        assert ehlo.startswith(b"ehlo ")
        assert quit_ == b"quit\r\n"
        assert len(mails) == 6
        for commands, body in zip(mails[::2], mails[1::2], strict=True):
            assert commands.startswith(b"MAIL FROM:<shop@example.com> size=")
            assert commands.endswith(b"\r\nRCPT TO:<zoe@example.com>\r\nDATA\r\n")
            assert body.startswith(b"Content-Type: multipart/alternative")
            assert body.endswith(b"\r\n.\r\n")
        bodies = [b.removesuffix(b".\r\n") for b in mails[1::2]]
        assert [e.content for e in pipelining_server.received] == bodies
        assert [m["Message-ID"] for m in map(message_from_bytes, mails[1::2])] == [
            "<pub_0@example.com>",
            "<pub_1@example.com>",
            "<pub_2@example.com>",
        ]

    @pytest.mark.parametrize("pipelining", [True, False])
    def test_an_envelope_sends_the_same_bytes(self, pipelining):
        """Given the envelope, the mailer flattens the message itself: the server gets the bytes
        send_message sends (dot-stuffing undone), to the envelope's addresses."""
        seen = []
        for envelope in (None, Envelope("shop@example.com", ("zoe@example.com",))):
            with running(pipelining=pipelining) as srv:
                mailer = SmtpMailer(srv.url, timeout=5)
                try:
                    mailer.send(dotted(bcc=False), envelope=envelope)
                finally:
                    mailer.close()
            (received,) = srv.received
            seen.append((received.mail_from, received.rcpt_tos, received.content))
        assert seen[0] == seen[1]
        assert seen[1][:2] == ("shop@example.com", ["zoe@example.com"])

    def test_a_bcc_header_is_never_sent(self):
        """With an envelope too: a message carrying Bcc goes through send_message, which drops it."""
        with running(pipelining=True) as srv:
            mailer = SmtpMailer(srv.url, timeout=5)
            try:
                mailer.send(dotted(), envelope=Envelope("shop@example.com", ("zoe@example.com",)))
            finally:
                mailer.close()
        (received,) = srv.received
        assert received.rcpt_tos == ["zoe@example.com"]
        assert "Bcc" not in message_from_bytes(received.content)

    @pytest.mark.parametrize(
        "address",
        ["zoe@example.com", "o'neil+tag@mail.example.co.uk", '"zoe doe"@example.com', "x@[127.0.0.1]"],
    )
    def test_smtp_paths_are_quoteaddrs(self, address):
        assert _path(address) == smtplib.quoteaddr(address)

    def test_server_receives_what_send_message_sends(self):
        """Envelope and bytes are the same pipelined or not: dots unstuffed, Bcc in the envelope only."""
        seen = []
        for pipelining in (True, False):
            with running(pipelining=pipelining) as srv:
                mailer = SmtpMailer(srv.url, timeout=5)
                try:
                    mailer.send(dotted())
                finally:
                    mailer.close()
            (envelope,) = srv.received
            seen.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))

        assert seen[0] == seen[1]
        mail_from, rcpt_tos, content = seen[0]
        assert (mail_from, rcpt_tos) == ("shop@example.com", ["zoe@example.com", "audit@example.com"])
        msg = message_from_bytes(content)
        assert "Bcc" not in msg
        assert text(msg) == ".\n..two dots\n.one dot\nnot. at the start\n\nÉté\n"


class TestRefusals:
    @pytest.mark.parametrize(
        ("step", "code", "error", "reason"),
        [
            ("RCPT", 550, PermanentError, "smtp_recipient_refused"),
            ("RCPT", 450, TransientError, "smtp_deferred"),
            ("RCPT", 421, TransientError, "smtp_deferred"),
            ("MAIL", 550, PermanentError, "smtp_rejected"),
            ("MAIL", 451, TransientError, "smtp_unavailable"),
            ("MAIL", 421, TransientError, "smtp_unavailable"),
            ("DATA", 554, PermanentError, "smtp_rejected"),
            ("DATA", 452, TransientError, "smtp_unavailable"),
            ("DATA", 421, TransientError, "smtp_unavailable"),
        ],
    )
    def test_refusal_is_classified_and_the_connection_replaced(
        self, server: Server, mailer: SmtpMailer, step, code, error, reason
    ):
        """One error and reason per refusal, pipelined or not; the next email gets a new connection."""
        server.refuse[step] = code
        with pytest.raises(error) as exc_info:
            mailer.send(compose())
        assert exc_info.value.reason == reason
        assert server.received == []

        server.refuse.clear()
        mailer.send(compose())
        assert len(server.received) == 1
        assert len(server.connections()) == 2

    def test_data_accepted_after_every_recipient_refused_gets_an_empty_message(
        self, pipelining_server: Server
    ):
        """A server that answers the pipelined DATA with 354 anyway is sent "." alone (RFC 2920 3.1)."""
        pipelining_server.refuse["RCPT"] = 550
        pipelining_server.accept_data = True
        mailer = SmtpMailer(pipelining_server.url, timeout=5)
        try:
            with pytest.raises(PermanentError) as exc_info:
                mailer.send(compose())
        finally:
            mailer.close()
        assert exc_info.value.reason == "smtp_recipient_refused"
        assert pipelining_server.data_ends == [b""]
        (conn,) = pipelining_server.connections()
        assert conn.reads[2:] == [b".\r\n", b"rset\r\n", b"quit\r\n"]


class TestReconnect:
    def test_connection_the_server_closed_while_idle_is_replaced(self, server: Server, mailer: SmtpMailer):
        """A reused connection the server dropped gets one fresh try: the email is sent, no error."""
        mailer.send(compose(pub="pub_1"))
        server.drop_connections()
        mailer.send(compose(pub="pub_2"))
        sent = [message_from_bytes(e.content)["Message-ID"] for e in server.received]
        assert sent == ["<pub_1@example.com>", "<pub_2@example.com>"]
        assert len(server.connections()) == 2

    def test_reused_connection_answered_421_is_replaced(self, server: Server, mailer: SmtpMailer):
        """Regression: an MTA closing an idle connection says "421 timeout" first (Postfix does). That was
        a TransientError and the email waited for a retry; it is a closed connection: one fresh try."""
        mailer.send(compose(pub="pub_1"))
        server.refuse["MAIL"] = 421
        server.refuse_once = True
        mailer.send(compose(pub="pub_2"))
        assert [message_from_bytes(e.content)["Message-ID"] for e in server.received] == [
            "<pub_1@example.com>",
            "<pub_2@example.com>",
        ]
        assert len(server.connections()) == 2

    def test_server_that_closes_every_connection_is_transient(self):
        """Regression: when the fresh try was disconnected too, smtplib's own exception escaped, and the
        pipeline recorded an "unexpected" error. It is TransientError(smtp_unreachable)."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]

            def close_each() -> None:
                for _ in range(2):
                    conn, _ = listener.accept()
                    conn.close()

            closer = threading.Thread(target=close_each, daemon=True)
            closer.start()
            mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=5)
            with pytest.raises(TransientError) as exc_info:
                mailer.send(compose())
            closer.join(timeout=5)
        assert exc_info.value.reason == "smtp_unreachable"
        assert not closer.is_alive()  # both tries connected: the first, and the fresh one

    def test_unreachable_server_is_transient(self):
        """Nothing listening: TransientError(smtp_unreachable), worth retrying."""
        mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=5)
        with pytest.raises(TransientError) as exc_info:
            mailer.send(compose())
        assert exc_info.value.reason == "smtp_unreachable"
