"""The archive's codecs: zstd for what is written now, zlib still read (the first rows), nothing else."""

import threading

import pytest

from core.archive import codec

BODY = b'{"event": {"type": "voucher.updated"}, "data": {"code": "ABC-123"}}' * 20


@pytest.mark.parametrize("name", ["zstd", "zlib", "none"])
def test_round_trip(name):
    assert codec.decompress(codec.compress(BODY, name), name) == BODY


def test_writes_zstd_and_compresses():
    assert codec.DEFAULT == "zstd"
    assert len(codec.compress(BODY)) < len(BODY) / 5


def test_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="unknown codec"):
        codec.decompress(b"x", "lz4")


def test_threads_each_get_their_own_objects():
    """python-zstandard's objects are not for concurrent use: 8 threads at once still round-trip."""
    bodies = [BODY + bytes([i]) * 1000 for i in range(8)]
    bad: list[int] = []

    def work(i: int) -> None:
        for _ in range(200):
            if codec.decompress(codec.compress(bodies[i]), "zstd") != bodies[i]:
                bad.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []
