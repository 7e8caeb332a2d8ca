import json

import pytest
import redis

from core import examples
from ingest.dedup import dedup_key
from tests.fakes import BROKEN, FLAKY, OK, ScriptedAction
from tests.support import record_round_trips
from workers import dispatch, pipeline
from workers.errors import PermanentError, TransientError


def deliver(store, doc_or_bytes, source=""):
    """Store a delivery the way the intake does and return its event id."""
    raw = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    event_id, created = store.accept(
        raw, dedup_key=dedup_key(raw, source), headers={}, secret="secret:0", source=source
    )
    assert created
    return event_id


def plain_text(msg):
    """The email's text/plain part, decoded (the packaged templates add an HTML alternative)."""
    (part,) = [p for p in msg.walk() if p.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode(part.get_content_charset())


def publication(email="alex@example.com", pub_id="pub_1", **overrides):
    doc = examples.example_envelope("publication.succeeded", **overrides)
    doc["data"]["customer"]["email"] = email
    doc["data"]["publication"]["id"] = pub_id
    return doc


class TestProcessEvent:
    def test_publication_emails_the_customer(self, runtime, store, mailer):
        """publication.succeeded: the customer gets one email with their code and the campaign name."""
        event_id = deliver(store, publication())
        assert pipeline.process_event(event_id, runtime) == "processed"
        (msg,) = mailer.sent
        assert "alex@example.com" in msg["To"]
        assert "ZERO-8" in plain_text(msg)
        assert "Free product zero items-test" in msg["Subject"]
        assert msg["Message-ID"] == "<pub_1@example.com>"
        doc = store.document(event_id)
        assert doc["status"] == "processed"
        assert doc["event_type"] == "publication.succeeded"
        assert doc["attempts"] == 1
        assert doc["actions"]["notify_customer"]["status"] == "succeeded"
        assert store.outbox_size() == 0

    def test_processing_twice_sends_one_email(self, runtime, store, mailer):
        """A redelivered task for a finished event does nothing."""
        event_id = deliver(store, publication())
        pipeline.process_event(event_id, runtime)
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert len(mailer.sent) == 1

    def test_one_email_per_publication_across_event_types(self, runtime, store, mailer):
        """voucher.published and publication.succeeded for one publication: one email."""
        pub = deliver(store, publication(pub_id="pub_same"))
        vp = examples.example_envelope("voucher.published-2")
        vp["event"]["id"] = "evvou_other"
        vp["data"]["publication"]["id"] = "pub_same"
        other = deliver(store, vp)
        assert pipeline.process_event(pub, runtime) == "processed"
        assert pipeline.process_event(other, runtime) == "processed"
        assert len(mailer.sent) == 1
        assert store.document(other)["actions"]["notify_customer"]["status"] == "skipped"

    def test_publication_another_worker_is_emailing_waits_for_its_reservation(
        self, runtime, store, mailer, clock
    ):
        """Busy: no second email; the retry is due when the holder's reservation lapses (it may have died)."""
        runtime.settings = runtime.settings.with_(action_backoff_cap_s=3600.0)
        event_id = deliver(store, publication(pub_id="pub_busy"))
        assert store.reserve("notify:pub_busy", "a-worker-that-died", 30) == "acquired"
        assert pipeline.process_event(event_id, runtime) == "failed"
        action = store.document(event_id)["actions"]["notify_customer"]
        assert action["reason"] == "busy"
        assert mailer.sent == []
        assert store.claim_due(now=clock.now + 25) == []
        assert store.claim_due(now=clock.now + 31) == [event_id]

    def test_store_blip_after_the_send_does_not_send_twice(self, runtime, store, mailer, monkeypatch):
        """Regression: if the store did not answer when the worker recorded `done` right after the SMTP
        server accepted the email (a Redis restart, a failover), the attempt failed, the reservation lapsed
        and the retry emailed the customer again. Recording an email that was sent is now worth waiting
        for, within the reservation. (It is written with the event's final status, in one round trip.)"""
        real_evalsha, failures = store.r.evalsha, [redis.ConnectionError("Connection refused")] * 2

        def flaky_evalsha(*args):
            if any(str(a).startswith("done:") for a in args) and failures:
                raise failures.pop()
            return real_evalsha(*args)

        monkeypatch.setattr(store.r, "evalsha", flaky_evalsha)
        monkeypatch.setattr("core.store.COMPLETE_RETRY_INTERVAL_S", 0.01)
        event_id = deliver(store, publication(pub_id="pub_blip"))
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert failures == []
        assert len(mailer.sent) == 1
        assert store.reserve("notify:pub_blip", "another-attempt", 30) == "done"

    def test_customer_without_email_is_skipped(self, runtime, store, mailer):
        """No email address is a reason, not a failure: the event is processed, the action skipped."""
        event_id = deliver(store, examples.example_envelope("publication.succeeded"))  # email is null there
        assert pipeline.process_event(event_id, runtime) == "processed"
        action = store.document(event_id)["actions"]["notify_customer"]
        assert action["status"] == "skipped"
        assert action["reason"] == "customer has no email address"
        assert mailer.sent == []

    @pytest.mark.parametrize(
        "name",
        ["voucher.created", "voucher.updated", "voucher.enabled", "campaign.vouchers.generation.completed"],
    )
    def test_seed_types_without_route_are_ignored(self, runtime, store, name):
        """A valid event no action wants is `ignored`, with its type recorded."""
        event_id = deliver(store, examples.example_envelope(name))
        assert pipeline.process_event(event_id, runtime) == "ignored"
        doc = store.document(event_id)
        assert doc["event_type"] == name
        assert doc["reason"] == "no_route"

    def test_unknown_type_is_ignored(self, runtime, store):
        """A type Voucherify added after us is stored and ignored, never an error."""
        event_id = deliver(store, examples.envelope("campaign.brand_new_thing.created", {"anything": 1}))
        assert pipeline.process_event(event_id, runtime) == "ignored"
        assert store.document(event_id)["reason"] == "unknown_type"

    def test_documented_type_without_a_schema_is_knowingly_ignored(self, runtime, store):
        """A type Voucherify documents that we have no schema for is on the ignore list: `no_route`."""
        event_id = deliver(store, examples.envelope("campaign.earning_rule.assigned", {"anything": 1}))
        assert pipeline.process_event(event_id, runtime) == "ignored"
        assert store.document(event_id)["reason"] == "no_route"

    @pytest.mark.parametrize(
        ("body", "path"),
        [
            (b"not json", "_schema"),
            (b"[1, 2]", "_schema"),
            (b'{"id": "whs_1", "data": {}}', "event"),
        ],
    )
    def test_unusable_body_is_invalid_with_field_keyed_errors(self, runtime, store, body, path):
        """Invalid events are quarantined with their messages, and leave the outbox (no retry)."""
        event_id = deliver(store, body)
        assert pipeline.process_event(event_id, runtime) == "invalid"
        doc = store.document(event_id)
        assert path in doc["errors"]
        assert store.outbox_size() == 0

    def test_schema_violation_is_invalid(self, runtime, store, mailer):
        doc = publication()
        doc["data"]["customer"]["email"] = "not-an-email"
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, runtime) == "invalid"
        assert store.document(event_id)["errors"]["data"]["customer"]["email"]
        assert mailer.sent == []

    @pytest.mark.parametrize(
        "raw",
        [b"[" * 100_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
        ids=["100k-arrays", "10k-objects"],
    )
    def test_deeply_nested_body_is_invalid_too_deep(self, runtime, store, raw):
        """No RecursionError: a body nested past the bound is quarantined, never crashed on or retried."""
        event_id = deliver(store, raw)
        assert pipeline.process_event(event_id, runtime) == "invalid"
        doc = store.document(event_id)
        assert doc["reason"] == "too_deep"
        assert doc["errors"]

    def test_missing_event_is_reported(self, runtime):
        assert pipeline.process_event("evt_nope", runtime) == "missing"

    def test_event_whose_worker_keeps_dying_goes_dead(self, runtime, store, clock):
        """Bounded: after MAX_EVENT_STARTS starts that never finished, the event is dead, not looped."""
        event_id = deliver(store, publication())
        for _ in range(pipeline.MAX_EVENT_STARTS):
            # What a start looks like to the store when the worker dies right after it.
            ev = store.load(event_id)
            store.set_status(
                event_id,
                "processing",
                attempts=ev.attempts + 1,
                unfinished_starts=ev.unfinished_starts + 1,
            )
        assert pipeline.process_event(event_id, runtime) == "dead"
        doc = store.document(event_id)
        assert doc["reason"] == "too_many_starts"
        assert doc["attempts"] == pipeline.MAX_EVENT_STARTS

    def test_retries_that_finish_are_not_lost_starts(self, runtime, store, mailer, clock):
        """Regression: every start counted towards MAX_EVENT_STARTS, including the ones that finished by
        scheduling an action's retry, so an action failing for a while killed its event after 10 attempts
        as `too_many_starts` ("worker lost each time"), long before ACTION_MAX_ATTEMPTS."""
        runtime.settings = runtime.settings.with_(action_max_attempts=pipeline.MAX_EVENT_STARTS + 5)
        mailer.fail_with = TransientError("smtp down", reason="smtp_unreachable")
        event_id = deliver(store, publication())
        for _ in range(pipeline.MAX_EVENT_STARTS + 2):
            assert pipeline.process_event(event_id, runtime) == "failed"
            clock.now += 60
        mailer.fail_with = None
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert store.document(event_id)["attempts"] == pipeline.MAX_EVENT_STARTS + 3
        assert len(mailer.sent) == 1


class TestRetries:
    @pytest.fixture
    def event_id(self, store):
        return deliver(store, publication())

    def test_transient_failure_schedules_a_retry(self, runtime, store, mailer, clock, event_id):
        """A transient error: action `failed`, event `failed`, back in the outbox at the next attempt time."""
        runtime.settings = runtime.settings.with_(action_backoff_base_s=10.0)
        mailer.fail_with = TransientError("smtp down", reason="smtp_unreachable")
        assert pipeline.process_event(event_id, runtime) == "failed"
        doc = store.document(event_id)
        action = doc["actions"]["notify_customer"]
        assert action["status"] == "failed"
        assert action["attempts"] == 1
        assert action["last_error"] == "smtp down"
        assert doc["reason"] == "smtp_unreachable"
        due = 10.0  # rng() == 1.0: the full first backoff
        assert store.claim_due(now=clock.now + due - 0.5) == []
        assert store.claim_due(now=clock.now + due + 0.5) == [event_id]

    def test_retry_succeeds_later_and_sends_once(self, runtime, store, mailer, clock, event_id):
        mailer.fail_with = TransientError("smtp down")
        pipeline.process_event(event_id, runtime)
        mailer.fail_with = None
        clock.now += 3600
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert len(mailer.sent) == 1
        history = store.document(event_id)["actions"]["notify_customer"]["history"]
        assert [h["outcome"] for h in history] == ["failed", "succeeded"]

    def test_not_yet_due_action_is_not_run(self, runtime, store, mailer, clock, event_id):
        """A redelivery before the next attempt time does not retry early."""
        mailer.fail_with = TransientError("smtp down")
        runtime.rng = lambda: 0.5
        runtime.settings = runtime.settings.with_(action_backoff_base_s=60.0)
        pipeline.process_event(event_id, runtime)
        mailer.fail_with = None
        clock.now += 10
        assert pipeline.process_event(event_id, runtime) == "failed"
        assert mailer.sent == []

    def test_permanent_failure_is_dead_without_retry(self, runtime, store, mailer, event_id):
        mailer.fail_with = PermanentError("550 no such user", reason="smtp_recipient_refused")
        assert pipeline.process_event(event_id, runtime) == "dead"
        doc = store.document(event_id)
        assert doc["actions"]["notify_customer"]["status"] == "dead"
        assert doc["reason"] == "smtp_recipient_refused"
        assert store.outbox_size() == 0

    def test_gives_up_after_max_attempts(self, runtime, store, mailer, clock, event_id):
        runtime.settings = runtime.settings.with_(action_max_attempts=3)
        mailer.fail_with = TransientError("smtp down")
        statuses = []
        for _ in range(3):
            statuses.append(pipeline.process_event(event_id, runtime))
            clock.now += 10_000
        assert statuses == ["failed", "failed", "dead"]
        assert store.document(event_id)["actions"]["notify_customer"]["attempts"] == 3

    def test_gives_up_after_max_age(self, runtime, store, mailer, clock, event_id):
        runtime.settings = runtime.settings.with_(action_max_age_s=100)
        mailer.fail_with = TransientError("smtp down")
        assert pipeline.process_event(event_id, runtime) == "failed"
        clock.now += 101
        assert pipeline.process_event(event_id, runtime) == "dead"

    def test_unexpected_exception_is_retried_and_recorded(self, runtime, store, mailer, event_id):
        """A bug in an action is not lost in a log: it is retried (bounded) and shown on the event."""
        mailer.fail_with = KeyError("boom")
        assert pipeline.process_event(event_id, runtime) == "failed"
        action = store.document(event_id)["actions"]["notify_customer"]
        assert action["reason"] == "unexpected"
        assert "KeyError" in action["last_error"]

    def test_retry_after_is_honoured(self, runtime, store, mailer, clock, event_id):
        mailer.fail_with = TransientError("429", retry_after=900)
        pipeline.process_event(event_id, runtime)
        assert store.claim_due(now=clock.now + 899) == []
        assert store.claim_due(now=clock.now + 901) == [event_id]


class TestFanOut:
    def test_each_action_retries_alone(self, runtime, store, clock, monkeypatch):
        """Two actions: the failing one retries; the one that succeeded is not run again."""
        good, flaky = ScriptedAction(OK), ScriptedAction(FLAKY, OK)
        monkeypatch.setitem(dispatch.ROUTES, "voucher.updated", ("good", "flaky"))
        runtime.actions = {"good": good, "flaky": flaky}
        event_id = deliver(store, examples.example_envelope("voucher.updated"))
        assert pipeline.process_event(event_id, runtime) == "failed"
        clock.now += 3600
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert (good.calls, flaky.calls) == (1, 2)

    def test_event_stays_failed_while_any_action_retries(self, runtime, store, clock, monkeypatch):
        """A dead action does not stop another one's retries; the event is dead once all settle."""
        dead, flaky = ScriptedAction(BROKEN), ScriptedAction(FLAKY, OK)
        monkeypatch.setitem(dispatch.ROUTES, "voucher.updated", ("dead", "flaky"))
        runtime.actions = {"dead": dead, "flaky": flaky}
        event_id = deliver(store, examples.example_envelope("voucher.updated"))
        assert pipeline.process_event(event_id, runtime) == "failed"
        clock.now += 3600
        assert pipeline.process_event(event_id, runtime) == "dead"
        assert dead.calls == 1

    def test_an_action_is_recorded_before_the_next_one_runs(self, runtime, store, monkeypatch):
        """With several actions, each outcome (state and the email's `done` mark) is in the store before
        the next action starts: a worker dying in the second must not make a retry email twice."""
        seen = {}

        def second(ctx):
            seen["first"] = store.document(ctx.event_id)["actions"].get(dispatch.NOTIFY_CUSTOMER)
            seen["email"] = store.reserve("notify:pub_1", "another-attempt", 30)
            return OK

        monkeypatch.setitem(dispatch.ROUTES, "publication.succeeded", (dispatch.NOTIFY_CUSTOMER, "second"))
        runtime.actions = {**runtime.actions, "second": second}
        event_id = deliver(store, publication())
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert seen["first"]["status"] == "succeeded"
        assert seen["email"] == "done"


class TestRoundTrips:
    """The store round trips an event costs a worker: begin, the side-effect reservations, one settle."""

    @pytest.fixture
    def trips(self, store, monkeypatch):
        return record_round_trips(store.r, monkeypatch, pipeline_label="MULTI")

    def test_an_event_with_no_action_makes_two(self, runtime, store, trips):
        event_id = deliver(store, examples.example_envelope("voucher.updated"))
        trips.clear()
        assert pipeline.process_event(event_id, runtime) == "ignored"
        assert trips == ["EVALSHA", "EVALSHA"]  # begin, settle

    def test_an_email_makes_three(self, runtime, store, mailer, trips):
        """The email's `done` mark, the action's state and count and the event's status: one script."""
        event_id = deliver(store, publication())
        trips.clear()
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert len(mailer.sent) == 1
        assert trips == ["EVALSHA", "EVALSHA", "EVALSHA"]  # begin, reserve, settle
        assert store.reserve("notify:pub_1", "another-attempt", 30) == "done"
        assert store.document(event_id)["actions"][dispatch.NOTIFY_CUSTOMER]["status"] == "succeeded"
        assert store.worker_counters().actions[("succeeded", dispatch.NOTIFY_CUSTOMER)] == 1


class TestBackoff:
    def test_full_jitter_within_exponential_ceiling(self, runtime):
        runtime.settings = runtime.settings.with_(action_backoff_base_s=2.0, action_backoff_cap_s=30.0)
        runtime.rng = lambda: 1.0
        assert [pipeline.backoff(n, runtime) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
        runtime.rng = lambda: 0.25
        assert pipeline.backoff(3, runtime) == 2.0


class TestDistributionEndpoints:
    """Payload-designer bodies arrive only through distribution endpoints (/webhooks/voucherify/<source>)."""

    def test_raw_designer_body_from_a_source_is_ignored_with_reason(self, runtime, store):
        """A body with no envelope, from a distribution endpoint: ignored, reason and messages kept."""
        event_id = deliver(store, examples.load("customer.publication.succeeded-3"), source="newsletter")
        assert pipeline.process_event(event_id, runtime) == "ignored"
        doc = store.document(event_id)
        assert doc["reason"] == "payload_designer"
        assert "event" in doc["errors"]

    def test_raw_designer_body_on_the_main_url_is_invalid(self, runtime, store):
        """A body that says nothing of where it comes from (no envelope) is judged as a project-settings
        webhook on the main URL: a defect."""
        event_id = deliver(store, examples.load("customer.publication.succeeded-3"))
        assert pipeline.process_event(event_id, runtime) == "invalid"

    def test_distribution_body_on_the_main_url_is_ignored_not_invalid(self, runtime, store):
        """A real distribution delivery (source.object "distribution", free-text type, designer-shaped
        data) sent to the URL the README says to paste everywhere is recognised from its body."""
        doc = examples.example_envelope("customer.publication.succeeded-2")
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, runtime) == "ignored"
        d = store.document(event_id)
        key = f"ev:{doc['source']['id']}:{doc['event']['id']}"
        assert (d["reason"], d["dedup_key"]) == ("payload_designer", key)

    def test_distribution_body_on_the_main_url_is_forwarded_by_its_source_id(self, runtime, store):
        """FORWARD_<NAME>_SOURCES may name the distribution's source.id: its main-URL bodies go there."""
        from core.settings import ForwardDestination

        doc = examples.example_envelope("customer.publication.succeeded-2")
        dest = ForwardDestination("crm", "http://127.0.0.1:9/x", sources=(doc["source"]["id"],))
        runtime.settings = runtime.settings.with_(forward_destinations=(dest,))
        seen = []
        runtime.actions = {"forward:crm": lambda ctx: seen.append(ctx) or OK}
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, runtime) == "processed"
        (ctx,) = seen
        assert ctx.raw == json.dumps(doc).encode()

    def test_project_webhook_with_malformed_data_on_the_main_url_is_invalid(self, runtime, store):
        """Project-settings webhooks are never reshaped: one claiming to be that with bad data is a defect."""
        doc = examples.example_envelope("customer.publication.succeeded-2")
        doc["source"] = {"id": "wh_1", "object": "webhook"}
        event_id = deliver(store, doc)
        assert pipeline.process_event(event_id, runtime) == "invalid"

    def test_broken_envelope_from_a_source_is_still_invalid(self, runtime, store):
        """An envelope that is there but broken (no event.type) is invalid wherever it came from."""
        doc = examples.example_envelope("customer.redemption.succeeded-2")
        del doc["event"]["type"]
        event_id = deliver(store, doc, source="newsletter")
        assert pipeline.process_event(event_id, runtime) == "invalid"

    def test_distribution_routes_on_event_type_not_type(self, runtime, store, mailer):
        """A distribution's free-text `type` ("Voucher-redeemed") is never used for routing."""
        doc = examples.example_envelope("voucher.published-2", type="Welcome-email")
        doc["source"] = {"id": "distr_1", "object": "distribution", "target_url": "https://x"}
        event_id = deliver(store, doc, source="welcome")
        assert pipeline.process_event(event_id, runtime) == "processed"
        assert store.document(event_id)["event_type"] == "voucher.published"
        assert len(mailer.sent) == 1

    def test_designer_body_is_forwarded_when_a_destination_takes_its_source(
        self, runtime, store, monkeypatch
    ):
        """FORWARD_<NAME>_SOURCES routes a source's designer bodies to that destination, as they are."""
        from core.settings import ForwardDestination

        dest = ForwardDestination("crm", "http://127.0.0.1:9/x", sources=("newsletter",))
        runtime.settings = runtime.settings.with_(forward_destinations=(dest,))
        seen = []
        runtime.actions = {"forward:crm": lambda ctx: seen.append(ctx) or OK}
        raw = json.dumps(examples.load("customer.publication.succeeded-3")).encode()
        event_id = deliver(store, raw, source="newsletter")
        assert pipeline.process_event(event_id, runtime) == "processed"
        (ctx,) = seen
        assert ctx.parsed is None
        assert ctx.raw == raw
        other = deliver(store, json.dumps({"other": 1}).encode(), source="elsewhere")
        assert pipeline.process_event(other, runtime) == "ignored"


class TestEmail:
    def test_non_ascii_names_and_campaigns_are_encoded(self, runtime, store, mailer):
        """A customer called Zoë in campaign Été gets a readable UTF-8 email with encoded headers."""
        from email import message_from_bytes
        from email.header import decode_header, make_header

        doc = publication(email="zoe@example.com")
        doc["data"]["customer"]["name"] = "Zoë Ünal"
        doc["data"]["campaign"]["name"] = "Été 2026"
        pipeline.process_event(deliver(store, doc), runtime)
        (msg,) = mailer.sent
        parsed = message_from_bytes(msg.as_bytes())
        assert str(make_header(decode_header(parsed["Subject"]))) == "Your voucher code from Été 2026"
        assert "Zoë Ünal" in str(make_header(decode_header(parsed["To"])))
        assert "Hello Zoë Ünal," in plain_text(parsed)

    def test_line_breaks_in_payload_text_cannot_inject_headers(self, runtime, store, mailer):
        """Regression guard: a campaign name with a line break must not become a header of its own."""
        from email import message_from_bytes

        doc = publication()
        doc["data"]["campaign"]["name"] = "Sale\r\nBcc: victim@example.com"
        pipeline.process_event(deliver(store, doc), runtime)
        (msg,) = mailer.sent
        assert message_from_bytes(msg.as_bytes())["Bcc"] is None

    def test_internationalised_domain_is_sent_in_its_ascii_form(self, runtime, store, mailer):
        """Regression: zoe@exämple.com failed composing (UnicodeEncodeError), as "unexpected", on every
        retry. The domain goes out IDNA-encoded."""
        event_id = deliver(store, publication(email="zoe@exämple.com"))
        assert pipeline.process_event(event_id, runtime) == "processed"
        (msg,) = mailer.sent
        assert "<zoe@xn--exmple-cua.com>" in msg["To"]

    def test_non_ascii_local_part_is_a_bad_recipient_not_a_retry(self, runtime, store, mailer):
        """Regression: zoë@example.com failed the same way on every retry; it cannot go out without
        SMTPUTF8, so the action is dead at once with a reason that says so."""
        event_id = deliver(store, publication(email="zoë@example.com"))
        assert pipeline.process_event(event_id, runtime) == "dead"
        action = store.document(event_id)["actions"]["notify_customer"]
        assert (action["reason"], action["attempts"]) == ("bad_recipient", 1)
        assert "SMTPUTF8" in action["last_error"]
        assert mailer.sent == []
