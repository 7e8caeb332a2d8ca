"""Handlers: users' functions on any event type, run by the pipeline as actions like the built-in ones."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from datetime import datetime

import pytest

from core import examples
from core.states import ActionStatus, Status
from ingest.dedup import dedup_key
from workers import handlers, pipeline
from workers.handlers import Event, HandlerAction, HandlerError, HandlerSpec, PermanentError, Skip, on
from workers.runtime import build_runtime


def deliver(store, doc):
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="secret:0")
    assert created
    return event_id


def voucher_updated():
    return examples.example_envelope("voucher.updated")


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Write a handler module into a folder on sys.path: `modules("name", source)` returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written = []

    def write(name, source):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def runtime_with(settings, store, *names, clock=None):
    rt = build_runtime(settings.with_(handlers=names), store=store)
    if clock is not None:
        rt.clock = clock
    rt.rng = lambda: 0.0
    return rt


class TestOn:
    def test_records_the_spec_and_leaves_the_function(self):
        """@on returns the function unchanged; the action name is handler:<module>.<function>."""

        @on("voucher.*", max_attempts=3, max_age=60, timeout=5)
        def sync(event):
            return None

        spec = sync.__voucherify_handler__
        assert (
            spec.name
            == f"handler:{__name__}.TestOn.test_records_the_spec_and_leaves_the_function.<locals>.sync"
        )
        assert (spec.patterns, spec.max_attempts, spec.max_age, spec.timeout) == (("voucher.*",), 3, 60, 5)
        assert spec.wants("voucher.updated")
        assert not spec.wants("campaign.created")
        assert sync(None) is None

    def test_needs_a_pattern(self):
        with pytest.raises(TypeError):
            on()


class TestLoad:
    def test_module_order_then_definition_order(self, modules):
        a = modules(
            "hmod_a",
            """
            from workers.handlers import on
            @on("voucher.updated")
            def second(event): pass
            @on("voucher.updated", name="first-by-name")
            def first(event): pass
            """,
        )
        b = modules(
            "hmod_b", ("from workers.handlers import on\n@on('campaign.*')\ndef third(event): pass\n")
        )
        specs = handlers.load([a, b])
        assert [s.name for s in specs] == ["handler:hmod_a.second", "first-by-name", "handler:hmod_b.third"]

    def test_import_error_names_module_and_line(self, modules):
        name = modules("hmod_broken", ("from workers.handlers import on\nraise RuntimeError('boom')\n"))
        with pytest.raises(HandlerError, match=r"hmod_broken.*hmod_broken\.py:2.*RuntimeError: boom"):
            handlers.load([name])

    def test_missing_module(self):
        with pytest.raises(HandlerError, match=r"no_such_module_here.*failed to import"):
            handlers.load(["no_such_module_here"])

    def test_a_typo_in_a_type_stops_the_load(self, modules):
        """A pattern matching no documented type is an error with the handler, the line and the fix."""
        name = modules(
            "hmod_typo", ("from workers.handlers import on\n@on('voucher.udpated')\ndef f(e): pass\n")
        )
        with pytest.raises(HandlerError, match=r"hmod_typo\.py:2: 'voucher\.udpated' matches no event type"):
            handlers.load([name])

    def test_undocumented_types_with_the_flag(self, modules):
        name = modules(
            "hmod_new",
            (
                "from workers.handlers import on\n"
                "@on('voucher.teleported', undocumented=True)\n"
                "def f(e): pass\n"
            ),
        )
        assert handlers.load([name])[0].patterns == ("voucher.teleported",)

    def test_duplicate_names_and_builtin_names(self, modules):
        dup = modules(
            "hmod_dup",
            (
                "from workers.handlers import on\n"
                "@on('voucher.*', name='x')\n"
                "def a(e): pass\n"
                "@on('campaign.*', name='x')\n"
                "def b(e): pass\n"
            ),
        )
        with pytest.raises(HandlerError, match="two actions are named 'x'"):
            handlers.load([dup])
        builtin = modules(
            "hmod_builtin",
            ("from workers.handlers import on\n@on('voucher.*', name='notify_customer')\ndef a(e): pass\n"),
        )
        with pytest.raises(HandlerError, match="name of a built-in action"):
            handlers.load([builtin], reserved={"notify_customer"})

    def test_timeout_within_the_task_limit(self, modules):
        name = modules(
            "hmod_slow", ("from workers.handlers import on\n@on('voucher.*', timeout=90)\ndef a(e): pass\n")
        )
        with pytest.raises(HandlerError, match="timeout=90 must be above 0 and below the task time limit"):
            handlers.load([name], max_timeout=60)

    def test_a_module_without_handlers(self, modules):
        name = modules("hmod_empty", "x = 1\n")
        with pytest.raises(HandlerError, match="registers no handler"):
            handlers.load([name])


class TestEvent:
    def test_what_a_handler_sees(self, modules, settings, store):
        """id, voucherify_id, type, created_at, source, typed data and the payload."""
        name = modules(
            "hmod_seen",
            """
            from workers.handlers import on
            SEEN = []
            @on("voucher.updated")
            def look(event):
                SEEN.append(event)
                return f"code {event.data.voucher.code}"
            """,
        )
        rt = runtime_with(settings, store, name)
        doc = voucher_updated()
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, rt) == Status.PROCESSED
        (event,) = sys.modules[name].SEEN
        assert isinstance(event, Event)
        assert (event.id, event.type, event.voucherify_id) == (
            event_id,
            "voucher.updated",
            doc["event"]["id"],
        )
        assert isinstance(event.created_at, datetime)
        assert event.created_at.tzinfo is not None
        assert (event.source.id, event.source.object) == ("wh_test", "webhook")
        assert event.data.voucher.code == doc["data"]["voucher"]["code"]
        assert event.payload == doc
        state = store.actions(event_id)[f"handler:{name}.look"]
        assert (state.status, state.history[-1]["detail"]) == (
            ActionStatus.SUCCEEDED,
            f"code {event.data.voucher.code}",
        )

    def test_data_is_none_for_a_type_without_a_schema(self, modules, settings, store):
        name = modules(
            "hmod_noschema",
            (
                "from workers.handlers import on\n"
                "SEEN = []\n"
                "@on('campaign.earning_rule.*')\n"
                "def f(e): SEEN.append(e.data)\n"
            ),
        )
        rt = runtime_with(settings, store, name)
        event_id = deliver(store, examples.envelope("campaign.earning_rule.assigned", {"any": 1}))
        assert pipeline.process_event(event_id, rt) == Status.PROCESSED
        assert sys.modules[name].SEEN == [None]


class TestOutcomes:
    def test_skip(self, modules, settings, store):
        name = modules(
            "hmod_skip",
            (
                "from workers.handlers import on, Skip\n"
                "@on('voucher.updated')\n"
                "def f(e): return Skip('not ours')\n"
            ),
        )
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, runtime_with(settings, store, name)) == Status.PROCESSED
        state = store.actions(event_id)[f"handler:{name}.f"]
        assert (state.status, state.reason) == (ActionStatus.SKIPPED, "not ours")

    def test_retries_then_succeeds_with_its_own_limits(self, modules, settings, store):
        """Raising retries with backoff; max_attempts is the handler's own."""
        name = modules(
            "hmod_flaky",
            """
            from workers.handlers import on, TransientError
            CALLS = []
            @on("voucher.updated", max_attempts=3)
            def f(event):
                CALLS.append(1)
                if len(CALLS) < 3:
                    raise TransientError("crm timed out", reason="crm_timeout")
                return "synced"
            """,
        )
        rt = runtime_with(settings, store, name)
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, rt) == Status.FAILED
        assert pipeline.process_event(event_id, rt) == Status.FAILED
        assert pipeline.process_event(event_id, rt) == Status.PROCESSED
        state = store.actions(event_id)[f"handler:{name}.f"]
        assert [h["outcome"] for h in state.history] == ["failed", "failed", "succeeded"]

    def test_max_attempts_makes_it_dead(self, modules, settings, store):
        name = modules(
            "hmod_always",
            (
                "from workers.handlers import on\n"
                "@on('voucher.updated', max_attempts=2)\n"
                "def f(e): raise ValueError('bug')\n"
            ),
        )
        rt = runtime_with(settings, store, name)
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, rt) == Status.FAILED
        assert pipeline.process_event(event_id, rt) == Status.DEAD
        state = store.actions(event_id)[f"handler:{name}.f"]
        assert (state.attempts, state.reason) == (2, "unexpected")
        assert "ValueError: bug" in state.last_error

    def test_permanent_error_is_dead_at_once(self, modules, settings, store):
        name = modules(
            "hmod_perm",
            (
                "from workers.handlers import on, PermanentError\n"
                "@on('voucher.updated')\n"
                "def f(e): raise PermanentError('crm says 400', reason='crm_rejected')\n"
            ),
        )
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, runtime_with(settings, store, name)) == Status.DEAD
        assert store.document(event_id)["reason"] == "crm_rejected"

    def test_a_wrong_return_type_is_permanent(self, modules, settings, store):
        name = modules(
            "hmod_ret", ("from workers.handlers import on\n@on('voucher.updated')\ndef f(e): return 42\n")
        )
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, runtime_with(settings, store, name)) == Status.DEAD
        assert store.document(event_id)["reason"] == "bad_return"

    def test_timeout_interrupts_an_attempt(self, modules, settings, store):
        """An attempt past the handler's timeout is a transient `timeout` failure."""
        name = modules(
            "hmod_timeout",
            (
                "import time\n"
                "from workers.handlers import on\n"
                "@on('voucher.updated', timeout=0.2)\n"
                "def f(e): time.sleep(5)\n"
            ),
        )
        event_id = deliver(store, voucher_updated())
        started = time.monotonic()
        assert pipeline.process_event(event_id, runtime_with(settings, store, name)) == Status.FAILED
        assert time.monotonic() - started < 4
        assert store.actions(event_id)[f"handler:{name}.f"].reason == "timeout"

    def test_two_handlers_are_isolated_and_ordered(self, modules, settings, store):
        """One dead, the other succeeded exactly once; built-in first, handlers in order."""
        name = modules(
            "hmod_two",
            """
            from workers.handlers import on, PermanentError
            CALLS = []
            @on("publication.succeeded")
            def bad(event):
                CALLS.append("bad")
                raise PermanentError("no", reason="nope")
            @on("publication.*")
            def good(event):
                CALLS.append("good")
            """,
        )
        rt = runtime_with(settings, store, name)
        doc = examples.example_envelope("publication.succeeded")
        doc["data"]["customer"]["email"] = "alex@example.com"
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, rt) == Status.DEAD
        assert pipeline.process_event(event_id, rt) == Status.DEAD  # settled: nothing runs again
        assert sys.modules[name].CALLS == ["bad", "good"]
        doc = store.document(event_id)
        assert list(doc["actions"]) == ["handler:hmod_two.bad", "handler:hmod_two.good", "notify_customer"]
        assert doc["actions"]["handler:hmod_two.good"]["status"] == "succeeded"
        assert doc["actions"]["notify_customer"]["status"] == "succeeded"


class TestOnce:
    def test_once_per_key_across_events(self, modules, settings, store):
        """event.once(key, fn): fn runs for the first event with the key, not for a second."""
        name = modules(
            "hmod_once",
            """
            from workers.handlers import on
            DONE = []
            @on("voucher.updated")
            def f(event):
                ran = event.once(event.data.voucher.code, lambda: DONE.append(event.id))
                return "ran" if ran else "already"
            """,
        )
        rt = runtime_with(settings, store, name)
        first, second = deliver(store, voucher_updated()), deliver(store, voucher_updated())
        pipeline.process_event(first, rt)
        pipeline.process_event(second, rt)
        assert [first] == sys.modules[name].DONE
        key = store.r.keys(f"{store.p}:once:handler:{name}.f:*")
        assert len(key) == 1
        assert store.r.ttl(key[0]) > 300 * 86400  # remembered for NOTIFY_REMEMBER_SECONDS

    def test_a_failed_effect_frees_the_key(self, modules, settings, store):
        name = modules(
            "hmod_once_fail",
            """
            from workers.handlers import on
            CALLS = []
            def effect():
                CALLS.append(1)
                if len(CALLS) == 1:
                    raise ConnectionError("down")
            @on("voucher.updated")
            def f(event):
                event.once("k", effect)
            """,
        )
        rt = runtime_with(settings, store, name)
        event_id = deliver(store, voucher_updated())
        assert pipeline.process_event(event_id, rt) == Status.FAILED
        assert pipeline.process_event(event_id, rt) == Status.PROCESSED
        assert len(sys.modules[name].CALLS) == 2


class TestBuiltinEmailIsAHandler:
    def test_notify_customer_is_a_handler_action(self, runtime):
        """The customer email is written on the public API: a HandlerAction whose function takes an Event."""
        notify = runtime.actions["notify_customer"]
        assert isinstance(notify, HandlerAction)
        assert isinstance(notify.spec, HandlerSpec)
        assert notify.spec.patterns == ("publication.succeeded", "voucher.published")
        assert notify.prefix == "notify"  # the keys "already emailed" has always been kept under


def test_skip_is_exported():
    assert Skip("x").reason == "x"
    assert issubclass(PermanentError, Exception)
