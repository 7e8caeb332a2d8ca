"""Sending email: a real SMTP client, or a logging one when SMTP_URL is unset."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Compat32, Policy
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol
from urllib.parse import unquote, urlsplit

from core.logs import mask_email
from core.settings import Settings
from workers.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, SizedBuffer

# What SMTP.sendmail does to a message given as str (bare CR or LF become CRLF), and the dot-stuffing
# SMTP.data applies to the body: written out here rather than called through smtplib's private helpers.
_CRLF = re.compile(r"\r\n|\r(?!\n)|\n")
_DOT = re.compile(rb"(?m)^\.")
# A bare address whose local part is a dot-atom (RFC 5322 3.2.3): its SMTP path is itself in angle brackets.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+"
)

log = logging.getLogger("workers.mail")


@dataclass(frozen=True)
class Envelope:
    """Who an email is from and to, as SMTP's MAIL FROM and RCPT TO take them (bare addresses)."""

    sender: str
    recipients: tuple[str, ...]


class Mailer(Protocol):
    """Something that delivers an email or raises TransientError / PermanentError.

    `deadline` (a time.monotonic() instant) is when the attempt must be over, sent or not: after it, the
    email's reservation may be someone else's. `envelope`, when the caller knows it, saves reading the
    addresses back out of the From and To headers.
    """

    def send(
        self, message: Message, *, deadline: float | None = None, envelope: Envelope | None = None
    ) -> None: ...


class LogMailer:
    """Used without SMTP_URL: the email is logged (recipient masked), not sent."""

    def send(
        self, message: Message, *, deadline: float | None = None, envelope: Envelope | None = None
    ) -> None:
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
    Credentials are only sent over TLS, unless `allow_plaintext_auth` (a relay on localhost, say).
    A server that offers PIPELINING gets each email in 2 round trips instead of 4 (_PipeliningSMTP).
    `timeout` bounds each command; `deadline_s` the whole send, from connecting to the last reply.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        deadline_s: float = 40.0,
        ca_file: Path | str | None = None,
        allow_plaintext_auth: bool = False,
    ) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.ca_file = str(ca_file) if ca_file else None
        self.allow_plaintext_auth = allow_plaintext_auth
        self._conn: _PipeliningSMTP | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        """The mailer SMTP_URL and the SMTP_* settings describe (SMTP_URL must be set)."""
        assert settings.smtp_url is not None
        return cls(
            settings.smtp_url,
            timeout=settings.smtp_timeout_s,
            deadline_s=settings.smtp_deadline_s,
            ca_file=settings.smtp_ca_file,
            allow_plaintext_auth=settings.smtp_allow_plaintext_auth,
        )

    def send(
        self, message: Message, *, deadline: float | None = None, envelope: Envelope | None = None
    ) -> None:
        budget = _Budget(time.monotonic() + self.deadline_s if deadline is None else deadline)
        # Waiting for another thread's send counts too: the deadline is the caller's, not the connection's.
        if not self._lock.acquire(timeout=max(0.0, budget.left())):
            raise TransientError("no SMTP connection free before the send's deadline", reason="smtp_timeout")
        try:
            with budget:
                self._send_once_or_twice(message, budget, envelope)
        finally:
            self._lock.release()

    def check(self) -> None:
        """Connect (STARTTLS, AUTH) without sending: a worker does it at start, to say early what is wrong."""
        with self._lock:
            budget = _Budget(time.monotonic() + self.deadline_s)
            with budget:
                try:
                    self._connect(budget)
                except (smtplib.SMTPException, OSError) as exc:
                    self.close()
                    raise TransientError(
                        f"SMTP connection failed: {type(exc).__name__}", reason=_failure_reason(exc, budget)
                    ) from exc

    def _send_once_or_twice(self, message: Message, budget: _Budget, envelope: Envelope | None) -> None:
        reused = self._conn is not None
        try:
            self._send(message, budget, envelope, reused=reused)
        except _ClosedError as exc:
            self.close()
            if budget.passed():
                raise _timed_out() from exc
            # The server closed a connection (a reused one while it sat idle, most likely): one fresh try.
            try:
                self._send(message, budget, envelope, reused=False)
            except _ClosedError as exc2:
                self.close()
                if budget.passed():
                    raise _timed_out() from exc2
                raise TransientError(
                    f"SMTP server closed the connection: {exc2}", reason="smtp_unreachable"
                ) from exc2

    def _send(self, message: Message, budget: _Budget, envelope: Envelope | None, *, reused: bool) -> None:
        conn: _PipeliningSMTP | None = None
        try:
            conn = self._connect(budget)
            if envelope is None or not _plain(message, envelope):
                refused = conn.send_message(message, *_addresses(envelope))
            else:
                # What send_message sends, without its work for the general case: it parses the From and
                # To headers back into addresses (_parseaddr's pure-Python tokenizer), copies the message
                # to delete Bcc headers it has none of, and checks for addresses needing SMTPUTF8.
                refused = conn.sendmail(envelope.sender, list(envelope.recipients), flatten(message))
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421 and reused:
                # "421 timeout, closing": what Postfix says to a connection idle past its limit.
                raise _ClosedError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            self._refused(exc)
        except smtplib.SMTPRecipientsRefused as exc:
            self._refused(exc)
        except OSError as exc:  # every SMTPException too: smtplib derives them from OSError
            if conn is not None and conn.message_out:
                # The whole message went out and its answer never came (a timeout, the deadline, a reset):
                # the server may deliver it. Another send on a fresh connection now could only add a copy.
                self.close()
                raise TransientError(
                    "the SMTP server got the message but did not confirm it", reason="smtp_unconfirmed"
                ) from exc
            if not isinstance(exc, smtplib.SMTPServerDisconnected):
                self.close()
                raise TransientError(
                    f"SMTP connection failed: {type(exc).__name__}", reason=_failure_reason(exc, budget)
                ) from exc
            raise _ClosedError(str(exc)) from exc
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

    def _tls_context(self) -> ssl.SSLContext:
        # With a CA file, that CA alone is trusted (a private relay's); without, the system's store.
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self, budget: _Budget) -> _PipeliningSMTP:
        if self._conn is not None:
            self._conn.use(budget)
            return self._conn
        conn: _PipeliningSMTP
        if self.tls:
            conn = _PipeliningSMTPSSL(timeout=self.timeout, context=self._tls_context())
        else:
            conn = _PipeliningSMTP(timeout=self.timeout)
        conn.use(budget)
        # Built without a host (so the budget is in place before connecting), smtplib would verify the
        # certificate against an empty name: _host is what its starttls() and SMTP_SSL check it against.
        conn._host = self.host
        try:
            conn.connect(self.host, self.port)
            secure = self.tls
            if not self.tls:
                conn.ehlo()
                if conn.has_extn("starttls"):
                    conn.starttls(context=self._tls_context())
                    conn.ehlo()
                    secure = True
            if self.user:
                if not secure and not self.allow_plaintext_auth:
                    # The password would cross the network in clear (RFC 4954 section 4 forbids that).
                    raise PermanentError(
                        f"{self.host}:{self.port} offers no STARTTLS: refusing to send SMTP credentials in "
                        "clear (use smtps://, or SMTP_ALLOW_PLAINTEXT_AUTH=1 for a local relay)",
                        reason="smtp_tls_required",
                    )
                conn.login(self.user, self.password or "")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


class _Budget:
    """One send's deadline, over every step of it (connect, TLS, EHLO, AUTH, MAIL/RCPT/DATA, the body).

    Each socket operation gets the time left as its timeout, and a watchdog shuts the socket down at the
    deadline, which also ends what a per-operation timeout cannot: a TLS handshake or a reply line trickling
    in a byte at a time. After the deadline nothing more can be written to the server.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._fds: set[int] = set()
        self._lock = threading.Lock()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.left() <= 0

    def timeout(self, per_operation: float) -> float:
        """The timeout for the next socket operation; socket.timeout if the deadline has passed."""
        left = self.left()
        if self.expired or left <= 0:
            raise TimeoutError("the send's deadline has passed")
        return min(per_operation, left)

    def watch(self, fd: int) -> None:
        with self._lock:
            if self.expired:
                _shutdown(fd)
            self._fds.add(fd)

    def unwatch(self, fd: int) -> None:
        # Under the lock: once the socket is closed its number may be reused, and must not be shut down.
        with self._lock:
            self._fds.discard(fd)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for fd in self._fds:
                _shutdown(fd)

    def __enter__(self) -> _Budget:
        _Watchdog.get().add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _Watchdog.get().discard(self)
        with self._lock:
            self._fds.clear()


class _Watchdog:
    """One thread per process that expires the budgets whose deadline has come.

    It used to be a threading.Timer per send: a thread started and stopped for every email, which cost
    more CPU than composing the email. This thread sleeps until the earliest deadline of the sends in
    progress, and is woken only when a send starts with an earlier one (sends one after another never do).
    """

    _current: _Watchdog | None = None

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.budgets: set[_Budget] = set()
        self.wake_at = float("inf")
        self.cond = threading.Condition()
        threading.Thread(target=self._run, name="smtp-deadlines", daemon=True).start()

    @classmethod
    def get(cls) -> _Watchdog:
        dog = cls._current
        if dog is None or dog.pid != os.getpid():  # threads do not survive a fork: the pool's children
            dog = cls._current = cls()
        return dog

    def add(self, budget: _Budget) -> None:
        with self.cond:
            self.budgets.add(budget)
            if budget.deadline < self.wake_at:
                self.cond.notify()

    def discard(self, budget: _Budget) -> None:
        with self.cond:
            self.budgets.discard(budget)

    def _run(self) -> None:
        with self.cond:
            while True:
                now = time.monotonic()
                for budget in [b for b in self.budgets if b.deadline <= now]:
                    self.budgets.discard(budget)
                    budget.expire()
                self.wake_at = min((b.deadline for b in self.budgets), default=float("inf"))
                self.cond.wait(None if self.wake_at == float("inf") else self.wake_at - now)


def _shutdown(fd: int) -> None:
    """Shut a socket down by number, through a duplicate: the owner's object stays valid, closed later."""
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        dup.close()


def flatten(message: Message) -> bytes:
    """The message as send_message puts it on the wire: BytesGenerator(fp).flatten(message, linesep=CRLF).

    email.generator costs more than composing the email: a generator, a buffer and a policy clone per part,
    a write call per line. The shapes notify_customer composes (a text part, or a multipart of text parts,
    with string payloads) are written here directly, through the message policy's own header folding;
    anything else goes to the generator. tests/workers/test_notify_policy.py compares the two.
    """
    policy = _crlf_policy(message.policy)
    if policy is not None:
        out = _flat(message, policy)
        if out is not None:
            return out
    buf = io.BytesIO()
    BytesGenerator(buf).flatten(message, linesep="\r\n")
    return buf.getvalue()


_NEWLINES = re.compile(r"\r\n|\r|\n")  # email.generator's NLCRE
_FROM = re.compile(r"^From ", re.MULTILINE)  # what compat32's mangle_from_ escapes
_policies: dict[int, tuple[Policy, Policy]] = {}


def _crlf_policy(policy: Policy) -> Policy | None:
    """`policy` with CRLF line ends, cached; None for a policy other than compat32's family."""
    if not isinstance(policy, Compat32):
        return None
    found = _policies.get(id(policy))
    if found is None or found[0] is not policy:
        found = _policies[id(policy)] = (policy, policy.clone(linesep="\r\n"))
    return found[1]


def _flat(msg: Message, policy: Policy) -> bytes | None:
    """What the generator writes for `msg`, or None for a shape it is not written here for."""
    payload = msg.get_payload()
    if msg.preamble is not None or msg.epilogue is not None:
        return None
    head = b"".join(policy.fold_binary(h, v) for h, v in msg.raw_items()) + b"\r\n"
    if isinstance(payload, str):
        if not payload.isascii():
            return None  # 8bit text, or bytes kept as surrogates: the generator re-encodes those
        if policy.mangle_from_:
            payload = _FROM.sub(">From ", payload)
        return head + "\r\n".join(_NEWLINES.split(payload)).encode("ascii")
    boundary = msg.get_boundary() if isinstance(payload, list) and msg.is_multipart() else None
    if not boundary or not payload:
        return None
    parts = []
    for part in payload:
        if not isinstance(part, Message) or part.is_multipart():
            return None
        flat = _flat(part, policy)
        if flat is None:
            return None
        parts.append(flat)
    sep = f"--{boundary}".encode("ascii", "surrogateescape")
    return head + sep + b"\r\n" + (b"\r\n" + sep + b"\r\n").join(parts) + b"\r\n" + sep + b"--\r\n"


def _plain(message: Message, envelope: Envelope) -> bool:
    """True for a message send_message would send as it is: ASCII addresses, no Bcc header to remove."""
    return (
        envelope.sender.isascii()
        and all(r.isascii() for r in envelope.recipients)
        and "Bcc" not in message
        and "Resent-Bcc" not in message
    )


def _addresses(envelope: Envelope | None) -> tuple[str | None, list[str] | None]:
    return (None, None) if envelope is None else (envelope.sender, list(envelope.recipients))


def _path(address: str) -> str:
    """smtplib.quoteaddr(address): `<address>`, without running its header parser on a plain address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _timed_out() -> TransientError:
    return TransientError("the SMTP send did not finish before its deadline", reason="smtp_timeout")


def _failure_reason(exc: BaseException, budget: _Budget) -> str:
    if budget.passed():
        return "smtp_timeout"
    if isinstance(exc, ssl.SSLError):
        return "smtp_tls_failed"
    return "smtp_unreachable"


class _ClosedError(Exception):
    """The server closed the connection (or said it would: 421); a fresh connection may do."""


class _PipeliningSMTP(smtplib.SMTP):
    """smtplib.SMTP that sends MAIL, every RCPT and DATA in one write when the server offers PIPELINING.

    Only the transaction (sendmail) is replaced: send_message still flattens the Message (Bcc and Resent-
    headers, SMTPUTF8), and the refusals raised are sendmail's own, so SmtpMailer classifies both paths alike.
    https://www.rfc-editor.org/rfc/rfc2920

    Every write and read is bounded by the send's _Budget (use()), and its socket is watched by it.
    """

    # smtplib's own attribute (set by connect(), checked by starttls() and SMTP_SSL); typeshed omits it.
    _host: str
    budget: _Budget | None = None
    message_out = False  # the current message has been sent in full, ending CRLF "." CRLF

    def use(self, budget: _Budget) -> None:
        """Bound everything this connection does from now on by `budget` (one send's deadline)."""
        self.budget = budget
        self.message_out = False
        if self.sock is not None:
            budget.watch(self.sock.fileno())

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        if self.budget is not None:
            timeout = self.budget.timeout(timeout)
        sock = socket.create_connection((host, port), timeout, self.source_address)
        if self.budget is not None:
            self.budget.watch(sock.fileno())
        return sock

    def _bound(self) -> None:
        if self.budget is not None and self.sock is not None:
            self.sock.settimeout(self.budget.timeout(self.timeout))

    def _reset_quietly(self) -> None:
        # RSET after a refused transaction; a server that already hung up needs none (as smtplib's _rset).
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            self.rset()

    def send(self, s: ReadableBuffer | str) -> None:
        self._bound()
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_out = True  # what SMTP.data and our pipelined sendmail end the message with

    def getreply(self) -> tuple[int, bytes]:
        try:
            self._bound()
        except TimeoutError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"Connection timed out: {exc}") from exc
        return super().getreply()

    def close(self) -> None:
        if self.budget is not None and self.sock is not None:
            self.budget.unwatch(self.sock.fileno())
        super().close()

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: SizedBuffer | str,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("pipelining"):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        # As SMTP.sendmail: a str message gets CRLF line ends (and must be ASCII).
        msg = _CRLF.sub("\r\n", msg).encode("ascii") if isinstance(msg, str) else bytes(msg)
        to_addrs = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        options = [f"size={len(msg)}"] if self.has_extn("size") else []
        options += mail_options
        if any(o.lower() == "smtputf8" for o in options):
            self.command_encoding = "utf-8"  # as SMTP.mail(): send_message asks only if the server offers it
        rcpt = "".join(f" {o}" for o in rcpt_options)
        commands = [f"MAIL FROM:{_path(from_addr)}{''.join(f' {o}' for o in options)}"]
        commands += [f"RCPT TO:{_path(a)}{rcpt}" for a in to_addrs]
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
            self._reset_quietly()
            if mail[0] != 250:
                raise smtplib.SMTPSenderRefused(*mail, from_addr)
            raise smtplib.SMTPRecipientsRefused(refused)
        if code != 354:
            self._reset_quietly()
            raise smtplib.SMTPDataError(code, resp)

        # The body exactly as SMTP.data sends it: dot-stuffed, ended by CRLF "." CRLF.
        body = _DOT.sub(b"..", msg)  # dot-stuffing, RFC 5321 4.5.2
        if body[-2:] != b"\r\n":
            body += b"\r\n"
        self.send(body + b".\r\n")
        code, resp = self.getreply()
        if code != 250:
            if code == 421:
                self.close()
            else:
                self._reset_quietly()
            raise smtplib.SMTPDataError(code, resp)
        return refused


class _PipeliningSMTPSSL(_PipeliningSMTP, smtplib.SMTP_SSL):
    """The same over TLS from the start (smtps://)."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # The TCP connection as the plain class makes it (bounded, watched), then the TLS handshake on it.
        sock = _PipeliningSMTP._get_socket(self, host, port, timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)
