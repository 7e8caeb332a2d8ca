"""notify_customer: email a customer the voucher code(s) they were just given.

Runs on `publication.succeeded` and `voucher.published`. One email per publication id, however many
times, and through however many event types, the publication arrives. Written on the public handler API
(workers/handlers.py: Event, Skip, event.once), so a user's handler can do anything this one does.
"""

from __future__ import annotations

import binascii
import os
import time
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32
from email.utils import formataddr, formatdate
from typing import Any, cast

from schemas.campaign import Campaign
from schemas.customer import Customer
from workers import dispatch
from workers.actions.templates import EmailTemplates, templates_for
from workers.dispatch import NOTIFY_CUSTOMER
from workers.errors import PermanentError
from workers.handlers import Event, HandlerAction, HandlerSpec, Skip
from workers.mail import Mailer

# The types the dispatch table routes to this action (both announce that a customer was given codes).
PATTERNS = tuple(t for t, names in dispatch.ROUTES.items() if NOTIFY_CUSTOMER in names)

# How much longer an email's reservation lasts than its send may: the reservation is taken before the send
# starts (one store round trip) and "emailed" is recorded after it ends (another), both inside this margin.
RESERVATION_MARGIN_S = 10
# A subject word longer than this goes out as encoded words, which compat32 can split; a bare word it cannot.
_LONGEST_WORD = 60


def reservation_for(send_deadline_s: float) -> int:
    """The reservation (whole seconds) that outlasts a send given `send_deadline_s` to finish."""
    return int(-(-send_deadline_s // 1)) + RESERVATION_MARGIN_S


class NotifyCustomer(HandlerAction):
    """The notify_customer action: a handler written on the public API (workers.handlers), like yours."""

    def __init__(
        self,
        mailer: Mailer,
        *,
        sender: str,
        reservation_ttl: int,
        remember_s: int,
        templates: EmailTemplates | None = None,
    ) -> None:
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
        # Compiled once per process (the worker's start check did it): an email costs only their rendering.
        self.templates = templates or templates_for(None)

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
        message = self.compose(
            email, getattr(customer, "name", None), codes, campaign, pub_id, data=data, event=event
        )
        # The deadline is taken once the reservation is ours: it began before this instant.
        sent = event.once(
            pub_id, lambda: self.mailer.send(message, deadline=time.monotonic() + self.send_deadline_s)
        )
        if not sent:
            return Skip(f"already emailed for publication {pub_id}")
        return f"emailed {len(codes)} code(s) for publication {pub_id}"

    def compose(
        self,
        to: str,
        name: str | None,
        codes: list[str],
        campaign: str | None,
        pub_id: str,
        *,
        data: Any = None,
        event: Event | None = None,
    ) -> Message:
        """The email from the templates, its Message-ID derived from the publication (stable across retries).

        The templates see `data`'s typed customer, vouchers, campaign and publication (without `data`, a
        customer and campaign made of `name` and `campaign`), the `codes` and the `event`. Built with the
        classic (compat32) email classes: the default policy's header registry made composing one email cost
        more than validating and storing its event.
        """
        to = _ascii_address(to)
        publication = getattr(data, "publication", None)
        customer = getattr(data, "customer", None) or getattr(publication, "customer", None)
        camp = _campaign_of(data, campaign)
        context = {
            "customer": customer or Customer(name=name, email=to),
            "vouchers": tuple(getattr(data, "vouchers", ())),
            "campaign": camp,
            "publication": publication,
            "codes": codes,
            "event": event,
        }
        words = self.templates.render(
            context, campaign_id=getattr(camp, "id", None), campaign_name=getattr(camp, "name", None)
        )
        text = words.text if words.text.endswith("\n") else words.text + "\n"
        msg = _part(text, "plain") if words.html is None else _alternative(text, words.html)
        msg["From"] = self.sender
        msg["To"] = formataddr((_one_line(name), to), charset="utf-8")
        # compat32 takes a Header for a header value (the stub types values as str only). A Header folds
        # non-ASCII text, and a word too long for one line, into encoded words of a legal length.
        plain = words.subject.isascii() and max(map(len, words.subject.split())) <= _LONGEST_WORD
        msg["Subject"] = (
            words.subject if plain else cast(str, Header(words.subject, "utf-8", header_name="Subject"))
        )
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


def _campaign_of(data: Any, name: str | None) -> Campaign | None:
    """The event's campaign; else the one its first voucher names (voucher.published may carry no other)."""
    found = getattr(data, "campaign", None)
    if found is not None:
        return cast(Campaign, found)
    for voucher in getattr(data, "vouchers", ()):
        if voucher.campaign or voucher.campaign_id:
            return Campaign(id=voucher.campaign_id, name=voucher.campaign)
    return Campaign(name=name) if name else None


def _part(body: str, subtype: str, *, top: bool = True) -> Message:
    """A text/<subtype> part with MIMEText's headers, built by hand (MIMEText's header machinery and its
    pure-Python quoted-printable cost more than rendering the templates; test_notify_policy.py checks it).

    7bit as it is when the body is ASCII in lines SMTP takes (998 octets), else quoted-printable UTF-8
    (readable, unlike base64, the utf-8 default) through binascii's C encoder.
    """
    part = Message(policy=POLICY)
    if body.isascii() and max(map(len, body.splitlines()), default=0) <= 998:
        part["Content-Type"] = f'text/{subtype}; charset="us-ascii"'
        cte = "7bit"
    else:
        part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
        cte = "quoted-printable"
        body = binascii.b2a_qp(body.encode("utf-8")).decode("ascii")
    if top:
        part["MIME-Version"] = "1.0"  # once, on the message
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(body)
    return part


def _alternative(text: str, html: str) -> Message:
    """multipart/alternative: the text first, the HTML last (the last part is the one clients prefer)."""
    # Our own boundary, so the generator need not search the text with a fresh regex for its own.
    # Quoted-printable never writes "=_", and a 7bit part is checked for it.
    boundary = f"=_{os.urandom(12).hex()}"
    taken = boundary in text or boundary in html  # then the generator picks one that is in neither
    msg = MIMEMultipart("alternative", boundary=None if taken else boundary, policy=POLICY)
    msg.attach(_part(text, "plain", top=False))
    msg.attach(_part(html, "html", top=False))
    return msg


def _one_line(value: str | None) -> str:
    """Text from the payload goes into headers: no line breaks (header injection), no runs of spaces."""
    return " ".join((value or "").split())
