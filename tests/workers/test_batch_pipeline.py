"""pipeline.process_batch and the run_batch hook, in-process on a real Valkey: each event of a batch settles
on its own, the batch costs one begin and one settle, and a batch action's outcomes belong to their events."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from core import examples
from core.states import ActionStatus
from ingest.dedup import dedup_key
from tests.fakes import BROKEN, FLAKY, OK, ScriptedAction
from tests.support import record_round_trips
from workers import dispatch, pipeline
from workers.actions import ActionContext, ActionResult, once
from workers.errors import PermanentError, TransientError
from workers.pipeline import Delivery


def deliver(store, doc_or_bytes):
    raw = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="secret:0")
    assert created
    return event_id


def updated(code):
    doc = examples.example_envelope("voucher.updated")
    doc["data"]["voucher"]["code"] = code
    doc["event"]["id"] = f"evt_{code}"
    return doc


def code_of(ctx):
    return ctx.parsed.data.voucher.code


class ByCode:
    """An action whose outcome depends on the voucher's code; it records which codes it was called for."""

    def __init__(self, outcomes):
        self.outcomes = outcomes
        self.calls: list[str] = []

    def __call__(self, ctx):
        self.calls.append(code_of(ctx))
        outcome = self.outcomes.get(code_of(ctx), OK)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Batched(ByCode):
    """A batch-capable action: run_batch answers per context; it records each call's codes."""

    def __init__(self, outcomes, *, raises=None):
        super().__init__(outcomes)
        self.raises = raises
        self.batches: list[list[str]] = []

    def run_batch(self, ctxs: Sequence[ActionContext]) -> list[ActionResult | Exception]:
        self.batches.append([code_of(c) for c in ctxs])
        if self.raises is not None:
            raise self.raises
        return [self.outcomes.get(code_of(c), OK) for c in ctxs]


@pytest.fixture
def route(monkeypatch, runtime):
    def set_route(**actions):
        monkeypatch.setitem(dispatch.ROUTES, "voucher.updated", tuple(actions))
        runtime.actions = actions

    return set_route


def run(store, runtime, *docs):
    ids = [deliver(store, d) for d in docs]
    return ids, pipeline.process_batch([Delivery(i, f"m{n}", "events") for n, i in enumerate(ids)], runtime)


class TestProcessBatch:
    def test_mixed_batch_settles_each_on_its_own(self, runtime, store, route):
        """Valid, invalid, a failing action, a raising one, a permanent refusal: each gets its own status,
        the good ones are not retried or delayed by the others."""
        action = ByCode({"FLAKY": FLAKY, "BOOM": RuntimeError("bug"), "NOPE": BROKEN})
        route(act=action)
        docs = [updated("A"), b"not json", updated("FLAKY"), updated("BOOM"), updated("NOPE"), updated("B")]
        ids, statuses = run(store, runtime, *docs)
        assert statuses == ["processed", "invalid", "failed", "failed", "dead", "processed"]
        assert [store.document(i)["status"] for i in ids] == statuses
        assert action.calls == ["A", "FLAKY", "BOOM", "NOPE", "B"]
        boom = store.document(ids[3])["actions"]["act"]
        assert (boom["status"], boom["reason"]) == ("failed", "unexpected")
        assert store.document(ids[0])["actions"]["act"]["attempts"] == 1

    def test_one_begin_and_one_settle_for_the_batch(self, runtime, store, route, monkeypatch):
        """Events whose outcome records no side effect settle together at the end: two script calls in all
        (the settle is one pipeline of set_status calls)."""
        route(act=ByCode({}))
        ids = [deliver(store, updated(c)) for c in "ABCD"]
        trips = record_round_trips(store.r, monkeypatch, pipeline_label="PIPELINE")
        statuses = pipeline.process_batch([Delivery(i) for i in ids], runtime)
        assert statuses == ["processed"] * 4
        assert trips == ["EVALSHA", "PIPELINE:" + " ".join(["EVALSHA"] * 4)]

    def test_an_outcome_with_a_side_effect_is_written_at_once(self, runtime, store, mailer, route):
        """An email's `done` mark is never held back for the rest of the batch: by the time the next event
        runs, the emailed event is settled (a crash then cannot make a retry email twice)."""
        seen = {}
        ids: list[str] = []

        def act(ctx):
            if code_of(ctx) == "A":
                once(ctx, "side:A", lambda: None, what="effect", hold_s=30, remember_s=60)
            else:
                seen["a"] = store.document(ids[0])["status"]
                seen["done"] = store.reserve("side:A", "another-attempt", 30)
            return OK

        route(act=act)
        ids += [deliver(store, updated("A")), deliver(store, updated("B"))]
        assert pipeline.process_batch([Delivery(i) for i in ids], runtime) == ["processed", "processed"]
        assert seen == {"a": "processed", "done": "done"}

    def test_two_messages_for_one_event_run_it_once(self, runtime, store, route):
        """A duplicate hand-off in the same batch: the event runs once, both messages get its status."""
        action = ByCode({})
        route(act=action)
        event_id = deliver(store, updated("A"))
        deliveries = [Delivery(event_id, "m1", "events"), Delivery(event_id, "m2", "replay")]
        assert pipeline.process_batch(deliveries, runtime) == ["processed", "processed"]
        assert action.calls == ["A"]
        assert store.document(event_id)["attempts"] == 1

    def test_finished_and_missing_events(self, runtime, store, route):
        route(act=ByCode({}))
        (done,), _ = run(store, runtime, updated("A"))
        assert pipeline.process_batch([Delivery(done), Delivery("evt_gone")], runtime) == [
            "processed",
            "missing",
        ]

    def test_an_event_that_raises_outside_its_actions_is_its_own_error(
        self, runtime, store, route, monkeypatch
    ):
        """A bug outside any action (here, routing) marks that event's message `error`; the others settle."""
        route(act=ByCode({}))
        real = dispatch.actions_for

        def actions_for(event_type, *args, **kwargs):
            if event_type == "voucher.deleted":
                raise RuntimeError("routing bug")
            return real(event_type, *args, **kwargs)

        monkeypatch.setattr(dispatch, "actions_for", actions_for)
        deleted = examples.example_envelope("voucher.deleted")
        ids, statuses = run(store, runtime, updated("A"), deleted, updated("B"))
        assert statuses == ["processed", "error", "processed"]
        # It was begun: its outbox lease brings it back to a worker, as for a single event that raised.
        assert store.document(ids[1])["status"] == "processing"
        assert store.r.zscore(f"{store.p}:outbox", ids[1]) is not None


class TestRunBatchHook:
    def test_called_once_with_every_due_event(self, runtime, store, route):
        """One run_batch call for the batch's events, in order; __call__ is not used."""
        action = Batched({})
        route(act=action)
        _, statuses = run(store, runtime, updated("A"), b"not json", updated("B"), updated("C"))
        assert statuses == ["processed", "invalid", "processed", "processed"]
        assert (action.batches, action.calls) == ([["A", "B", "C"]], [])

    def test_outcomes_are_isolated_per_event(self, runtime, store, route, clock):
        """Each element is its event's: a TransientError retries that event alone, a PermanentError ends it,
        any other exception is unexpected (retried); the others succeed. Later, only the retry runs."""
        action = Batched({"FLAKY": FLAKY, "NOPE": BROKEN, "BOOM": ValueError("bad")})
        route(act=action)
        ids, statuses = run(store, runtime, updated("A"), updated("FLAKY"), updated("NOPE"), updated("BOOM"))
        assert statuses == ["processed", "failed", "dead", "failed"]
        acts = [store.document(i)["actions"]["act"] for i in ids]
        assert [(a["status"], a["reason"]) for a in acts[1:]] == [
            ("failed", "timeout"),
            ("dead", "http_400"),
            ("failed", "unexpected"),
        ]
        assert all(a["attempts"] == 1 for a in acts)
        action.outcomes = {}
        clock.now += 3600
        assert pipeline.process_batch([Delivery(i) for i in ids], runtime) == [
            "processed",
            "processed",
            "dead",
            "processed",
        ]
        assert action.batches[1] == ["FLAKY", "BOOM"]

    def test_a_raising_run_batch_fails_each_attempt(self, runtime, store, route):
        """run_batch itself raised: every event's attempt gets that exception; other actions still run."""
        action = Batched({}, raises=TransientError("bulk endpoint down", reason="bulk_down"))
        other = ScriptedAction(OK)
        route(act=action, other=other)
        ids, statuses = run(store, runtime, updated("A"), updated("B"))
        assert statuses == ["failed", "failed"]
        for event_id in ids:
            act = store.document(event_id)["actions"]["act"]
            assert (act["status"], act["reason"]) == ("failed", "bulk_down")
            assert store.document(event_id)["actions"]["other"]["status"] == ActionStatus.SUCCEEDED
        assert other.calls == 2

    def test_a_wrong_number_of_outcomes_fails_each_attempt(self, runtime, store, route):
        class Short(Batched):
            def run_batch(self, ctxs):
                return [OK]

        route(act=Short({}))
        _, statuses = run(store, runtime, updated("A"), updated("B"))
        assert statuses == ["failed", "failed"]

    def test_each_context_has_its_own_attempt_and_effects(self, runtime, store, route):
        """Side effects recorded through one context are that event's: written with its settle."""
        contexts = []

        class Effects(Batched):
            def run_batch(self, ctxs):
                contexts.extend(ctxs)
                for c in ctxs:
                    once(c, f"side:{code_of(c)}", lambda: None, what="effect", hold_s=30, remember_s=60)
                return [OK for _ in ctxs]

        route(act=Effects({}))
        ids, statuses = run(store, runtime, updated("A"), updated("B"))
        assert statuses == ["processed", "processed"]
        assert len({c.attempt_id for c in contexts}) == 2
        assert [c.event_id for c in contexts] == ids
        assert [len(c.effects) for c in contexts] == [1, 1]
        assert contexts[0].effects is not contexts[1].effects
        assert store.reserve("side:A", "x", 30) == store.reserve("side:B", "x", 30) == "done"

    def test_single_events_call_the_action(self, runtime, store, route):
        """process_event (a batch of one without batching) calls the action itself."""
        action = Batched({"A": PermanentError("no", reason="no")})
        route(act=action)
        event_id = deliver(store, updated("A"))
        assert pipeline.process_event(event_id, runtime) == "dead"
        assert (action.calls, action.batches) == (["A"], [])
