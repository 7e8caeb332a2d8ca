"""The Redis broker transport the workers use: kombu's, closing cleanly when Redis died mid-BRPOP."""

import pytest
import redis
from kombu import Connection, Queue

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
