"""How archived (and settled hot) bodies are compressed: zlib, level 6.

Measured on the 76 corpus payloads in their envelopes (2.56 KB average; docs/benchmarks.md, "Archive"):
zlib-6 keeps 37.3% of the bytes at ~54 µs per body, zstd-3 (the `zstandard` package) 40.0% at ~16 µs.
zlib packs tighter at these sizes, needs no new dependency, and its cost is far below an archive write's.
(A zstd dictionary trained on payloads would keep ~19%, at the price of shipping and versioning it.)
The codec's name is stored with every row, so another one can be added without rewriting old rows.
"""

from __future__ import annotations

import zlib

DEFAULT = "zlib"
LEVEL = 6


def compress(data: bytes, name: str = DEFAULT) -> bytes:
    """`data` compressed with codec `name`."""
    if name == "zlib":
        return zlib.compress(data, LEVEL)
    if name == "none":
        return data
    raise ValueError(f"unknown codec {name!r}")


def decompress(data: bytes, name: str) -> bytes:
    """The bytes `compress(…, name)` was given."""
    if name == "zlib":
        return zlib.decompress(data)
    if name == "none":
        return bytes(data)
    raise ValueError(f"unknown codec {name!r}")
