"""forward:<destination>: POST the event, exactly as Voucherify sent it, to a configured HTTP endpoint.

Signed with our own HMAC so the receiver can check it came from us and is fresh:

    X-Voucherify-Ingest-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

(the scheme Stripe made familiar: the timestamp is signed too, so a captured request cannot be replayed
later). `Idempotency-Key` is the Voucherify event id, the same across retries and sources.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import urllib3

from core.settings import ForwardDestination
from core.states import ActionStatus
from workers.actions import ActionContext, ActionResult, once
from workers.errors import PermanentError, TransientError

SIGNATURE_HEADER = "X-Voucherify-Ingest-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # unix seconds, ASCII digits only
RESERVATION_S = 60  # how long a forward in progress (or a crashed forwarder) keeps others off it


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of our signature header for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str | None, body: bytes, *, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """What a receiver does: True if `header` signs `body` with `secret` within `tolerance` seconds of now.

    Any malformed header is False, never an exception: receivers call this on input from anyone.
    """
    if not header or not isinstance(header, str):
        return False
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v.strip() for k, _, v in parts if k.strip() == "t"]
    macs = [v.strip() for k, _, v in parts if k.strip() == "v1"]
    # ASCII digits only, and few of them: str.isdigit() also takes "²" (int() does not), and a long enough
    # number exceeds int()'s digit limit or a float's range.
    if len(stamps) != 1 or not macs or not _TIMESTAMP.fullmatch(stamps[0]):
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2].encode()
    # Every v1 is compared (a sender may list several during a secret rotation), in constant time; as bytes,
    # because compare_digest refuses str with non-ASCII characters.
    return any(hmac.compare_digest(expected, mac.encode("utf-8", "surrogatepass")) for mac in macs)


class Forwarder:
    """The forward action for one destination; keeps its connections alive between events."""

    def __init__(
        self, destination: ForwardDestination, *, timeout: float = 10.0, remember_s: int = 400 * 86400
    ) -> None:
        self.dest = destination
        # "Already forwarded" outlives the dedup window: a send-out re-sent from Voucherify's audit log days
        # later is a new delivery of the same event (NOTIFY_REMEMBER_SECONDS).
        self.remember_s = remember_s
        self.http = urllib3.PoolManager(
            num_pools=4,
            maxsize=4,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        )

    def __call__(self, ctx: ActionContext) -> ActionResult:
        event_id = _idempotency_key(ctx)
        done = once(
            ctx,
            f"forward:{self.dest.name}:{event_id}",
            lambda: self._post(ctx),
            what=f"forwarding event {event_id} to {self.dest.name}",
            hold_s=RESERVATION_S,
            remember_s=self.remember_s,
        )
        if not done:
            return ActionResult(
                ActionStatus.SKIPPED, f"event {event_id} already forwarded to {self.dest.name}"
            )
        return ActionResult(ActionStatus.SUCCEEDED, f"forwarded to {self.dest.name}")

    def _post(self, ctx: ActionContext) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "voucherify-ingest",
            "Idempotency-Key": _idempotency_key(ctx),
            "X-Voucherify-Event-Type": ctx.event_type,
            "X-Voucherify-Ingest-Event-Id": ctx.event_id,
        }
        if self.dest.secret:
            headers[SIGNATURE_HEADER] = sign(self.dest.secret, ctx.raw, int(time.time()))
        try:
            resp = self.http.request("POST", self.dest.url, body=ctx.raw, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(
                f"{self.dest.name}: {type(exc).__name__}", reason="forward_unreachable"
            ) from exc
        status = resp.status
        if 200 <= status < 300:
            return
        if status in (408, 425, 429) or status >= 500:
            raise TransientError(
                f"{self.dest.name} answered {status}",
                reason=f"forward_http_{status}",
                retry_after=_retry_after(resp.headers.get("Retry-After")),
            )
        raise PermanentError(f"{self.dest.name} answered {status}", reason=f"forward_http_{status}")


def _idempotency_key(ctx: ActionContext) -> str:
    """Voucherify's event id (the same across retries and sources); ours for a Payload-designer body."""
    return ctx.parsed.envelope.event.id if ctx.parsed is not None else ctx.event_id


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
