"""How archived (and settled hot) bodies are compressed: zstd, level 3.

Measured on the 76 corpus payloads in their envelopes (2.56 KB average; docs/benchmarks.md, "Archive"):
zstd-3 keeps 40.0% of the bytes at ~16 µs per body, zlib-6 37.3% at ~54 µs (decompression 5 vs 12 µs).
The archiver's profile (3,000 events) had zlib at 62% of its CPU, ~110 µs per event for the body and
the document; the archiver runs on the workers' cores, so that CPU is taken from the pipeline. zstd costs
a third of it for ~7% more compressed bytes. (A zstd dictionary trained on payloads would keep ~19%, at
the price of shipping and versioning it.)

The codec's name is stored with every row (and on a compacted hot event), so rows written with another
codec stay readable: zlib (the first version's) is still decoded.
"""

from __future__ import annotations

import threading
import zlib

import zstandard

DEFAULT = "zstd"
LEVEL = 3


class _Zstd(threading.local):
    """One compressor and one decompressor per thread: making one costs ~20 µs, ten times a 2 KB body's
    compression, and python-zstandard's objects must not be used by two threads at once (the intake's
    admin API and console read the archive from several threads)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _Zstd()


def compress(data: bytes, name: str = DEFAULT) -> bytes:
    """`data` compressed with codec `name`."""
    if name == "zstd":
        return _zstd.compressor.compress(data)
    if name == "zlib":
        return zlib.compress(data, 6)
    if name == "none":
        return data
    raise ValueError(f"unknown codec {name!r}")


def decompress(data: bytes, name: str) -> bytes:
    """The bytes `compress(…, name)` was given."""
    if name == "zstd":
        return _zstd.decompressor.decompress(data)
    if name == "zlib":
        return zlib.decompress(data)
    if name == "none":
        return bytes(data)
    raise ValueError(f"unknown codec {name!r}")
