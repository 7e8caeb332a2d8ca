"""Voucherify webhook signatures.

Voucherify signs each webhook with a lowercase hex HMAC-SHA256 of the JSON body, keyed with the project's
webhook "Secret key", in the header `x-voucherify-signature`: no prefix, no timestamp.
https://docs.voucherify.io/api-reference/introduction-to-webhooks ("Authentication").

The docs hash the body *serialised without insignificant whitespace*; whether the bytes on the wire are that
compact form is undocumented, so we check the raw bytes first and, failing that, the raw bytes with the
whitespace outside string literals removed (what the docs' Java example does). Nothing else is re-spelled:
a parse and re-serialisation would let one captured signature authenticate other spellings of the body
(`\\u` escapes, `1.50` for `1.5`, a duplicate key that loses on parse, UTF-16), each a new event to us.
When that fallback matches, the compact bytes, the ones actually signed, are what we keep.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core import jsonguard

HEADER = "x-voucherify-signature"


def sign(secret: str, body: bytes) -> str:
    """The signature Voucherify would send for `body` under `secret`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What verification found: the matching secret's index (None when refused), why it was refused, and
    the bytes that were signed with, when the fallback parsed them, their parse (for the dedup key)."""

    secret: int | None
    body: bytes
    reason: str = ""
    doc: Any = jsonguard.NOT_PARSED


def compact(body: bytes) -> bytes | None:
    """`body` without whitespace outside strings, or None when it is already compact (nothing to retry)."""
    out = jsonguard.strip_whitespace(body)
    return None if out == body else out


def _match(body: bytes, given: bytes, secrets: Sequence[str]) -> int | None:
    for i, secret in enumerate(secrets):
        if hmac.compare_digest(sign(secret, body).encode(), given):
            return i
    return None


def authenticate(
    body: bytes, signature: str | None, secrets: Sequence[str], *, fallback_max: int | None = None
) -> Verdict:
    """Check `signature` over `body`, then (for bodies up to `fallback_max` bytes, if given) over its compact
    form; constant-time per comparison.

    A forged signature costs an HMAC per secret and at most one pass of bytes operations, never a parse.
    Only a matching compact form is parsed, once, to refuse duplicate keys (parsers disagree on which wins);
    too deep or not JSON, it is still what was signed, and is kept for the worker to quarantine.
    """
    if not signature:
        return Verdict(None, body, "missing_signature")
    given = signature.strip().lower().encode()
    if len(given) != 64 or not secrets:
        return Verdict(None, body, "bad_signature")
    matched = _match(body, given, secrets)
    if matched is not None:
        return Verdict(matched, body)
    alt = compact(body) if fallback_max is None or len(body) <= fallback_max else None
    if alt is None or (matched := _match(alt, given, secrets)) is None:
        return Verdict(None, body, "bad_signature")
    try:
        doc = jsonguard.loads(alt, unique_keys=True)
    except jsonguard.DuplicateKeyError:
        return Verdict(None, body, "duplicate_keys")
    except (ValueError, UnicodeDecodeError):
        doc = jsonguard.NOT_PARSED
    return Verdict(matched, alt, doc=doc)


def verify(body: bytes, signature: str | None, secrets: Sequence[str]) -> int | None:
    """Index of the secret whose signature matches `body` (or its compact form), or None."""
    return authenticate(body, signature, secrets).secret
