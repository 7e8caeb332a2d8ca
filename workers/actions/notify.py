"""notify_customer: email a customer the voucher code(s) they were just given.

Runs on `publication.succeeded` and `voucher.published`. One email per publication id, however many
times, and through however many event types, the publication arrives. Written on the public handler API
(workers/handlers.py: Event, Skip, event.once), so a user's handler can do anything this one does.
"""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from typing import TYPE_CHECKING, Any, cast

from core.states import ActionStatus
from schemas.campaign import Campaign
from schemas.customer import Customer
from workers import dispatch
from workers.actions import ActionContext, ActionResult
from workers.actions.templates import EmailTemplates, templates_for
from workers.dispatch import NOTIFY_CUSTOMER
from workers.errors import PermanentError, TransientError
from workers.handlers import Event, HandlerAction, HandlerSpec, Skip
from workers.mail import Envelope, Mailer

if TYPE_CHECKING:
    from core.store import EventStore

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


@dataclass(frozen=True)
class Email:
    """One planned email: the publication it is for, the message, and the attempt's detail once sent."""

    pub_id: str
    message: Message
    detail: str
    envelope: Envelope | None = None


def _no_once(key: str, fn: Callable[[], Any]) -> bool:
    raise RuntimeError("plan() composes an email; it never runs a side effect")


def _busy(store: EventStore, key: str, what: str) -> TransientError:
    """What `once` raises for a publication another attempt is emailing (retried when that one lapses)."""
    return TransientError(
        f"{what} is in progress in another worker",
        reason="busy",
        retry_after=store.reserved_for(key),
    )


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
        # MAIL FROM: the bare address of NOTIFY_FROM (which may carry a display name).
        self.envelope_sender = parseaddr(sender)[1] or sender
        # Compiled once per process (the worker's start check did it): an email costs only their rendering.
        self.templates = templates or templates_for(None)

    def handle(self, event: Event) -> str | Skip:
        """Email the customer their code(s), once per publication."""
        email = self.plan(event)
        if isinstance(email, Skip):
            return email
        # The deadline is taken once the reservation is ours: it began before this instant.
        sent = event.once(
            email.pub_id,
            lambda: self.mailer.send(
                email.message, deadline=time.monotonic() + self.send_deadline_s, envelope=email.envelope
            ),
        )
        if not sent:
            return Skip(f"already emailed for publication {email.pub_id}")
        return email.detail

    def plan(self, event: Event) -> Email | Skip:
        """The email an event asks for (composed, not sent), or why there is none."""
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
        envelope = Envelope(self.envelope_sender, (_ascii_address(email),))
        return Email(pub_id, message, f"emailed {len(codes)} code(s) for publication {pub_id}", envelope)

    def run_batch(self, ctxs: Sequence[ActionContext]) -> list[ActionResult | Exception]:
        """The micro-batch hook: results[i] is what `self(ctxs[i])` would give, at a fraction of the cost.

        Per event, `self(ctx)` makes two store round trips of its own (reserve the publication; after the
        send, its `done` mark goes with the event's settle, which a batch then writes at once). Here the
        batch's publications are reserved in one round trip, each email is sent, and its `done` mark is
        written right after its own send, before the next email goes out; the events then settle with the
        rest of the batch, in one round trip. Why that emails no one twice, crash or not:

        - A crash before an email's send leaves its reservation `pending` for `reservation_ttl`; the
          event's retry finds it busy until then, and then sends it. The batch holds every one of its
          reservations from the start, so each send's deadline counts from when they were taken (and a
          reservation is taken again, extended, before a send that would have less than half its time).
        - A crash after the server accepted an email and before its `done` mark: the window every send has
          (tests/faults/test_worker_killed.py), no wider here: one SET, written as the reply is read.
        - A crash after the `done` marks and before the batch settles: the retry finds the publication
          done and ends `skipped` ("already emailed"): nobody gets a second email; the first attempt's
          history is what is lost, not the record of the email.

        A publication that two events of the batch carry (publication.succeeded and voucher.published) is
        emailed for the first; the others run one by one afterwards, as `self(ctx)`, and find it done. If
        the store stops answering, the emails not yet sent are not sent: their events fail and retry.
        """
        results: list[ActionResult | Exception | None] = [None] * len(ctxs)
        planned: dict[str, tuple[int, ActionContext, Email]] = {}
        later: list[int] = []
        for i, ctx in enumerate(ctxs):
            try:
                with ctx.logging():
                    email = self.plan(Event(ctx, _no_once))
            except Exception as exc:
                results[i] = exc
                continue
            if isinstance(email, Skip):
                results[i] = ActionResult(ActionStatus.SKIPPED, email.reason or None)
            elif email.pub_id in planned:
                later.append(i)
            else:
                planned[email.pub_id] = (i, ctx, email)
        if planned:
            self._send_batch(list(planned.values()), ctxs[0].store, results)
        for i in later:
            try:
                results[i] = self(ctxs[i])
            except Exception as exc:
                results[i] = exc
        return [r if r is not None else RuntimeError("no outcome") for r in results]

    def _send_batch(
        self,
        planned: list[tuple[int, ActionContext, Email]],
        store: EventStore,
        results: list[ActionResult | Exception | None],
    ) -> None:
        """Reserve every planned email's publication at once, then send each and mark it done."""
        keys = [f"{self.prefix}:{email.pub_id}" for _, _, email in planned]
        taken = time.monotonic()  # the reservations last reservation_ttl from (after) this instant
        try:
            verdicts = store.reserve_many(
                [(key, ctx.attempt_id) for key, (_, ctx, _) in zip(keys, planned, strict=True)],
                self.reservation_ttl,
            )
        except Exception as exc:
            for i, _, _ in planned:
                results[i] = exc
            return
        broken: Exception | None = None
        for key, verdict, (i, ctx, email) in zip(keys, verdicts, planned, strict=True):
            with ctx.logging():
                if broken is not None:
                    results[i] = broken  # the store is away: no email whose `done` cannot be written
                elif verdict == "done":
                    results[i] = ActionResult(
                        ActionStatus.SKIPPED, f"already emailed for publication {email.pub_id}"
                    )
                elif verdict == "busy":
                    results[i] = _busy(store, key, f"{self.spec.name} for {email.pub_id!r}")
                else:
                    results[i], broken = self._send_reserved(store, key, ctx, email, taken)
        return

    def _send_reserved(
        self, store: EventStore, key: str, ctx: ActionContext, email: Email, taken: float
    ) -> tuple[ActionResult | Exception, Exception | None]:
        """Send one reserved email and mark it done; its outcome, and the store's error if it is away."""
        try:
            if time.monotonic() - taken > self.send_deadline_s / 2:
                # A slow batch: take the reservation again (ours, so extended) for a full deadline.
                taken = time.monotonic()
                verdict = store.reserve(key, ctx.attempt_id, self.reservation_ttl)
                if verdict != "acquired":
                    return _busy(store, key, f"{self.spec.name} for {email.pub_id!r}"), None
            self.mailer.send(email.message, deadline=taken + self.send_deadline_s, envelope=email.envelope)
        except Exception as exc:
            try:
                store.release(key, ctx.attempt_id)
            except Exception as lost:
                return exc, lost  # the reservation lapses by itself
            return exc, None
        try:
            store.complete(key, ctx.attempt_id, self.remember_s, patience=self.reservation_ttl * 0.8)
        except Exception as exc:
            return exc, exc
        return ActionResult(ActionStatus.SUCCEEDED, email.detail), None

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
