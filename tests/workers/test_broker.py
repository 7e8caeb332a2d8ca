"""The Redis broker transport the workers use: kombu's, closing cleanly when Redis died mid-BRPOP, with one
redis-py client per channel and acks written a loop turn at a time."""

import pytest
import redis
from kombu import Connection, Queue
from kombu.asynchronous import Hub

from cli import embedded
from core.settings import Settings
from tests.support import free_port
from workers import broker
from workers.app import create_celery


@pytest.fixture
def doomed_server(tmp_path):
    server = embedded.start(tmp_path / "valkey", port=free_port())
    try:
        yield server
    finally:
        server.terminate()


def channel_waiting_in_brpop(url, transport):
    conn = Connection(url, transport=transport)
    channel = conn.channel()
    Queue("q", channel=channel).declare()
    channel.basic_consume("q", False, lambda message: None, "tag")
    conn.transport.cycle._register_BRPOP(channel)  # what the worker's event loop does while idle
    assert channel._in_poll
    return conn, channel


class TestBrokerRestart:
    def test_channel_closes_after_redis_died_mid_brpop(self, doomed_server):
        """Regression: closing a channel whose BRPOP was in flight when Redis died raised a connection
        error before the channel was marked closed; Celery's consumer then closed it again through a
        connection that had dropped its transport's client, hit AttributeError ('NoneType' object has
        no attribute 'hostname') and the worker exited instead of reconnecting."""
        conn, channel = channel_waiting_in_brpop(doomed_server.connection_url + "/0", broker.TRANSPORT)
        doomed_server.terminate()
        channel.close()
        assert channel.closed
        conn.release()

    def test_kombus_own_channel_still_needs_it(self, doomed_server):
        """kombu's channel raises there (celery/kombu 5.7.0). When this fails, kombu fixed it upstream
        and workers/broker.py can go."""
        _, channel = channel_waiting_in_brpop(doomed_server.connection_url + "/0", "redis")
        doomed_server.terminate()
        with pytest.raises(redis.ConnectionError):
            channel.close()
        assert not channel.closed

    @pytest.mark.parametrize(
        ("url", "transport"),
        [
            ("redis://127.0.0.1:6390/0", broker.TRANSPORT),
            ("rediss://127.0.0.1:6390/0", broker.TRANSPORT),
            ("amqp://guest:guest@127.0.0.1:5672//", None),
        ],
    )
    def test_worker_app_uses_it_for_redis_brokers_only(self, tmp_path, url, transport):
        app = create_celery(Settings(redis_url="redis://127.0.0.1:6390/0", broker_url=url, data_dir=tmp_path))
        assert app.conf.broker_transport == transport


class TestConsumerCost:
    """The transport's two savings per message (workers/broker.py), on a real Valkey."""

    @pytest.fixture
    def got(self, redis_url):
        conn = Connection(redis_url, transport=broker.TRANSPORT)
        channel = conn.channel()
        queue = Queue("q", channel=channel)
        queue.declare()
        for i in range(3):
            channel.basic_publish(channel.prepare_message(f"m{i}"), "", "q")
        messages = [channel.basic_get("q", no_ack=False) for _ in range(3)]
        try:
            yield conn, channel, messages, redis.Redis.from_url(redis_url)
        finally:
            conn.release()

    def test_acks_in_one_turn_of_the_loop_are_written_together(self, got):
        """Acked at once (the prefetch slots are free), removed from Redis's unacked set in one round
        trip when the loop turns."""
        conn, channel, messages, r = got
        assert r.hlen("unacked") == 3
        hub = Hub()
        conn.transport.register_with_event_loop(conn.connection, hub)
        assert conn.transport.flush_acks in hub.on_tick
        channel.qos.prefetch_count = 3
        assert not channel.qos.can_consume()
        for message in messages:
            message.ack()
        assert channel.qos.can_consume()  # the prefetch slots are free at once
        assert r.hlen("unacked") == 3
        writes = []
        real = channel.qos.pipe_or_acquire

        def counted(*args, **kwargs):
            writes.append(1)
            return real(*args, **kwargs)

        channel.qos.pipe_or_acquire = counted
        for tick in hub.on_tick:  # the loop's turn ends
            if tick == conn.transport.flush_acks:
                tick()
        assert (r.hlen("unacked"), r.zcard("unacked_index"), len(writes)) == (0, 0, 1)

    def test_acks_not_written_yet_are_not_restored_at_close(self, got):
        """A channel closing (a warm shutdown) writes the pending acks before restoring what is unacked."""
        conn, channel, messages, r = got
        conn.transport.register_with_event_loop(conn.connection, Hub())
        messages[0].ack()
        channel.close()
        assert r.hlen("unacked") == 0
        assert r.llen("q") == 2  # the two never acked went back to the queue

    def test_without_an_event_loop_each_ack_is_written_at_once(self, got):
        _, _, messages, r = got
        messages[0].ack()
        assert r.hlen("unacked") == 2

    def test_one_client_per_channel(self, got):
        """kombu built a redis-py client per command (~100 us of CPU each); the channel keeps one."""
        _, channel, _, _ = got
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
