"""Voucherify webhook signatures.

Voucherify signs each webhook with a lowercase hex HMAC-SHA256 of the JSON body, keyed with the project's
webhook "Secret key", in the header `x-voucherify-signature`: no prefix, no timestamp.
https://docs.voucherify.io/api-reference/introduction-to-webhooks ("Authentication").

The docs hash the body *serialised without insignificant whitespace*; whether the bytes on the wire are that
compact form is undocumented, so we check the raw bytes first and, failing that, the compact re-serialisation
(json.loads keeps key order, so it equals JavaScript's JSON.stringify for ordinary payloads).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

HEADER = "x-voucherify-signature"


def sign(secret: str, body: bytes) -> str:
    """The signature Voucherify would send for `body` under `secret`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def compact(body: bytes) -> bytes | None:
    """The whitespace-free JSON form of `body`, or None when it is not JSON or already compact."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    out = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode()
    return None if out == body else out


def verify(body: bytes, signature: str | None, secrets: Sequence[str]) -> int | None:
    """Index of the secret whose signature matches, or None. Constant-time per comparison."""
    if not signature or not secrets:
        return None
    given = signature.strip().lower().encode()
    if len(given) != 64:
        return None
    for i, secret in enumerate(secrets):
        if hmac.compare_digest(sign(secret, body).encode(), given):
            return i
    alt = compact(body)
    if alt is not None:
        for i, secret in enumerate(secrets):
            if hmac.compare_digest(sign(secret, alt).encode(), given):
                return i
    return None
