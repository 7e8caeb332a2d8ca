"""Console logins: a random session id in an HttpOnly cookie, its CSRF token and idle clock in the store.

Sessions live in the store, not in a signed cookie, so that logout ends one for good, every gunicorn process
sees the same sessions, and no extra secret key has to be configured. A session remembers a digest of the
ADMIN_TOKEN it was opened with: changing the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time

from flask import Request
from werkzeug.wrappers import Response

from core.store import EventStore

COOKIE = "vw_console"
LOGIN_COOKIE = "vw_console_login"  # the login form's own CSRF value (double submit: no session yet)
# Wrong tokens: this many per client per window, each answered after a pause; then 429 until it ends.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
WRONG_TOKEN_PAUSE_S = 1.0

log = logging.getLogger("ingest.console")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def open_session(store: EventStore, admin_token: str, idle_s: int) -> tuple[str, str]:
    """A new session: (session id for the cookie, its CSRF token)."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    value = json.dumps({"csrf": csrf, "token": _digest(admin_token), "at": time.time()})
    store.r.set(store.key("console", f"session:{sid}"), value, ex=idle_s)
    return sid, csrf


def session_csrf(store: EventStore, request: Request, admin_token: str, idle_s: int) -> str | None:
    """The CSRF token of the request's live session (its idle clock restarted), or None when logged out."""
    sid = request.cookies.get(COOKIE, "")
    if not sid or len(sid) > 100:
        return None
    key = store.key("console", f"session:{sid}")
    pipe = store.r.pipeline(transaction=False)
    pipe.get(key)
    pipe.expire(key, idle_s)
    raw, _ = pipe.execute()
    if raw is None:
        return None
    data = json.loads(raw)
    if not hmac.compare_digest(data.get("token", ""), _digest(admin_token)):
        store.r.delete(key)
        return None
    csrf: str = data["csrf"]
    return csrf


def close_session(store: EventStore, request: Request) -> None:
    """End the request's session (logout)."""
    sid = request.cookies.get(COOKIE, "")
    if sid and len(sid) <= 100:
        store.r.delete(store.key("console", f"session:{sid}"))


def set_cookie(resp: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, and Secure when the request came over HTTPS (see TRUSTED_PROXIES)."""
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )


def blocked_for(store: EventStore, client: str) -> int:
    """Seconds until `client` may try a token again (0: now)."""
    key = store.key("console", f"fail:{client}")
    pipe = store.r.pipeline(transaction=False)
    pipe.get(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    return max(int(ttl), 1) if count is not None and int(count) >= MAX_FAILURES else 0


def wrong_token(store: EventStore, client: str) -> int:
    """Count and log a wrong token from `client`, then pause; how many it has sent in the window."""
    key = store.key("console", f"fail:{client}")
    pipe = store.r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, FAILURE_WINDOW_S, nx=True)
    count = int(pipe.execute()[0])
    log.warning(
        "console: wrong admin token",
        extra={"client": client, "failures": count, "reason": "console_wrong_token"},
    )
    # Answered slowly, and at most MAX_FAILURES per window: a few guesses per quarter hour per client
    # against a token of 128 bits or more.
    time.sleep(WRONG_TOKEN_PAUSE_S)
    return count


def token_matches(given: str, admin_token: str) -> bool:
    """Constant-time comparison of a submitted token."""
    return hmac.compare_digest(given.encode(), admin_token.encode())
