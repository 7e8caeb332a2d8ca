"""Flower, the optional Celery UI (`pip install -e '.[flower]'`), against our app and broker."""

import json
import sys

import pytest

from tests.support import Proc, free_port, http, start_worker, wait_for, worker_env

pytest.importorskip("flower", reason="Flower is an optional extra: pip install -e '.[flower]'")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class TestFlower:
    def test_flower_starts_and_sees_the_worker(self, redis_url, tmp_path):
        """`celery -A workers flower` serves its UI and finds our running worker through the broker."""
        env = worker_env(redis_url, DATA_DIR=str(tmp_path), FLOWER_UNAUTHENTICATED_API="1")
        worker = start_worker(env, tmp_path / "worker.log", concurrency=1, beat=False, quiet=True)
        port = free_port()
        flower = Proc(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "flower",
                f"--port={port}",
                "--address=127.0.0.1",
            ],
            env,
            tmp_path / "flower.log",
        )
        try:
            flower.wait_for_output("Visit me at", timeout=60)
            base = f"http://127.0.0.1:{port}"
            status, body, _ = http("GET", f"{base}/healthcheck")
            assert (status, body) == (200, b"OK")

            def worker_seen():
                status, body, _ = http("GET", f"{base}/api/workers?refresh=1")
                return status == 200 and [name for name in json.loads(body) if name.startswith("test-")]

            (name,) = wait_for(worker_seen, timeout=30, interval=0.5, what="Flower to list the worker")
            status, body, _ = http("GET", f"{base}/api/workers?workername={name}")
            queues = {q["name"] for q in json.loads(body)[name]["active_queues"]}
            assert queues == {"events", "replay", "reconcile", "archive"}
        finally:
            flower.stop()
            worker.stop()
