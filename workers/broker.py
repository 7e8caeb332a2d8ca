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


Two changes cut the consumer's own cost per message (docs/batches.md), which with micro-batches is most of
what a worker spends:

- kombu builds a new redis-py client for every command it runs outside the BRPOP (about 100 µs of CPU each:
  redis-py copies its table of ~170 reply callbacks into every new client), twice per message: when it
  records the message as unacked, and when it acks it. The channel here keeps one client (its pool is the
  same) for as long as it lives.
- Acks made in one turn of the worker's event loop are written in one round trip at the end of the turn
  (kombu's `on_tick`, before the loop waits again), instead of one round trip each: a batch's messages are
  acked together. The ack itself (the message's prefetch slot) is immediate; only the removal from Redis's
  unacked set waits for the turn to end. If the
  worker dies in between, the message is redelivered after the visibility timeout and its event, already
  settled, is left alone. Without an event loop (gevent, eventlet) acks are written one by one, as kombu does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.transport.virtual import Empty

log = logging.getLogger("workers.broker")


class QoS(kombu_redis.QoS):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acks: list[str] = []

    def ack(self, delivery_tag: str) -> None:
        transport = self.channel.connection
        if getattr(transport, "hub", None) is None:
            super().ack(delivery_tag)
            return
        virtual.QoS.ack(self, delivery_tag)  # the prefetch slot is free now
        self._acks.append(delivery_tag)
        transport.acking.add(self)

    def flush_acks(self) -> None:
        """Remove the acked messages from the unacked set: one round trip."""
        tags, self._acks = self._acks, []
        if not tags:
            return
        try:
            with self.pipe_or_acquire() as pipe:
                pipe.zrem(self.unacked_index_key, *tags).hdel(self.unacked_key, *tags).execute()
        except self.channel.connection_errors as exc:
            # Still unacked in Redis: redelivered after the visibility timeout, to events already settled.
            log.warning(
                "acks not written", extra={"reason": "broker", "error": repr(exc), "count": len(tags)}
            )

    def restore_unacked(self, client: Any = None) -> None:
        self.flush_acks()  # acked messages are not restored
        super().restore_unacked(client)


class Channel(kombu_redis.Channel):
    QoS = QoS
    _sync_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._sync_client is None:
            self._sync_client = self._create_client()
        yield self._sync_client

    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except (Empty, *self.connection_errors):
                pass  # _brpop_read has cleared _in_poll: the rest of close() runs
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel
    hub: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acking: set[QoS] = set()  # channels with acks not written yet

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.hub = loop
        # Run at every turn of the loop, after its callbacks (the acks among them) and before it waits.
        loop.on_tick.add(self.flush_acks)
        super().register_with_event_loop(connection, loop)

    def flush_acks(self) -> None:
        while self.acking:
            self.acking.pop().flush_acks()


TRANSPORT = f"{__name__}:Transport"
