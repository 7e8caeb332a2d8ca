"""RabbitMQ as the broker (Redis stays the store): durable quorum queues, publisher confirms, same service.

Runs when RabbitMQ answers on localhost:5672 with guest/guest; skipped, saying so, otherwise. It uses the
default vhost and the service's own queue names, so it refuses to run (skips) while anything consumes
them, and deletes them before and after: a later run, or a service started afterwards, declares them anew.
"""

from __future__ import annotations

import json
import socket

import pytest
from amqp.exceptions import NotFound
from kombu import Connection, Queue
from kombu.exceptions import OperationalError

from core.queue import LIVE_QUEUE, REPLAY_QUEUE
from ingest import create_app
from tests.faults.helpers import Intake, email_of, fault_settings, publication, wait_settled

pytestmark = pytest.mark.integration

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _rabbitmq_answers() -> str | None:
    """None if RabbitMQ is usable here, else why not."""
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            pass
    except OSError as exc:
        return f"no RabbitMQ on localhost:5672 ({exc.strerror or exc})"
    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except (OperationalError, OSError) as exc:
        return f"RabbitMQ on localhost:5672 refused guest/guest ({exc})"
    return None


@pytest.fixture(scope="module")
def rabbitmq():
    reason = _rabbitmq_answers()
    if reason:
        pytest.skip(reason)
    _clear_queues()
    try:
        yield AMQP_URL
    finally:
        _clear_queues()


def _clear_queues() -> None:
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for name in (LIVE_QUEUE, REPLAY_QUEUE):
            try:
                _, _, consumers = channel.queue_declare(name, passive=True)
            except NotFound:  # not there: nothing to clear (and the broker closed the channel)
                channel = conn.channel()
                continue
            if consumers:
                pytest.skip(f"queue {name!r} on localhost:5672 has consumers: a service is running there")
            channel.queue_delete(name)


@pytest.mark.timeout(90)
def test_service_runs_on_rabbitmq(rabbitmq, redis_url, tmp_path, workers, smtp_sink, store):
    """The intake publishes first (declaring the quorum queues), then a worker starts on the same
    queues: no PRECONDITION_FAILED, every publication processed, one email each; the reconciler's
    beat messages and a replay go through RabbitMQ too."""
    settings = fault_settings(redis_url, tmp_path, broker_url=rabbitmq, admin_token="t" * 24)
    intake = Intake(settings)
    ready = intake.client.get("/readyz")
    assert (ready.status_code, ready.json["broker"]) == (200, True)

    docs = [publication() for _ in range(20)]
    ids = [intake.post(doc)["id"] for doc in docs]
    worker = workers(redis_url, CELERY_BROKER_URL=rabbitmq, SMTP_URL=smtp_sink.url)
    statuses = wait_settled(store, ids, timeout=30)
    assert set(statuses.values()) == {"processed"}
    assert [d for d in docs if len(smtp_sink.to(email_of(d))) != 1] == []

    # A replay of every action travels on the replay queue and sends nothing twice.
    auth = {"Authorization": "Bearer " + "t" * 24}
    assert intake.client.post(f"/admin/events/{ids[0]}/replay?all=1", headers=auth).status_code == 202
    wait_settled(store, [ids[0]], timeout=20)
    assert store.document(ids[0])["actions"]["notify_customer"]["status"] == "skipped"
    assert len(smtp_sink.to(email_of(docs[0]))) == 1

    output = worker.output()
    assert "PRECONDITION_FAILED" not in output
    assert "amqp://guest:**@127.0.0.1:5672//" in output


@pytest.mark.timeout(90)
def test_batches_on_rabbitmq(rabbitmq, redis_url, tmp_path, workers, smtp_sink, store):
    """Micro-batches on RabbitMQ: a backlog waiting when the worker starts runs in batches of several
    messages (prefetch makes room for them), each event processed and acked, one email each."""
    settings = fault_settings(redis_url, tmp_path, broker_url=rabbitmq)
    intake = Intake(settings)
    docs = [publication() for _ in range(30)]
    ids = [intake.post(doc)["id"] for doc in docs]
    worker = workers(
        redis_url,
        concurrency=1,
        CELERY_BROKER_URL=rabbitmq,
        SMTP_URL=smtp_sink.url,
        WORKER_BATCH_SIZE="8",
        WORKER_BATCH_WAIT_MS="300",
    )
    statuses = wait_settled(store, ids, timeout=45)
    assert set(statuses.values()) == {"processed"}
    assert [d for d in docs if len(smtp_sink.to(email_of(d))) != 1] == []
    sizes = [json.loads(line)["events"] for line in worker.output().splitlines() if '"batch done"' in line]
    assert sum(sizes) == len(ids)
    assert max(sizes) > 1
    # Every message was acked: nothing is left on the queue or unacked once the worker stops.
    worker.stop()
    with Connection(rabbitmq) as conn:
        assert conn.channel().queue_declare(LIVE_QUEUE, passive=True).message_count == 0


def test_queues_are_durable_quorum_queues(rabbitmq, redis_url, tmp_path):
    """Declaring them as classic queues is refused: they are quorum queues, as both sides declare them."""
    intake = Intake(fault_settings(redis_url, tmp_path, broker_url=rabbitmq))
    intake.post(publication())  # declares the queues, as the intake's first send does
    with Connection(rabbitmq) as conn:
        for name in (LIVE_QUEUE, REPLAY_QUEUE):
            channel = conn.channel()
            with pytest.raises(Exception, match="PRECONDITION_FAILED"):
                Queue(name, durable=True, channel=channel).declare()
            conn.channel().queue_declare(name, passive=True)  # still there, unharmed


def test_readyz_reports_an_unreachable_broker(redis_url, tmp_path):
    """The intake's readiness checks the broker itself when it is not the store: down means 503."""
    settings = fault_settings(redis_url, tmp_path, broker_url="amqp://guest:guest@127.0.0.1:1//")
    resp = create_app(settings).test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json == {
        "status": "unavailable",
        "store": True,
        "broker": False,
        "unsigned": False,
        "mail": None,
    }
