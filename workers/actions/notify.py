"""notify_customer: email a customer the voucher code(s) they were just given.

Runs on `publication.succeeded` and `voucher.published`. One email per publication id, however many
times, and through however many event types, the publication arrives. Written on the public handler API
(workers/handlers.py: Event, Skip, event.once), so a user's handler can do anything this one does.
"""

from __future__ import annotations

import time
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate
from typing import Any, cast

from workers import dispatch
from workers.dispatch import NOTIFY_CUSTOMER
from workers.errors import PermanentError
from workers.handlers import Event, HandlerAction, HandlerSpec, Skip
from workers.mail import Mailer

# The types the dispatch table routes to this action (both announce that a customer was given codes).
PATTERNS = tuple(t for t, names in dispatch.ROUTES.items() if NOTIFY_CUSTOMER in names)

# How much longer an email's reservation lasts than its send may: the reservation is taken before the send
# starts (one store round trip) and "emailed" is recorded after it ends (another), both inside this margin.
RESERVATION_MARGIN_S = 10


def reservation_for(send_deadline_s: float) -> int:
    """The reservation (whole seconds) that outlasts a send given `send_deadline_s` to finish."""
    return int(-(-send_deadline_s // 1)) + RESERVATION_MARGIN_S


class NotifyCustomer(HandlerAction):
    """The notify_customer action: a handler written on the public API (workers.handlers), like yours."""

    def __init__(self, mailer: Mailer, *, sender: str, reservation_ttl: int, remember_s: int) -> None:
        if reservation_ttl <= RESERVATION_MARGIN_S:
            raise ValueError(f"reservation_ttl must be longer than {RESERVATION_MARGIN_S} s")
        spec = HandlerSpec(
            name=NOTIFY_CUSTOMER,
            func=self.handle,
            patterns=PATTERNS,
            # "notify:<publication>" is the key every version has kept "already emailed" under.
            once_prefix="notify",
            where=f"{__file__}:NotifyCustomer",
        )
        # The reservation is how long a crashed sender blocks others; "emailed" is remembered remember_s.
        super().__init__(spec, hold_s=reservation_ttl, remember_s=remember_s)
        self.mailer = mailer
        self.sender = sender
        self.reservation_ttl = reservation_ttl
        # Each send must be over before its reservation can lapse, so another worker can never send too.
        self.send_deadline_s = reservation_ttl - RESERVATION_MARGIN_S
        self.remember_s = remember_s

    def handle(self, event: Event) -> str | Skip:
        """Email the customer their code(s), once per publication."""
        data = event.data
        publication = getattr(data, "publication", None)
        customer = getattr(data, "customer", None) or getattr(publication, "customer", None)
        email = getattr(customer, "email", None) or getattr(
            getattr(publication, "customer", None), "email", None
        )
        if not email:
            return Skip("customer has no email address")
        codes = list(dict.fromkeys(v.code for v in getattr(data, "vouchers", ()) if v.code))
        if not codes:
            return Skip("the event carries no voucher code")
        # Without a publication id, Voucherify's event id: the same in every delivery of the event (ours
        # differs per source, and for a resend after the dedup window).
        pub_id = getattr(publication, "id", None) or f"event:{event.voucherify_id or event.id}"
        campaign = getattr(getattr(data, "campaign", None), "name", None)
        message = self.compose(email, getattr(customer, "name", None), codes, campaign, pub_id)
        # The deadline is taken once the reservation is ours: it began before this instant.
        sent = event.once(
            pub_id, lambda: self.mailer.send(message, deadline=time.monotonic() + self.send_deadline_s)
        )
        if not sent:
            return Skip(f"already emailed for publication {pub_id}")
        return f"emailed {len(codes)} code(s) for publication {pub_id}"

    def compose(
        self, to: str, name: str | None, codes: list[str], campaign: str | None, pub_id: str
    ) -> Message:
        """The email: plain text, with a Message-ID derived from the publication (stable across retries).

        Built with the classic (compat32) email classes: the default policy's header registry made composing
        one email cost more than validating and storing its event.
        """
        to = _ascii_address(to)
        name = _one_line(name)
        what = f" from {_one_line(campaign)}" if campaign else ""
        greeting = f"Hello {name}," if name else "Hello,"
        lines = [greeting, "", f"Here {'are your codes' if len(codes) > 1 else 'is your code'}{what}:", ""]
        lines += [f"    {_one_line(c)}" for c in codes]
        lines += ["", "Enjoy!"]
        body = "\n".join(lines) + "\n"
        # A Charset object is what email's docs allow here; typeshed's stub says only str.
        charset: Any = "us-ascii" if body.isascii() else _UTF8_QP
        msg = MIMEText(body, "plain", charset, policy=POLICY)
        msg["From"] = self.sender
        msg["To"] = formataddr((name, to), charset="utf-8")
        subject = f"Your voucher code{'s' if len(codes) > 1 else ''}{what}"
        # compat32 takes a Header for a header value (the stub types values as str only).
        msg["Subject"] = subject if subject.isascii() else cast(str, Header(subject, "utf-8"))
        msg["Date"] = formatdate(usegmt=True)
        domain = self.sender.rpartition("@")[2] or "localhost"
        msg["Message-ID"] = f"<{pub_id}@{domain}>"
        return msg


class ShortHeaders(Compat32):
    """compat32, minus the folding machinery for a header that needs none.

    compat32 runs every header through `email.header.Header` to fold it, which made flattening an email
    cost more than composing it. A short one-line ASCII value is written as it is: the same bytes compat32
    writes (tests/workers/test_notify_policy.py compares the two), at an eighth of the cost.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        if (
            isinstance(value, str)
            and len(name) + len(value) < 76
            and value.isascii()
            and value.isprintable()
            and value == value.strip()
            and "  " not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = ShortHeaders()


def _ascii_address(address: str) -> str:
    """The recipient as plain SMTP can carry it: an internationalised domain in its IDNA (xn--) form.

    A non-ASCII local part (zoë@...) needs the server's SMTPUTF8 extension and the message in UTF-8
    headers; that is refused as a bad recipient instead of failing the same way on every retry.
    """
    if "\n" in address or "\r" in address:
        raise PermanentError("customer email contains a line break", reason="bad_recipient")
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not local.isascii() or not at:
        raise PermanentError(
            "customer email has a non-ASCII local part, which needs SMTPUTF8", reason="bad_recipient"
        )
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise PermanentError("customer email has an invalid domain", reason="bad_recipient") from exc


def _one_line(value: str | None) -> str:
    """Text from the payload goes into headers: no line breaks (header injection), no runs of spaces."""
    return " ".join((value or "").split())


# Quoted-printable keeps a non-ASCII body readable (base64, the utf-8 default, does not).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
