"""The store (and broker) SIGKILLed and restarted under traffic: 202 means processed eventually, else 503."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import pytest

from cli import embedded
from core.settings import Settings
from core.store import EventStore
from tests.faults.helpers import LEASE_S, Stopwatch, email_of, publication, wait_settled
from tests.support import Proc, free_port, signed, wait_for, worker_env

pytestmark = pytest.mark.integration

CLIENTS = 3
PAUSE_S = 0.03  # per client between requests: ~80 requests/s in all (measured; each answer takes a few ms)
CLIENT_TIMEOUT_S = 5.0


class Sender:
    """Voucherify, roughly: POSTs signed publications from a few threads and records every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: list[tuple[float, dict[str, Any], int | str, dict[str, Any] | None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]
        self.clock = Stopwatch()

    def post(self, doc: dict[str, Any]) -> tuple[int | str, dict[str, Any] | None]:
        body, headers = signed(doc)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=CLIENT_TIMEOUT_S) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            return type(exc).__name__, None

    def _run(self) -> None:
        while not self._stop.is_set():
            doc = publication()
            status, answer = self.post(doc)
            with self._lock:
                self.results.append((self.clock(), doc, status, answer))
            time.sleep(PAUSE_S)

    def start(self) -> Sender:
        self.clock = Stopwatch()
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(CLIENT_TIMEOUT_S + 1)


@pytest.fixture
def valkey(tmp_path):
    """A Valkey of this test's own (AOF on, as shipped), which the test kills and restarts."""
    data_dir, port = tmp_path / "valkey", free_port()
    servers = [embedded.start(data_dir, port=port)]

    def restart():
        servers.append(embedded.start(data_dir, port=port))

    try:
        yield servers, restart
    finally:
        for server in servers:
            server.terminate()


@pytest.mark.timeout(90)
def test_store_killed_and_restarted_under_traffic(tmp_path, valkey, workers, smtp_sink):
    """Valkey (store and broker) is SIGKILLed while a real gunicorn intake takes ~80 requests/s and a
    worker processes them, then restarted on the same port and data dir 3 s later. Every request
    answered 202 is processed, those in the outage got 503 (nothing else: no 500, no timeout), and a
    sender retrying its 503s (as Voucherify does) ends with every customer emailed once."""
    servers, restart = valkey
    url = servers[0].connection_url + "/0"
    store = EventStore.from_settings(Settings(redis_url=url))
    port = free_port()
    env = worker_env(url, SMTP_URL=smtp_sink.url, OUTBOX_LEASE_SECONDS=str(LEASE_S))
    web = Proc(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "ingest:create_app()",
        ],
        env,
        tmp_path / "web.log",
    )
    sender = Sender(f"http://127.0.0.1:{port}/webhooks/voucherify")
    try:
        _exercise(sender, port, servers, restart, store, workers, url, smtp_sink)
    finally:
        sender.stop()
        web.stop()


def _exercise(sender, port, servers, restart, store, workers, url, smtp_sink) -> None:
    wait_for(lambda: _ready(port), timeout=30, what="the intake")
    worker = workers(url, SMTP_URL=smtp_sink.url)
    sender.start()
    time.sleep(2)
    servers[0].terminate()  # SIGKILL
    killed_s = sender.clock()
    time.sleep(3)
    restart()
    restarted_s = sender.clock()
    time.sleep(3)
    sender.stop()
    stopped_s = sender.clock()

    answers = Counter(status for _, _, status, _ in sender.results)
    assert set(answers) <= {202, 503}, answers  # no 500s, no timeouts, no connection errors
    assert answers[503] > 0, "the outage was not seen"
    accepted = [(t, doc, ans["id"]) for t, doc, status, ans in sender.results if status == 202]
    assert any(t > restarted_s + 0.5 for t, _, _ in accepted), "nothing accepted after the restart"
    for _, _, status, answer in sender.results:
        if status == 503:
            assert answer["error"] == "store_unavailable"

    # Every acknowledged event is in the restarted store, and is processed (the worker reconnected).
    ids = [event_id for _, _, event_id in accepted]
    statuses = wait_settled(store, ids, timeout=40)
    assert set(statuses.values()) == {"processed"}
    processed_s = sender.clock()
    # The same worker process did it: it lost the broker, reconnected, and is still running.
    assert "Connection to broker lost" in worker.output()
    assert "Unrecoverable error" not in worker.output()
    assert worker.popen.poll() is None

    # The sender retries what got 503 (Voucherify does, for a day and a half): all of it is accepted now,
    # a few as duplicates of deliveries that were stored just before the kill but not answered.
    refused = [doc for _, doc, status, _ in sender.results if status == 503]
    retried = [sender.post(doc) for doc in refused]
    assert {status for status, _ in retried} == {202}
    wait_settled(store, [answer["id"] for _, answer in retried], timeout=30)
    docs = [doc for _, doc, _, _ in sender.results]
    assert [d for d in docs if len(smtp_sink.to(email_of(d))) != 1] == []
    print(
        f"\nstore restart: {len(sender.results)} requests in {stopped_s}s, {answers[202]} answered 202 and "
        f"{answers[503]} 503 (SIGKILL at {killed_s}s, restarted at {restarted_s}s); every 202 processed "
        f"{round(processed_s - restarted_s, 1)}s after the restart; {len(refused)} retried 503s accepted "
        f"({sum(1 for _, a in retried if a['status'] == 'duplicate')} as duplicates); "
        f"{len(smtp_sink.messages)} emails, one per customer"
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
