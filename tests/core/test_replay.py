"""Replay: reset an event's failed (or all) actions and hand it over again, on the replay queue."""

import json

import pytest
import redis

import cli
from core import examples
from core.queue import REPLAY_QUEUE
from core.replay import ReplayFilter, count_matching, job_view, replay_many, replay_one, run_job, start_job
from core.states import ActionState, ActionStatus
from core.store import jobs
from ingest.dedup import dedup_key
from tests.fakes import RecordingQueue
from tests.support import ROOT
from workers import pipeline


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def runtime(settings, store):
    """The pipeline with no actions: a valid event ends `ignored`."""
    return pipeline.Runtime(settings=settings, store=store, actions={})


def deliver(store, name="voucher.updated", *, now=None):
    raw = json.dumps(examples.example_envelope(name)).encode()
    event_id, _ = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)
    return event_id


def dead_event(store, *, now=None, name="voucher.updated"):
    event_id = deliver(store, name, now=now)
    store.put_action(event_id, "dead_one", ActionState(ActionStatus.DEAD, attempts=20, history=({"at": 1},)))
    store.put_action(event_id, "done_one", ActionState(ActionStatus.SUCCEEDED, attempts=1))
    store.set_status(event_id, "dead", outbox=False, event_type=name, reason="smtp_unreachable")
    return event_id


class TestReplayOne:
    def test_resets_failed_actions_and_enqueues_on_the_replay_queue(self, store, queue):
        event_id = dead_event(store)
        assert replay_one(store, queue, event_id)
        assert queue.sent == [(event_id, REPLAY_QUEUE)]
        actions = store.actions(event_id)
        assert actions["dead_one"].status == "pending"
        assert actions["dead_one"].attempts == 0
        assert actions["dead_one"].replays == 1
        assert actions["dead_one"].history == ({"at": 1},)  # the past attempts stay visible
        assert actions["done_one"] == ActionState(ActionStatus.SUCCEEDED, attempts=1)
        doc = store.document(event_id)
        assert (doc["status"], doc["reason"]) == ("queued", "replay")
        assert store.r.hget(store.key("ev", event_id), "replays") == b"1"

    def test_replayed_event_no_longer_expires(self, store, queue):
        """A dead event has a retention expiry; once replayed it is unfinished work again and is kept."""
        event_id = dead_event(store)
        assert store.r.ttl(store.key("ev", event_id)) > 0
        replay_one(store, queue, event_id)
        for kind in ("ev", "raw", "act"):
            assert store.r.ttl(store.key(kind, event_id)) == -1

    def test_all_actions(self, store, queue):
        event_id = dead_event(store)
        replay_one(store, queue, event_id, all_actions=True)
        assert {s.status for s in store.actions(event_id).values()} == {"pending"}

    def test_is_in_the_outbox_even_if_the_send_fails(self, store):
        """A broker hiccup during a replay delays it (the reconciler sends it), never drops it."""

        class DownQueue:
            def process_event(self, event_id, *, queue="events"):
                raise ConnectionError("broker down")

        event_id = dead_event(store)
        assert replay_one(store, DownQueue(), event_id)
        due = store.claim_due(now=store.r.zscore(f"{store.p}:outbox", event_id) + 0.001)
        assert due == [event_id]

    def test_unknown_event(self, store, queue):
        assert not replay_one(store, queue, "evt_nope")
        assert queue.sent == []

    def test_event_dead_from_too_many_starts_runs_again(self, runtime, store, queue):
        """Regression: replay kept the start count, so an event that went dead with `too_many_starts`
        (its worker died every time) went straight back to dead on replay and never ran again."""
        event_id = deliver(store)
        store.r.hset(store.key("ev", event_id), "unfinished_starts", pipeline.MAX_EVENT_STARTS)
        assert pipeline.process_event(event_id, runtime) == "dead"
        replay_one(store, queue, event_id)
        assert pipeline.process_event(event_id, runtime) == "ignored"
        assert store.document(event_id)["attempts"] == 1  # the dead start was not counted; this one is


class TestReplayMany:
    @pytest.fixture
    def events(self, store):
        return [dead_event(store, now=1_700_000_000 + i) for i in range(3)]

    def test_oldest_first_with_progress(self, store, queue, events):
        seen = []
        assert replay_many(store, queue, ReplayFilter(status="dead"), progress=seen.append) == 3
        assert [e for e, _ in queue.sent] == events
        assert {q for _, q in queue.sent} == {REPLAY_QUEUE}
        assert seen == [1, 2, 3]

    def test_dry_run_changes_nothing(self, store, queue, events):
        assert replay_many(store, queue, ReplayFilter(status="dead"), dry_run=True) == 3
        assert queue.sent == []
        assert store.counts()["dead"] == 3

    def test_time_window(self, store, queue, events):
        flt = ReplayFilter(since=1_700_000_001, until=1_700_000_001)
        assert replay_many(store, queue, flt) == 1
        assert queue.sent == [(events[1], REPLAY_QUEUE)]

    def test_expired_events_are_skipped_and_pruned(self, store, queue, events):
        """An index entry whose event expired is not counted, and is removed from the index."""
        store.r.delete(store.key("ev", events[0]))
        assert replay_many(store, queue, ReplayFilter(status="dead"), dry_run=True) == 2
        assert store.r.zscore(f"{store.p}:st:dead", events[0]) is None


class TestCommand:
    """`voucherify-ingest replay` against the real store and the real broker (a Redis list per queue)."""

    @pytest.fixture
    def env(self, monkeypatch, settings):
        monkeypatch.setenv("REDIS_URL", settings.redis_url)
        monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
        monkeypatch.setenv("KEY_PREFIX", settings.key_prefix)

    def queued(self, settings, name):
        return redis.Redis.from_url(settings.redis_url).llen(name)

    def test_one(self, env, settings, store, capsys):
        event_id = dead_event(store)
        assert cli.main(["replay", event_id]) == 0
        assert capsys.readouterr().out.strip() == f"replayed {event_id}"
        assert store.document(event_id)["status"] == "queued"
        assert self.queued(settings, REPLAY_QUEUE) == 1
        assert self.queued(settings, "events") == 0

    def test_bulk_dry_run_counts_at_once(self, env, settings, store, capsys):
        """No job and no worker needed; the real run (a job on a worker) is in tests/ingest/test_cli.py."""
        for i in range(3):
            dead_event(store, now=1_700_000_000 + i)
        assert cli.main(["replay", "--status", "dead", "--dry-run"]) == 0
        # Nothing routes voucher.updated here (its old actions are not configured): a replay ends ignored.
        per_action = "per action, events that would run it:\n  (nothing)  {}"
        assert capsys.readouterr().out.strip() == "would replay 3 event(s)\n" + per_action.format(3)
        assert cli.main(["replay", "--status", "dead", "--since", "2023-11-14T22:13:21Z", "--dry-run"]) == 0
        assert capsys.readouterr().out.strip() == "would replay 2 event(s)\n" + per_action.format(2)
        assert self.queued(settings, REPLAY_QUEUE) == 0

    def test_everything_needs_all(self, env, store, capsys):
        """Regression: `replay` with no id and no filter replayed every stored event."""
        dead_event(store)
        assert cli.main(["replay"]) == 2
        assert "--all" in capsys.readouterr().err
        assert cli.main(["replay", "--all", "--dry-run"]) == 0
        assert capsys.readouterr().out.strip().splitlines()[0] == "would replay 1 event(s)"

    def test_unknown_event_fails(self, env, store, capsys):
        assert cli.main(["replay", "evt_nope"]) == 1
        assert "no event evt_nope" in capsys.readouterr().err


class TestCount:
    """A dry run counts with the store's own counting; it agrees with walking the ids."""

    @pytest.fixture
    def events(self, store):
        out = []
        for i in range(12):
            name = ("voucher.updated", "voucher.created", "campaign.created")[i % 3]
            event_id = deliver(store, name, now=1_700_000_000 + i)
            status = ("dead", "processed", "invalid", "queued")[i % 4]
            store.set_status(event_id, status, outbox=False, event_type=name)
            out.append(event_id)
        return out

    @pytest.mark.parametrize(
        "flt",
        [
            ReplayFilter(),
            ReplayFilter(status="dead"),
            ReplayFilter(event_type="voucher.created"),
            ReplayFilter(status="invalid", event_type="campaign.created"),
            ReplayFilter(status="invalid", event_type="campaign.created", since=1_700_000_004),
            ReplayFilter(status="processed", event_type="voucher.created", until=1_700_000_006),
            ReplayFilter(since=1_700_000_003, until=1_700_000_007),
            ReplayFilter(status="failed"),
            ReplayFilter(event_type="no.such.type", since=1_700_000_003),
        ],
    )
    def test_agrees_with_the_ids(self, store, events, flt):
        expected = len(
            list(
                store.iter_ids(status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until)
            )
        )
        kw = {"status": flt.status, "event_type": flt.event_type, "since": flt.since, "until": flt.until}
        assert count_matching(store, flt) == store.count_matching(**kw, page=2) == expected

    def test_never_lists_the_ids(self, store, events, monkeypatch):
        """Regression: the dry run built the whole id list (every id, its document read) to count it."""
        monkeypatch.setattr(store, "iter_ids", lambda **_: pytest.fail("listed the ids"))
        monkeypatch.setattr(store.r, "zrange", lambda *a, **k: pytest.fail("listed the ids"))
        assert count_matching(store, ReplayFilter(status="dead")) == 3


class TestJob:
    """A bulk replay job: pages, resumes after a crash, counts every event once, one runner at a time."""

    @pytest.fixture
    def small_pages(self, monkeypatch):
        monkeypatch.setattr(jobs, "JOB_PAGE", 2)

    def job(self, store, queue, flt=None, **kw):
        job = start_job(store, queue, flt or ReplayFilter(status="dead"), **kw)
        assert queue.sent[-1] == (job["job"], "replay_job")
        queue.sent.clear()
        return job["job"]

    def test_pages_through_ties_once_each(self, store, queue, small_pages):
        """Seven events, five received in the same millisecond: pages of 2 cut through the ties."""
        stamps = [1_700_000_000, *([1_700_000_001] * 5), 1_700_000_002]
        events = [dead_event(store, now=t) for t in stamps]
        job_id = self.job(store, queue)
        assert run_job(store, queue, job_id) == "done"
        assert sorted(e for e, _ in queue.sent) == sorted(events)
        assert len(queue.sent) == 7
        view = job_view(store, job_id)
        assert (view["state"], view["total"], view["done"], view["count"]) == ("done", 7, 7, 7)

    def test_resumes_after_a_crash_and_counts_each_once(self, store, small_pages, monkeypatch):
        """A runner dies mid-page (its lock left behind): the next one waits the lock out, finishes the
        page it had written down, and the final count is exact although the status index changed."""
        events = [dead_event(store, now=1_700_000_000 + i) for i in range(5)]

        class Crash(BaseException):
            pass

        class CrashingQueue(RecordingQueue):
            def process_event(self, event_id, *, queue="events"):
                super().process_event(event_id, queue=queue)
                if len(self.sent) == 3:
                    raise Crash

        first = CrashingQueue()
        job_id = self.job(store, first)
        lock = store.key("job", job_id) + ":lock"
        with monkeypatch.context() as m:
            m.setattr(store, "release_job_lock", lambda *_: None)  # a killed process releases nothing
            with pytest.raises(Crash):
                run_job(store, first, job_id)
        assert store.r.exists(lock)
        store.r.pexpire(lock, 300)  # a dead runner's lock lapses (JOB_LOCK_S; shortened here)
        assert job_view(store, job_id)["done"] == 2  # the third was sent but not counted

        second = RecordingQueue()
        assert run_job(store, second, job_id) == "done"
        # The interrupted event is replayed again (replays are idempotent), the rest once, none missed.
        assert [e for e, _ in second.sent] == events[2:]
        view = job_view(store, job_id)
        assert (view["count"], view["total"]) == (5, 5)

    def test_a_second_runner_leaves_it_to_the_first(self, store, queue):
        dead_event(store)
        job_id = self.job(store, queue)
        store.r.set(store.key("job", job_id) + ":lock", "someone", ex=60)
        assert run_job(store, queue, job_id, slice_s=0.3) == "busy"
        assert queue.sent == []
        assert job_view(store, job_id)["state"] == "queued"

    def test_a_slice_ends_and_the_job_goes_on(self, store, queue, small_pages):
        events = [dead_event(store, now=1_700_000_000 + i) for i in range(5)]
        job_id = self.job(store, queue)
        ticks = iter(range(100))
        # The clock moves one "second" per look: a 3 s slice replays two events, then hands over.
        assert run_job(store, queue, job_id, slice_s=3, clock=lambda: next(ticks)) == "running"
        assert job_view(store, job_id)["state"] == "running"
        assert run_job(store, queue, job_id) == "done"
        assert [e for e, _ in queue.sent] == events
        assert job_view(store, job_id)["count"] == 5

    def test_later_arrivals_are_not_part_of_it(self, store, queue):
        """The window ends when the job starts, so a job under constant traffic ends."""
        dead_event(store, now=1_700_000_000)
        job_id = self.job(store, queue, ReplayFilter(status="dead"), now=1_700_000_001)
        dead_event(store, now=1_700_000_002)
        assert run_job(store, queue, job_id) == "done"
        assert job_view(store, job_id)["count"] == 1

    def test_expired_events_are_skipped_and_pruned(self, store, queue):
        events = [dead_event(store, now=1_700_000_000 + i) for i in range(3)]
        store.r.delete(store.key("ev", events[0]))
        job_id = self.job(store, queue)
        assert job_view(store, job_id)["total"] == 3  # the store's count still has the stale entry
        assert run_job(store, queue, job_id) == "done"
        assert [e for e, _ in queue.sent] == events[1:]
        assert job_view(store, job_id)["count"] == 2
        assert store.r.zscore(f"{store.p}:st:dead", events[0]) is None

    def test_state_is_kept_a_while_then_expires(self, store, queue):
        dead_event(store)
        job_id = self.job(store, queue)
        run_job(store, queue, job_id)
        assert 0 < store.r.ttl(store.key("job", job_id)) <= jobs.JOB_TTL_S

    def test_unknown_job(self, store, queue):
        assert run_job(store, queue, "job_nope") is None
        assert job_view(store, "job_nope") is None


class TestResetRule:
    """The rule reset_for_replay applies, and docs/operations.md states it the same way."""

    RESET = ("pending", "failed", "dead")
    KEPT = ("succeeded", "skipped")

    def test_unfinished_actions_are_reset_finished_ones_kept(self, store):
        event_id = deliver(store)
        for status in self.RESET + self.KEPT:
            store.put_action(event_id, status, ActionState(ActionStatus(status), attempts=2))
        store.reset_for_replay(event_id)
        after = {name: str(state.status) for name, state in store.actions(event_id).items()}
        assert after == {**dict.fromkeys(self.RESET, "pending"), **{k: k for k in self.KEPT}}
        assert set(self.RESET + self.KEPT) == {str(s) for s in ActionStatus}  # every status has its rule

    def test_the_operations_guide_says_so(self):
        """Regression: the guide said only `failed` and `dead` actions are reset."""
        doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
        section = doc.split("## Replaying", 1)[1].split("\n## ", 1)[0]
        rule = section.strip().split("\n\n", 1)[0]
        for status in self.RESET + self.KEPT:
            assert f"`{status}`" in rule, status
