import base64
import json
import os
import uuid

import redis

from core import examples
from core.queue import LIVE_QUEUE, PROCESS_EVENT, TaskQueue, celery_message
from core.settings import Settings
from ingest import create_app
from tests.support import signed


class TestCeleryMessage:
    def test_same_layout_as_celery_sends(self, settings):
        """The message the intake writes has every header and property Celery's own send_task writes."""
        TaskQueue(settings).celery.send_task(PROCESS_EVENT, args=["evt_1"], queue=LIVE_QUEUE)
        r = redis.Redis.from_url(settings.redis_url)
        theirs = json.loads(r.lpop(LIVE_QUEUE))
        ours = json.loads(celery_message(PROCESS_EVENT, ["evt_1"], LIVE_QUEUE))
        assert set(ours) == set(theirs)
        assert set(ours["headers"]) == set(theirs["headers"])
        assert set(ours["properties"]) == set(theirs["properties"])
        assert ours["properties"]["delivery_info"] == theirs["properties"]["delivery_info"]
        assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
        assert ours["headers"]["task"] == PROCESS_EVENT

    def test_ids_are_unique(self):
        a = json.loads(celery_message(PROCESS_EVENT, ["x"], LIVE_QUEUE))
        b = json.loads(celery_message(PROCESS_EVENT, ["x"], LIVE_QUEUE))
        assert a["headers"]["id"] != b["headers"]["id"]
        assert a["properties"]["delivery_tag"] != b["properties"]["delivery_tag"]

    def test_ids_are_random_uuids_like_celerys(self):
        """Task id and delivery tag are distinct version-4 UUIDs, as Celery's own uuid4() ids are."""
        for _ in range(100):
            m = json.loads(celery_message(PROCESS_EVENT, ["x"], LIVE_QUEUE))
            task_id, tag = uuid.UUID(m["headers"]["id"]), uuid.UUID(m["properties"]["delivery_tag"])
            assert task_id != tag
            for u in (task_id, tag):
                assert (u.version, u.variant) == (4, uuid.RFC_4122)
            assert m["headers"]["id"] == m["headers"]["root_id"] == m["properties"]["correlation_id"]

    def test_origin_names_the_sending_process(self):
        """The origin header carries the pid of the process that built the message, also after a fork."""
        m = json.loads(celery_message(PROCESS_EVENT, ["x"], LIVE_QUEUE))
        assert m["headers"]["origin"].startswith(f"gen{os.getpid()}@")
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe and exits
            origin = json.loads(celery_message(PROCESS_EVENT, ["x"], LIVE_QUEUE))["headers"]["origin"]
            os.write(write, f"{os.getpid()} {origin}".encode())
            os._exit(0)
        os.close(write)
        os.waitpid(child, 0)
        pid, origin = os.read(read, 1000).decode().split(" ", 1)
        os.close(read)
        assert origin.startswith(f"gen{pid}@")
        assert pid != str(os.getpid())


class TestInlineEnqueue:
    def test_inline_only_when_broker_is_the_store(self, settings):
        """The store script can push the message only when the broker is the same Redis database."""
        assert TaskQueue(settings).inline
        # Another database than the store's (the fixture cycles through 1..15: 15 can be the store's).
        base, _, db = settings.redis_url.rpartition("/")
        other = settings.with_(broker_url=f"{base}/{14 if db == '15' else 15}")
        assert not TaskQueue(other).inline
        assert not TaskQueue(settings.with_(broker_url="amqp://guest:guest@127.0.0.1:5672//")).inline

    def test_accepted_delivery_is_on_the_queue_in_the_same_write(self, settings, store):
        """One POST: the event stored and its task message on the live queue; a duplicate adds no message."""
        client = create_app(settings, store=store).test_client()
        body, headers = signed(examples.example_envelope("voucher.updated"))
        event_id = client.post("/webhooks/voucherify", data=body, headers=headers).json["id"]
        client.post("/webhooks/voucherify", data=body, headers=headers)
        r = redis.Redis.from_url(settings.redis_url)
        (raw,) = r.lrange(LIVE_QUEUE, 0, -1)
        args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        assert args == [event_id]

    def test_store_down_pushes_nothing(self, tmp_path):
        from tests.support import SECRET, free_port

        url = f"redis://127.0.0.1:{free_port()}/0"
        settings = Settings(redis_url=url, broker_url=url, webhook_secrets=(SECRET,), data_dir=tmp_path)
        client = create_app(settings).test_client()
        body, headers = signed(examples.example_envelope("voucher.updated"))
        assert client.post("/webhooks/voucherify", data=body, headers=headers).status_code == 503
