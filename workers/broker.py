"""The Redis broker transport the workers consume with: kombu's, with one fix for a broker restart.

When the Redis server goes away while the worker's BRPOP is in flight and the connection error surfaces
elsewhere first (the remote-control pub/sub socket, a timer), Celery's consumer closes the connection twice:
`collect()` then `close()`. kombu's redis `Channel.close()` first reads the pending BRPOP answer; on the dead
socket that raises a connection error, which `collect()` swallows, so the channel is never marked closed
and the kombu `Connection` drops its transport's client. The second `close()` then tries to restore the
unacked messages through a client built from that missing connection info, raises AttributeError
("'NoneType' object has no attribute 'hostname'"), which is not a connection error, and the worker dies with
"Unrecoverable error" instead of reconnecting (celery 5.7.0 / kombu 5.7.0; seen in
tests/faults/test_store_restart.py in about half the runs).

Here the read of the pending BRPOP answer may fail with a connection error without aborting the close: the
answer is lost with the socket either way, and the message it may have carried is still in Redis (acks late:
it is restored from the unacked set, and the outbox re-sends the event regardless).
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty


class Channel(kombu_redis.Channel):
    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except (Empty, *self.connection_errors):
                pass  # _brpop_read has cleared _in_poll: the rest of close() runs
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
