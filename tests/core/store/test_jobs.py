"""Bulk replay jobs in the store: the job's hash, its one runner's lock, counting what a filter matches."""

from __future__ import annotations

from core.states import Status
from core.store.jobs import JOB_LOCK_S, JOB_TTL_S


class TestJobHash:
    def test_saved_fields_come_back_as_strings_and_expire(self, store):
        store.save_job("job_1", {"state": "queued", "total": 3, "status": None}, incr_done=2)
        assert store.load_job("job_1") == {"state": "queued", "total": "3", "status": "", "done": "2"}
        assert 0 < store.r.ttl(store.key("job", "job_1")) <= JOB_TTL_S

    def test_unknown_job(self, store):
        assert store.load_job("job_nope") is None


class TestLock:
    def test_one_runner_and_only_the_holder_releases(self, store):
        assert store.take_job_lock("job_1", "a")
        assert not store.take_job_lock("job_1", "b")
        store.release_job_lock("job_1", "b")  # not b's: nothing happens
        assert not store.take_job_lock("job_1", "b")
        store.release_job_lock("job_1", "a")
        assert store.take_job_lock("job_1", "b")

    def test_a_dead_runner_lock_lapses(self, store):
        store.take_job_lock("job_1", "a")
        assert 0 < store.r.ttl(f"{store.key('job', 'job_1')}:lock") <= JOB_LOCK_S


class TestCount:
    def test_by_index_and_window_without_listing(self, store):
        ids = [
            store.accept(b"{}", dedup_key=f"k{i}", headers={}, secret="s", now=10.0 + i)[0] for i in range(4)
        ]
        for i in ids[:3]:
            store.set_status(i, Status.DEAD, outbox=False, event_type="voucher.updated")
        assert store.count_matching() == 4
        assert store.count_matching(status="dead") == 3
        assert store.count_matching(status="dead", event_type="voucher.updated") == 3
        assert store.count_matching(status="dead", event_type="voucher.updated", since=11.0, until=12.0) == 2
        assert store.count_matching(event_type="campaign.created") == 0
