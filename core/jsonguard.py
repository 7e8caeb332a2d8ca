"""Looking at untrusted JSON bytes safely: a nesting bound checked before any parse, whitespace removal
that changes nothing else, and a parse that refuses duplicate keys.

Python's json module recurses once per level of nesting, so `[` x 100,000 raises RecursionError (an
unhandled 500 in a view, a crashed task in a worker). Every parse of a body we did not write goes through
`loads` here, after a byte scan that is cheap enough to run on every request.
"""

from __future__ import annotations

import json
from typing import Any

# Real Voucherify payloads nest at most 9 levels deep, envelope included (the example corpus' deepest:
# voucher.loyalty_card.pending_points.activated); 64 leaves room for any Payload-designer shape and stays
# far below the ~1,000 levels at which Python's parser and Marshmallow's nested schemas run out of stack.
MAX_DEPTH = 64

_WHITESPACE = b" \t\r\n"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Escapes are masked with bytes that cannot occur raw in JSON (control characters), so that every `"` left
# is a string's start or end; the masks are undone with one translate. Everything here is a C-level bytes
# operation: a pass over a 1 MiB body costs milliseconds, where a regex substitution cost 80-130 ms.
_UNMASK = bytes(range(256)).replace(b"\x01", b"\\").replace(b"\x02", b'"')


def _split_strings(body: bytes) -> list[bytes] | None:
    """`body` split at the quotes of its string literals: outside, inside, outside, ... (escapes masked).

    None when the body holds the bytes used as masks, which valid JSON never does raw.
    """
    if b"\x00" in body or b"\x01" in body or b"\x02" in body:
        return None
    if b"\\" in body:
        body = body.replace(b"\\\\", b"\x01\x01").replace(b'\\"', b"\x01\x02")
    return body.split(b'"')


NOT_PARSED: Any = object()  # "no parse at hand" where None would be a parse (of `null`)


class DuplicateKeyError(ValueError):
    """An object names the same key twice: parsers disagree on which one wins, so we take neither."""


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when `body` nests arrays/objects deeper than `limit` (a byte scan, no parse).

    Brackets inside string literals do not count. A body with more than `limit` brackets in all is the only
    kind that needs the per-bracket walk, and that walk stops as soon as the bound is passed.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    parts = _split_strings(body)
    outside = b"".join(parts[::2]) if parts is not None else body
    structure = outside.translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in structure:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def strip_whitespace(body: bytes) -> bytes:
    """`body` without the whitespace outside string literals: what Voucherify's docs sign (their Java
    example does exactly this), and unlike a parse and re-serialisation it re-spells nothing else."""
    parts = _split_strings(body)
    if parts is None:
        return body  # not JSON: nothing to strip
    outside = b"\x00".join(parts[::2])
    stripped = outside.translate(None, _WHITESPACE)
    if len(stripped) == len(outside):
        return body  # already compact: skip rebuilding it
    parts[::2] = stripped.split(b"\x00")
    return b'"'.join(parts).translate(_UNMASK)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return out


def loads(body: bytes, *, unique_keys: bool = False) -> Any:
    """Parse untrusted JSON bytes; ValueError (never RecursionError) when it is not usable JSON.

    Raises TooDeepError past MAX_DEPTH and, with `unique_keys`, DuplicateKeyError.
    """
    if too_deep(body):
        raise TooDeepError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return json.loads(body, object_pairs_hook=_no_duplicates if unique_keys else None)


class TooDeepError(ValueError):
    """The body nests deeper than MAX_DEPTH: refused before parsing."""
