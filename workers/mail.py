"""Sending email: a real SMTP client, or a logging one when SMTP_URL is unset."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import Message
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ingest.logs import mask_email
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
            try:
                self._send(message)
            except smtplib.SMTPServerDisconnected:
                # A reused connection the server closed while idle: one fresh try.
                self.close()
                self._send(message)

    def _send(self, message: Message) -> None:
        try:
            conn = self._connect()
            refused = conn.send_message(message)
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            if all(c >= 500 for c in codes):
                raise PermanentError(
                    f"recipient refused ({codes[0]})", reason="smtp_recipient_refused"
                ) from exc
            raise TransientError(f"recipient deferred ({codes[0]})", reason="smtp_deferred") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            if exc.smtp_code >= 500:
                raise PermanentError(f"SMTP {exc.smtp_code}", reason="smtp_rejected") from exc
            raise TransientError(f"SMTP {exc.smtp_code}", reason="smtp_unavailable") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TransientError(
                f"SMTP connection failed: {type(exc).__name__}", reason="smtp_unreachable"
            ) from exc
        if refused:
            raise PermanentError("recipient refused", reason="smtp_recipient_refused")

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        if self.tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
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
