"""Sending email: a real SMTP client, or a logging one when SMTP_URL is unset."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Sequence
from email.message import Message
from typing import NoReturn, Protocol
from urllib.parse import unquote, urlsplit

from core.logs import mask_email
from workers.errors import PermanentError, TransientError

log = logging.getLogger("workers.mail")


class Mailer(Protocol):
    """Something that delivers an email or raises TransientError / PermanentError."""

    def send(self, message: Message) -> None: ...


class LogMailer:
    """Used without SMTP_URL: the email is logged (recipient masked), not sent."""

    def send(self, message: Message) -> None:
        log.info(
            "email not sent: SMTP_URL is unset",
            extra={
                "to": mask_email(str(message["To"])),
                "subject": str(message["Subject"]),
                "message_id": str(message["Message-ID"]),
            },
        )


class SmtpMailer:
    """SMTP over one connection per worker process, reopened when the server drops it.

    `smtp://[user:pass@]host:port` uses STARTTLS when the server offers it; `smtps://` is TLS from the start.
    A server that offers PIPELINING gets each email in 2 round trips instead of 4 (_PipeliningSMTP).
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            reused = self._conn is not None
            try:
                self._send(message, reused=reused)
            except _ClosedError:
                # The server closed a connection (a reused one while it sat idle, most likely): one fresh try.
                self.close()
                try:
                    self._send(message, reused=False)
                except _ClosedError as exc:
                    self.close()
                    raise TransientError(
                        f"SMTP server closed the connection: {exc}", reason="smtp_unreachable"
                    ) from exc

    def _send(self, message: Message, *, reused: bool) -> None:
        try:
            conn = self._connect()
            refused = conn.send_message(message)
        except smtplib.SMTPServerDisconnected as exc:
            raise _ClosedError(str(exc)) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421 and reused:
                # "421 timeout, closing": what Postfix says to a connection idle past its limit.
                raise _ClosedError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            self._refused(exc)
        except smtplib.SMTPRecipientsRefused as exc:
            self._refused(exc)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TransientError(
                f"SMTP connection failed: {type(exc).__name__}", reason="smtp_unreachable"
            ) from exc
        if refused:
            raise PermanentError("recipient refused", reason="smtp_recipient_refused")

    def _refused(self, exc: smtplib.SMTPException) -> NoReturn:
        """An SMTP refusal as our error: 5xx will never work (permanent), 4xx may later (transient)."""
        self.close()
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            if all(c >= 500 for c in codes):
                raise PermanentError(
                    f"recipient refused ({codes[0]})", reason="smtp_recipient_refused"
                ) from exc
            raise TransientError(f"recipient deferred ({codes[0]})", reason="smtp_deferred") from exc
        assert isinstance(exc, smtplib.SMTPResponseException)
        if exc.smtp_code >= 500:
            raise PermanentError(f"SMTP {exc.smtp_code}", reason="smtp_rejected") from exc
        raise TransientError(f"SMTP {exc.smtp_code}", reason="smtp_unavailable") from exc

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        if self.tls:
            conn: smtplib.SMTP = _PipeliningSMTPSSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            conn = _PipeliningSMTP(self.host, self.port, timeout=self.timeout)
            conn.ehlo()
            if conn.has_extn("starttls"):
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
        if self.user:
            conn.login(self.user, self.password or "")
        self._conn = conn
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


class _ClosedError(Exception):
    """The server closed the connection (or said it would: 421); a fresh connection may do."""


class _PipeliningSMTP(smtplib.SMTP):
    """smtplib.SMTP that sends MAIL, every RCPT and DATA in one write when the server offers PIPELINING.

    Only the transaction (sendmail) is replaced: send_message still flattens the Message (Bcc and Resent-
    headers, SMTPUTF8), and the refusals raised are sendmail's own, so SmtpMailer classifies both paths alike.
    https://www.rfc-editor.org/rfc/rfc2920
    """

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: str | bytes,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("pipelining"):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")
        to_addrs = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        options = [f"size={len(msg)}"] if self.has_extn("size") else []
        options += mail_options
        if any(o.lower() == "smtputf8" for o in options):
            self.command_encoding = "utf-8"  # as SMTP.mail(): send_message asks only if the server offers it
        rcpt = "".join(f" {o}" for o in rcpt_options)
        commands = [f"MAIL FROM:{smtplib.quoteaddr(from_addr)}{''.join(f' {o}' for o in options)}"]
        commands += [f"RCPT TO:{smtplib.quoteaddr(a)}{rcpt}" for a in to_addrs]
        commands.append("DATA")
        if any("\r" in c or "\n" in c for c in commands):
            raise ValueError("SMTP command contains a line break")  # what SMTP.putcmd refuses
        self.send("".join(f"{c}\r\n" for c in commands))

        # Every reply is read, in order, before deciding. 421 means the server is closing: none follow it.
        mail = self.getreply()
        if mail[0] == 421:
            self.close()
            raise smtplib.SMTPSenderRefused(*mail, from_addr)
        refused = {}
        for addr in to_addrs:
            code, resp = self.getreply()
            if code not in (250, 251):
                refused[addr] = (code, resp)
            if code == 421:
                self.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        code, resp = self.getreply()
        if code == 421:
            self.close()
            raise smtplib.SMTPDataError(code, resp)
        if mail[0] != 250 or len(refused) == len(to_addrs):
            if code == 354:
                # DATA accepted with no transaction to carry it: end it with an empty message (RFC 2920 3.1).
                self.send(b".\r\n")
                self.getreply()
            self._rset()
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(*mail, from_addr)
            raise smtplib.SMTPRecipientsRefused(refused)
        if code != 354:
            self._rset()
            raise smtplib.SMTPDataError(code, resp)

        # The body exactly as SMTP.data sends it: dot-stuffed, ended by CRLF "." CRLF.
        body = smtplib._quote_periods(msg)
        if body[-2:] != b"\r\n":
            body += b"\r\n"
        self.send(body + b".\r\n")
        code, resp = self.getreply()
        if code != 250:
            if code == 421:
                self.close()
            else:
                self._rset()
            raise smtplib.SMTPDataError(code, resp)
        return refused


class _PipeliningSMTPSSL(_PipeliningSMTP, smtplib.SMTP_SSL):
    """The same over TLS from the start (smtps://)."""
