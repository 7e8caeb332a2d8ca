"""The admin API: off without ADMIN_TOKEN, 401 without the right one; list, show, replay one, bulk replay."""

import json

import pytest

from core import examples, replay
from core.queue import REPLAY_QUEUE
from core.states import ActionState, ActionStatus
from ingest import create_app
from ingest.dedup import dedup_key
from tests.fakes import RecordingQueue
from workers import pipeline
from workers.actions.notify import NotifyCustomer
from workers.errors import TransientError

TOKEN = "admin-token-" + "a" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ROUTES = [
    ("GET", "/admin/events"),
    ("GET", "/admin/events/evt_x"),
    ("POST", "/admin/events/evt_x/replay"),
    ("POST", "/admin/replay"),
    ("GET", "/admin/replay/job_x"),
]


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def client(settings, store, queue):
    return create_app(settings.with_(admin_token=TOKEN), store=store, queue=queue).test_client()


def deliver(store, name="voucher.updated", *, now=None, email=None):
    doc = examples.example_envelope(name)
    if email:
        doc["data"]["customer"]["email"] = email
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)
    assert created
    return event_id


class TestAccess:
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    def test_off_without_admin_token(self, settings, store, queue, method, path):
        """No ADMIN_TOKEN: every admin route is 404, as if it did not exist (not even a 401 to probe)."""
        client = create_app(settings, store=store, queue=queue).test_client()
        assert client.open(path, method=method, headers=AUTH).status_code == 404

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ],
    )
    def test_401_without_the_right_token(self, client, queue, method, path, headers):
        resp = client.open(path, method=method, headers=headers, json={})
        assert resp.status_code == 401
        assert resp.json["error"] == "unauthorized"
        assert queue.sent == []


class TestList:
    def test_newest_first_with_limit(self, client, store):
        ids = [deliver(store, now=1_700_000_000 + i) for i in range(5)]
        resp = client.get("/admin/events?limit=3", headers=AUTH)
        assert resp.status_code == 200
        assert [e["id"] for e in resp.json["events"]] == ids[::-1][:3]

    def test_filters_by_status_and_type(self, client, store):
        a = deliver(store, "voucher.updated", now=1_700_000_001)
        b = deliver(store, "voucher.created", now=1_700_000_002)
        c = deliver(store, "voucher.created", now=1_700_000_003)
        store.set_status(b, "dead", outbox=False, event_type="voucher.created")
        store.set_status(c, "processed", outbox=False, event_type="voucher.created")
        store.set_status(a, "processed", outbox=False, event_type="voucher.updated")

        def ids(query):
            return [e["id"] for e in client.get(f"/admin/events?{query}", headers=AUTH).json["events"]]

        assert ids("status=dead") == [b]
        assert ids("status=processed") == [c, a]
        assert ids("type=voucher.created") == [c, b]
        assert ids("status=processed&type=voucher.created") == [c]
        assert ids("status=queued") == []

    def test_filters_by_time(self, client, store):
        old = deliver(store, now=1_700_000_000)
        new = deliver(store, now=1_700_000_100)
        since = "2023-11-14T22:14:00Z"  # 1_700_000_040
        events = client.get(f"/admin/events?since={since}", headers=AUTH).json["events"]
        assert [e["id"] for e in events] == [new]
        events = client.get("/admin/events?until=1700000050", headers=AUTH).json["events"]
        assert [e["id"] for e in events] == [old]

    @pytest.mark.parametrize(
        "query", ["status=nope", "limit=lots", "since=yesterday", "until=2024-01-01T00:00:00"]
    )
    def test_bad_filter_is_400_with_a_message(self, client, query):
        resp = client.get(f"/admin/events?{query}", headers=AUTH)
        assert resp.status_code == 400
        assert resp.json["message"]


class TestShow:
    def test_document_fields(self, client, store):
        event_id = deliver(store)
        doc = client.get(f"/admin/events/{event_id}", headers=AUTH).json
        assert doc["id"] == event_id
        assert doc["status"] == "queued"
        assert doc["received_at"].endswith("Z")
        assert doc["dedup_key"].startswith("ev:wh_test:")
        assert doc["attempts"] == 0
        assert doc["errors"] is None
        assert doc["actions"] == {}
        assert "raw" not in doc
        assert "secret" not in doc

    def test_unknown_event_is_404(self, client):
        resp = client.get("/admin/events/evt_nope", headers=AUTH)
        assert resp.status_code == 404
        assert resp.json["message"] == "no event evt_nope"

    def test_every_attempt_of_every_action_is_shown(self, client, settings, store):
        """The history: each attempt with its time, outcome and error, in order, across a retry."""

        class FlakyMailer:
            failures = [TransientError("SMTP connection failed: ConnectionRefusedError")] * 2

            def send(self, message, *, deadline=None, envelope=None):
                if self.failures:
                    raise self.failures.pop()

        now = [1_700_000_000.0]
        rt = pipeline.Runtime(
            settings=settings,
            store=store,
            actions={
                "notify_customer": NotifyCustomer(
                    FlakyMailer(), sender="s@x.io", reservation_ttl=30, remember_s=60
                )
            },
            clock=lambda: now[0],
            rng=lambda: 0.0,
        )
        event_id = deliver(store, "publication.succeeded", email="alex@example.com")
        for _ in range(3):
            pipeline.process_event(event_id, rt)
            now[0] += 60
        doc = client.get(f"/admin/events/{event_id}", headers=AUTH).json
        assert doc["status"] == "processed"
        assert doc["attempts"] == 3
        action = doc["actions"]["notify_customer"]
        assert action["status"] == "succeeded"
        assert action["attempts"] == 3
        assert action["last_error"] == "SMTP connection failed: ConnectionRefusedError"
        history = action["history"]
        assert [h["outcome"] for h in history] == ["failed", "failed", "succeeded"]
        assert [h["at"] for h in history] == [
            "2023-11-14T22:13:20.000Z",
            "2023-11-14T22:14:20.000Z",
            "2023-11-14T22:15:20.000Z",
        ]
        assert [h.get("error") for h in history] == [
            "SMTP connection failed: ConnectionRefusedError",
            "SMTP connection failed: ConnectionRefusedError",
            None,
        ]
        assert all(h["ms"] >= 0 for h in history)


class TestReplayOne:
    def test_replays_failed_actions_on_the_replay_queue(self, client, store, queue):
        event_id = deliver(store)
        store.put_action(event_id, "a", ActionState(ActionStatus.DEAD, attempts=3))
        store.put_action(event_id, "b", ActionState(ActionStatus.SUCCEEDED, attempts=1))
        store.set_status(event_id, "dead", outbox=False)
        resp = client.post(f"/admin/events/{event_id}/replay", headers=AUTH)
        assert resp.status_code == 202
        assert resp.json == {"id": event_id, "status": "queued", "queue": REPLAY_QUEUE}
        assert queue.sent == [(event_id, REPLAY_QUEUE)]
        actions = store.actions(event_id)
        assert (actions["a"].status, actions["a"].attempts) == ("pending", 0)
        assert actions["b"].status == "succeeded"
        assert store.document(event_id)["status"] == "queued"

    @pytest.mark.parametrize("flag", ["1", "true", "yes"])
    def test_all_replays_every_action(self, client, store, flag):
        event_id = deliver(store)
        store.put_action(event_id, "b", ActionState(ActionStatus.SUCCEEDED, attempts=1))
        store.set_status(event_id, "processed", outbox=False)
        assert client.post(f"/admin/events/{event_id}/replay?all={flag}", headers=AUTH).status_code == 202
        assert store.actions(event_id)["b"].status == "pending"

    def test_unknown_event_is_404(self, client, queue):
        assert client.post("/admin/events/evt_nope/replay", headers=AUTH).status_code == 404
        assert queue.sent == []


class TestBulkReplay:
    @pytest.fixture
    def events(self, store):
        """Three dead events (two voucher.created), one processed; received a minute apart."""
        out = {}
        for i, (name, status) in enumerate(
            [
                ("voucher.created", "dead"),
                ("voucher.updated", "dead"),
                ("voucher.created", "dead"),
                ("voucher.created", "processed"),
            ]
        ):
            event_id = deliver(store, name, now=1_700_000_000 + 60 * i)
            store.set_status(event_id, status, outbox=False, event_type=name)
            out[event_id] = (name, status)
        return list(out)

    def test_dry_run_counts_and_replays_nothing(self, client, store, queue, events):
        resp = client.post("/admin/replay", headers=AUTH, json={"status": "dead", "dry_run": True})
        assert resp.status_code == 200
        assert resp.json["count"] == 3
        assert queue.sent == []
        assert store.counts()["dead"] == 3

    def test_a_replay_is_a_job_answered_202(self, client, store, queue, events):
        """The replay runs on a worker, not in the request: 202 with the job, which the worker then runs."""
        resp = client.post("/admin/replay", headers=AUTH, json={"status": "dead"})
        assert resp.status_code == 202
        job = resp.json
        assert resp.headers["Location"] == f"/admin/replay/{job['job']}"
        assert (job["state"], job["total"], job["done"], job["count"]) == ("queued", 3, 0, None)
        assert job["filter"]["status"] == "dead"
        assert queue.sent == [(job["job"], "replay_job")]  # handed over by task name, nothing replayed yet
        assert store.counts()["dead"] == 3

        queue.sent.clear()
        assert replay.run_job(store, queue, job["job"]) == "done"
        assert queue.sent == [(e, REPLAY_QUEUE) for e in events[:3]]  # oldest first
        assert store.counts()["queued"] == 3
        done = client.get(f"/admin/replay/{job['job']}", headers=AUTH)
        assert done.status_code == 200
        assert (done.json["state"], done.json["done"], done.json["count"]) == ("done", 3, 3)
        assert done.json["finished_at"].endswith("Z")

    def test_filters_combine(self, client, store, queue, events):
        body = {"status": "dead", "type": "voucher.created", "since": "2023-11-14T22:14:00Z"}
        job = client.post("/admin/replay", headers=AUTH, json=body).json
        assert job["total"] == 1
        queue.sent.clear()
        replay.run_job(store, queue, job["job"])
        assert queue.sent == [(events[2], REPLAY_QUEUE)]

    def test_until_in_epoch_seconds(self, client, events):
        body = {"until": 1_700_000_059, "dry_run": True}
        assert client.post("/admin/replay", headers=AUTH, json=body).json["count"] == 1

    def test_everything_needs_all_true(self, client, queue, events):
        """Regression: an empty body (or a misspelt filter) replayed every stored event."""
        for kwargs in ({}, {"json": {}}, {"json": {"all": False}}):
            resp = client.post("/admin/replay", headers=AUTH, **kwargs)
            assert resp.status_code == 400
            assert resp.json["message"].startswith("all:")
        assert queue.sent == []
        resp = client.post("/admin/replay", headers=AUTH, json={"all": True})
        assert (resp.status_code, resp.json["total"]) == (202, 4)
        assert client.post("/admin/replay", headers=AUTH, json={"dry_run": True}).json["count"] == 4

    def test_unknown_job_is_404(self, client):
        resp = client.get("/admin/replay/job_nope", headers=AUTH)
        assert resp.status_code == 404
        assert "job_nope" in resp.json["message"]

    def test_broker_down_is_503_and_the_job_says_why(self, settings, store, events):
        class DownQueue(RecordingQueue):
            def replay_job(self, job_id):
                raise ConnectionError("broker down")

        client = create_app(settings.with_(admin_token=TOKEN), store=store, queue=DownQueue()).test_client()
        resp = client.post("/admin/replay", headers=AUTH, json={"status": "dead"})
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        job_id = resp.json["message"].split()[1]
        job = client.get(f"/admin/replay/{job_id}", headers=AUTH).json
        assert (job["state"], job["error"]) == ("failed", "not started: ConnectionError")

    @pytest.mark.parametrize(
        "body",
        [
            [1, 2],
            {"status": "nope"},
            {"type": 3},
            {"since": "last week"},
            {"until": "2024-01-01T00:00:00"},
            {"since": True},
        ],
    )
    def test_bad_body_is_400(self, client, queue, events, body):
        resp = client.post("/admin/replay", headers=AUTH, json=body)
        assert resp.status_code == 400
        assert resp.json["message"]
        assert queue.sent == []


class TestBadInput:
    """Regression (issue 10, item 8): odd numbers and wrong types reached Redis or float() and made a 500."""

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("since=nan", "since"),
            ("until=inf", "until"),
            ("since=-inf", "since"),
            ("until=1e999", "until"),
            ("since=" + "9" * 400, "since"),
            ("since=2024-13-45T00:00:00Z", "since"),
            ("limit=-1", "limit"),
            ("limit=0", "limit"),
            ("limit=1.5", "limit"),
        ],
    )
    def test_list_filters(self, client, query, field):
        resp = client.get(f"/admin/events?{query}", headers=AUTH)
        assert resp.status_code == 400, resp.data
        assert resp.json["message"].startswith(f"{field}:")

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            (b'{"since": NaN, "dry_run": true}', "since"),
            (b'{"until": Infinity, "dry_run": true}', "until"),
            (b'{"until": -Infinity, "dry_run": true}', "until"),
            (b'{"since": 1e999, "dry_run": true}', "since"),
            (b'{"since": ' + b"9" * 400 + b', "dry_run": true}', "since"),
            (b'{"since": "nan", "dry_run": true}', "since"),
            (b'{"since": [], "dry_run": true}', "since"),
            (b'{"status": ["dead"], "dry_run": true}', "status"),
            (b'{"status": {"a": 1}, "dry_run": true}', "status"),
            (b'{"type": 3, "dry_run": true}', "type"),
            (b'{"status": "dead", "dry_run": "no"}', "dry_run"),
            (b'{"all": "yes"}', "all"),
            (b'{"stauts": "dead"}', "stauts"),
            (b'{"status": "dead"', "body"),
            (b"\xff\xfe", "body"),
        ],
    )
    def test_bulk_replay_body(self, client, queue, raw, field):
        resp = client.post("/admin/replay", headers=AUTH, data=raw, content_type="application/json")
        assert resp.status_code == 400, resp.data
        assert resp.json["message"].startswith(f"{field}:")
        assert queue.sent == []


class TestFuzzerFindings:
    """What schemathesis found against the live service (tests/e2e/test_openapi.py), each pinned here."""

    @pytest.mark.parametrize(
        ("method", "path"), [("TRACE", "/admin/events"), ("DELETE", "/healthz"), ("GET", "/admin/replay")]
    )
    def test_405_says_which_methods_are_allowed(self, client, method, path):
        """Regression: the JSON error handler dropped the Allow header RFC 9110 requires on a 405."""
        resp = client.open(path, method=method, headers=AUTH)
        assert resp.status_code == 405
        assert resp.headers["Allow"]
        assert resp.json["error"] == "method_not_allowed"

    @pytest.mark.parametrize(
        "query", ["until=-62135596801", "since=253402300800", "since=-1e300", "until=1e300"]
    )
    def test_epoch_seconds_outside_years_1_to_9999_are_400(self, client, query):
        """Regression: accepted, and a job's view of such a bound could not be rendered as a time."""
        resp = client.get(f"/admin/events?{query}", headers=AUTH)
        assert resp.status_code == 400
        assert resp.json["message"].startswith(query.split("=")[0] + ":")

    @pytest.mark.parametrize(
        "value",
        [
            "2000-01-01t00:00:00z",  # RFC 3339 allows lower-case t and z
            "2016-12-31T23:59:60Z",  # a leap second
            "0000-01-01T00:00:00Z",  # year 0 (clamped to the earliest time there is)
            "9999-12-31T23:59:59-23:59",  # later than 9999 in UTC (clamped to the latest)
            "2000-01-01T00:00:00.123456789+05:30",
        ],
    )
    def test_every_rfc3339_time_is_accepted(self, client, store, value):
        """Regression: valid RFC 3339 times that Python's fromisoformat refuses were a 400."""
        deliver(store)
        resp = client.get("/admin/events", query_string={"since": value}, headers=AUTH)
        assert resp.status_code == 200, resp.json
        body = {"since": value, "dry_run": True}
        assert client.post("/admin/replay", headers=AUTH, json=body).status_code == 200

    @pytest.mark.parametrize(
        "path",
        [
            "/admin/events?stauts=dead",
            "/admin/events?status=dead&2=null",
            "/admin/events/evt_x?raw=1",
            "/admin/replay/job_x?x=1",
        ],
    )
    def test_unknown_query_parameters_are_400(self, client, path):
        """Regression: ignored, so a misspelt filter (?stauts=dead) silently listed every event."""
        resp = client.get(path, headers=AUTH)
        assert resp.status_code == 400
        unknown = path.split("?")[1].split("&")[-1].split("=")[0]
        assert resp.json["message"].startswith(f"{unknown}:")

    def test_known_query_parameters_still_work(self, client, store):
        event_id = deliver(store)
        assert client.post(f"/admin/events/{event_id}/replay?all=1", headers=AUTH).status_code == 202
        query = "status=&type=&since=&until=&limit=5"
        assert client.get(f"/admin/events?{query}", headers=AUTH).status_code == 200

    @pytest.mark.parametrize("limit", ["1" + "0" * 30, "0005", "9" * 5000])
    def test_a_large_limit_is_capped_not_refused(self, client, store, limit):
        """Regression: a limit of more than 9 digits was a 400 (and 5000 digits overflow int())."""
        deliver(store)
        resp = client.get(f"/admin/events?limit={limit}", headers=AUTH)
        assert resp.status_code == 200
        assert len(resp.json["events"]) == 1

    @pytest.mark.parametrize("limit", ["0", "000", "-1", "1.5", "²", "1e3", " 5"])
    def test_a_limit_that_is_not_a_whole_number_from_1_is_400(self, client, limit):
        resp = client.get("/admin/events", query_string={"limit": limit}, headers=AUTH)
        assert resp.status_code == 400
        assert resp.json["message"].startswith("limit:")
