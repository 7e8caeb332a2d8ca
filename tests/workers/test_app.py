import pytest
import redis

from core.queue import ARCHIVE_QUEUE, LIVE_QUEUE, PROCESS_EVENT, RECONCILE_QUEUE, REPLAY_QUEUE, TaskQueue
from workers.app import create_celery


class TestQueues:
    def test_each_queue_gets_only_its_own_messages(self, settings):
        """Sends to `events` and `replay`, from the workers' app and from the intake's client, land only in
        that queue (by default Celery bound `replay` to the `events` exchange and key)."""
        app = create_celery(settings)
        client = TaskQueue(settings)
        app.send_task(PROCESS_EVENT, args=["a"], queue=LIVE_QUEUE)
        app.send_task(PROCESS_EVENT, args=["b"], queue=REPLAY_QUEUE)
        client.process_event("c")
        client.process_event("d", queue=REPLAY_QUEUE)
        r = redis.Redis.from_url(settings.redis_url)
        assert r.llen(LIVE_QUEUE) == 2
        assert r.llen(REPLAY_QUEUE) == 2

    def test_worker_consumes_every_queue(self, settings):
        """A plain `celery -A workers worker` listens to the live queue, the replay queue, the reconciler's
        and the archiver's own queues, each with its own exchange and key."""
        app = create_celery(settings)
        names = [q.name for q in app.conf.task_queues]
        assert names == [LIVE_QUEUE, REPLAY_QUEUE, RECONCILE_QUEUE, ARCHIVE_QUEUE]
        assert [(q.exchange.name, q.routing_key) for q in app.conf.task_queues] == [
            (LIVE_QUEUE, LIVE_QUEUE),
            (REPLAY_QUEUE, REPLAY_QUEUE),
            (RECONCILE_QUEUE, RECONCILE_QUEUE),
            (ARCHIVE_QUEUE, ARCHIVE_QUEUE),
        ]

    def test_the_reconciler_runs_on_its_own_queue(self, settings):
        """Regression: the reconcile task waited in `replay` behind the very backlog it must see through,
        and expired there unrun."""
        app = create_celery(settings)
        assert app.conf.beat_schedule["reconcile"]["options"]["queue"] == RECONCILE_QUEUE

    def test_the_archiver_runs_on_its_own_queue(self, settings):
        """An archive database that is slow or down holds back only the archiver, never the reconciler."""
        app = create_celery(settings.with_(archive_interval_s=7.0))
        entry = app.conf.beat_schedule["archive"]
        assert (entry["options"]["queue"], entry["schedule"]) == (ARCHIVE_QUEUE, 7.0)


class TestUnsignedMode:
    @pytest.mark.integration
    def test_worker_warns_at_start(self, redis_url, tmp_path):
        """A real worker started in unsigned mode says so in its log, as a JSON warning."""
        import json

        from tests.support import start_worker, worker_env

        env = worker_env(
            redis_url, DATA_DIR=str(tmp_path), VOUCHERIFY_WEBHOOK_SECRETS="", VOUCHERIFY_ALLOW_UNSIGNED="1"
        )
        proc = start_worker(env, tmp_path / "worker.log", concurrency=1, beat=False, quiet=True)
        try:
            lines = [json.loads(x) for x in proc.output().splitlines() if '"unsigned_mode"' in x]
        finally:
            proc.stop()
        assert lines
        assert {(x["level"], x["component"]) for x in lines} == {("warning", "worker")}


class TestPublishedRoutes:
    @pytest.mark.integration
    def test_a_ready_worker_publishes_its_routes(self, redis_url, workers, store):
        """The intake cannot import the routing: a worker writes its table when it is ready, forwards
        included, for the console's bulk replay to say what would run."""
        from tests.support import wait_for

        workers(redis_url, concurrency=1, beat=False, FORWARD_URLS="crm=https://crm.example/hook")
        routes, _ = wait_for(store.published_routes, timeout=20, what="the routes table")
        assert routes["publication.succeeded"] == ("notify_customer", "forward:crm")
        assert routes["voucher.updated"] == ("forward:crm",)
