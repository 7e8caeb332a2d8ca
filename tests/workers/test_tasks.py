"""The Celery tasks: registered under their stable names with our options, and thin over the pipeline."""

from __future__ import annotations

import json

import pytest

from core import examples
from core.queue import ARCHIVE, PROCESS_EVENT, RECONCILE, REPLAY_JOB
from core.replay import ReplayFilter, job_view, start_job
from core.states import Status
from ingest.dedup import dedup_key
from workers import runtime
from workers.app import create_celery


@pytest.fixture
def app(settings):
    runtime._cache.clear()  # a Runtime per process: this test's settings, not a previous test's
    try:
        yield create_celery(settings)
    finally:
        runtime._cache.clear()


class TestRegistration:
    @pytest.mark.parametrize("name", [PROCESS_EVENT, RECONCILE, REPLAY_JOB, ARCHIVE])
    def test_stable_names_and_at_least_once_options(self, app, name):
        """Each task is known by the name the intake sends, acks late and keeps no result."""
        task = app.tasks[name]
        assert (task.acks_late, task.ignore_result, task.max_retries) == (True, True, 5)

    def test_only_our_tasks_and_celerys_own(self, app):
        ours = {n for n in app.tasks if not n.startswith("celery.")}
        assert ours == {PROCESS_EVENT, RECONCILE, REPLAY_JOB, ARCHIVE}


class TestThinWrappers:
    def test_process_event_runs_the_pipeline_on_the_stored_event(self, app, store):
        """Calling the task's body processes the event by id, exactly as the pipeline function would."""
        raw = json.dumps(examples.example_envelope("voucher.updated")).encode()
        event_id, _ = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s")
        assert app.tasks[PROCESS_EVENT].run(event_id) == Status.IGNORED
        assert store.document(event_id)["status"] == Status.IGNORED

    def test_process_event_for_an_unknown_id(self, app):
        assert app.tasks[PROCESS_EVENT].run("evt_nope") == "missing"

    def test_reconcile_hands_over_what_is_due(self, app, store, settings):
        """The reconciler task claims due outbox entries and sends each to the replay queue."""
        import redis

        event_id, _ = store.accept(b"{}", dedup_key="k", headers={}, secret="s", now=1.0)
        store.set_status(event_id, Status.FAILED, outbox=2.0)
        assert app.tasks[RECONCILE].run() == 1
        sent = redis.Redis.from_url(settings.redis_url).lrange("replay", 0, -1)
        assert [json.loads(json.loads(m)["headers"]["argsrepr"].replace("'", '"')) for m in sent] == [
            [event_id]
        ]

    def test_replay_job_runs_the_job_and_sends_its_events_to_the_replay_queue(self, app, store, settings):
        """The job task replays by name on the replay queue, and says when the job is done."""
        import redis

        from tests.fakes import RecordingQueue

        event_id, _ = store.accept(b"{}", dedup_key="k", headers={}, secret="s", now=1.0)
        store.set_status(event_id, Status.DEAD, outbox=False)
        job_id = start_job(store, RecordingQueue(), ReplayFilter(status="dead"))["job"]
        assert app.tasks[REPLAY_JOB].run(job_id) == "done"
        assert job_view(store, job_id)["count"] == 1
        sent = redis.Redis.from_url(settings.redis_url).lrange("replay", 0, -1)
        assert [json.loads(m)["headers"]["task"] for m in sent] == [PROCESS_EVENT]


class TestArchiveTask:
    def settled(self, store):
        """An event settled two hours ago: past ARCHIVE_AFTER_SECONDS, well within the archive's retention."""
        import time

        event_id, _ = store.accept(b'{"a": 1}', dedup_key="k", headers={}, secret="s", now=time.time() - 7300)
        store.set_status(event_id, Status.PROCESSED, outbox=False, now=time.time() - 7200)
        return event_id

    def test_moves_settled_events_to_the_archive(self, settings, store, tmp_path):
        """With an archive: the task archives what is due and deletes it from Redis."""
        from core import db
        from core.archive import Archive

        url = f"sqlite:///{tmp_path}/archive.sqlite3"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        runtime._cache.clear()
        app = create_celery(settings.with_(archive_database_url=url))
        event_id = self.settled(store)
        assert app.tasks[ARCHIVE].run() == 1
        assert store.document(event_id) is None
        archive = Archive.from_url(url)
        assert archive.get(event_id).raw == b'{"a": 1}'
        archive.engine.dispose()

    def test_without_an_archive_compresses_settled_bodies(self, app, store):
        """Without one: the same task compresses the bodies in place."""
        event_id = self.settled(store)
        assert app.tasks[ARCHIVE].run() == 1
        assert store.raw(event_id) == b'{"a": 1}'
        assert store.r.hget(store.key("ev", event_id), "raw_codec") == b"zstd"

    def test_an_unreachable_archive_is_a_warning_not_a_failure(self, settings, store, caplog):
        """The database down: the pass logs it and returns 0; the events wait in Redis."""
        runtime._cache.clear()
        app = create_celery(settings.with_(archive_database_url="postgresql+psycopg://u@127.0.0.1:1/x"))
        event_id = self.settled(store)
        assert app.tasks[ARCHIVE].run() == 0
        assert store.document(event_id) is not None
        assert "archive database unavailable" in caplog.text
