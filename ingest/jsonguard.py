"""Looking at untrusted JSON bytes safely: a nesting bound checked before any parse, whitespace removal
that changes nothing else, and a parse that refuses duplicate keys.

Python's json module recurses once per level of nesting, so `[` x 100,000 raises RecursionError (an
unhandled 500 in a view, a crashed task in a worker). Every parse of a body we did not write goes through
`loads` here, after a byte scan that is cheap enough to run on every request.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Real Voucherify payloads nest at most 9 levels deep, envelope included (the example corpus' deepest:
# voucher.loyalty_card.pending_points.activated); 64 leaves room for any Payload-designer shape and stays
# far below the ~1,000 levels at which Python's parser and Marshmallow's nested schemas run out of stack.
MAX_DEPTH = 64

# A JSON string literal (escapes included): brackets and whitespace inside one are data, not structure.
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_STRINGS = re.compile(_STRING, re.DOTALL)
_STRING_OR_SPACE = re.compile(rb"(" + _STRING + rb")|[ \t\r\n]+", re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


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
    structure = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
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
    return _STRING_OR_SPACE.sub(rb"\1", body)


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
