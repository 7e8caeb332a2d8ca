"""A worker's first look at the SMTP server: what would keep every email from going out, said at start."""

from __future__ import annotations

import logging
import threading

from core import mailstatus
from core.settings import Settings
from core.store import EventStore
from workers.errors import PermanentError, TransientError
from workers.mail import SmtpMailer

log = logging.getLogger("workers.mail")


def check_mail(settings: Settings, store: EventStore | None = None) -> str | None:
    """Connect as a send would (TLS, AUTH), log the verdict and note it for /readyz; None without SMTP_URL."""
    if not settings.smtp_url:
        return None
    mailer = SmtpMailer.from_settings(settings)
    try:
        mailer.check()
        status = "ok"
        log.info("SMTP server checked", extra={"host": mailer.host, "port": mailer.port, "reason": status})
    except PermanentError as exc:
        # Every email would fail the same way: say so loudly now, not once per customer later.
        status = exc.reason
        log.error("SMTP server unusable: %s", exc, extra={"host": mailer.host, "reason": status})
    except TransientError as exc:
        status = exc.reason
        log.warning("SMTP server not reachable at start: %s", exc, extra={"reason": status})
    finally:
        mailer.close()
    try:
        mailstatus.record(store or EventStore.from_settings(settings), status)
    except Exception:  # the check is advice: a store that is away must not stop the worker
        log.warning("could not record the SMTP check for /readyz", exc_info=True)
    return status


def check_mail_in_background(settings: Settings) -> None:
    """check_mail without holding up the worker's start (a slow server takes up to SMTP_DEADLINE_SECONDS)."""
    threading.Thread(target=check_mail, args=(settings,), name="smtp-check", daemon=True).start()
