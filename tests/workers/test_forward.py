"""forward:<destination> against a real HTTP server: signature, status mapping, failures, idempotency."""

import json
import socket
import time
from email.utils import formatdate

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import examples
from core.settings import ForwardDestination
from ingest.dedup import dedup_key
from tests.support import HttpSink, free_port
from workers import dispatch, pipeline
from workers.actions import ActionContext
from workers.actions.forward import SIGNATURE_HEADER, Forwarder, sign, verify
from workers.errors import PermanentError, TransientError

DEST_SECRET = "dest-secret-" + "f" * 16


def forwarder(url, *, name="crm", secret=DEST_SECRET, timeout=2.0):
    return Forwarder(ForwardDestination(name, url, secret), timeout=timeout)


def stored(store, doc, source=""):
    """Store a delivery as the intake does; the context an action gets for it."""
    raw = json.dumps(doc).encode()
    event_id, _ = store.accept(raw, dedup_key=dedup_key(raw, source), headers={}, secret="s", source=source)
    return ActionContext(
        event_id=event_id,
        attempt_id=f"{event_id}:forward:{time.monotonic_ns()}",
        parsed=pipeline.parse(raw),
        raw=raw,
        store=store,
    )


@pytest.fixture
def event():
    return examples.example_envelope("voucher.updated")


class TestDelivery:
    def test_posts_the_body_byte_for_byte(self, store, sink, event):
        """The receiver gets exactly what Voucherify sent, with the event id as idempotency key."""
        ctx = stored(store, event)
        result = forwarder(sink.url)(ctx)
        assert result.status == "succeeded"
        ((headers, body),) = sink.requests
        assert body == ctx.raw
        assert headers["content-type"] == "application/json"
        assert headers["idempotency-key"] == event["event"]["id"]
        assert headers["x-voucherify-event-type"] == "voucher.updated"
        assert headers["x-voucherify-ingest-event-id"] == ctx.event_id

    def test_signature_verifies_at_the_receiver(self, store, sink, event):
        """A receiver holding the secret recomputes the signature from the body and the timestamp."""
        forwarder(sink.url)(stored(store, event))
        ((headers, body),) = sink.requests
        header = headers[SIGNATURE_HEADER.lower()]
        assert verify(DEST_SECRET, header, body)
        assert not verify("another-secret", header, body)
        assert not verify(DEST_SECRET, header, body + b" ")

    def test_without_a_secret_nothing_is_signed(self, store, sink, event):
        forwarder(sink.url, secret=None)(stored(store, event))
        ((headers, _),) = sink.requests
        assert SIGNATURE_HEADER.lower() not in headers


class TestVerify:
    BODY = b'{"event": {"id": "evt_1"}}'

    def test_old_timestamp_is_refused(self):
        """A captured request replayed later fails: the timestamp is signed and checked."""
        header = sign(DEST_SECRET, self.BODY, 1_700_000_000)
        assert verify(DEST_SECRET, header, self.BODY, now=1_700_000_000 + 299)
        assert not verify(DEST_SECRET, header, self.BODY, now=1_700_000_000 + 301)

    def test_several_v1_values_during_a_rotation(self):
        t = int(time.time())
        good = sign(DEST_SECRET, self.BODY, t).rpartition("v1=")[2]
        assert verify(DEST_SECRET, f"t={t},v1={'0' * 64},v1={good}", self.BODY)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "v1=abc",
            "t=abc,v1=abc",
            "t=1,t=2,v1=abc",
            "garbage",
            "t=\u00b2,v1=abc",  # a digit to str.isdigit(), not to int()
            "t=" + "9" * 5000 + ",v1=abc",  # past int()'s digit limit
            "t=" + "9" * 400 + ",v1=abc",  # too large for a float
            f"t={int(time.time())},v1=\u00e9" + "0" * 63,  # non-ASCII: compare_digest raises on str
        ],
    )
    def test_malformed_header_is_refused(self, header):
        assert not verify(DEST_SECRET, header, self.BODY)

    @hypothesis.settings(max_examples=300, deadline=None)
    @given(header=st.one_of(st.none(), st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
    def test_never_raises(self, header):
        """Whatever a receiver is handed as the header, verify() answers False, never an exception."""
        assert verify(DEST_SECRET, header, self.BODY) is False

    @hypothesis.settings(max_examples=300, deadline=None)
    @given(
        t=st.one_of(
            st.text(max_size=20),
            st.integers().map(str),
            st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=600),
        ),
        macs=st.lists(st.text(max_size=70), max_size=3),
    )
    def test_never_raises_on_well_shaped_headers(self, t, macs):
        """Shaped like ours (t=..., v1=...), with anything in the values: False, never an exception."""
        header = ",".join([f"t={t}", *(f"v1={m}" for m in macs)])
        assert verify(DEST_SECRET, header, self.BODY, now=0) in (False, True)


class TestStatusMapping:
    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_2xx_is_success(self, store, sink, event, status):
        sink.status = status
        assert forwarder(sink.url)(stored(store, event)).status == "succeeded"

    @pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
    def test_retryable_statuses_are_transient(self, store, sink, event, status):
        sink.status = status
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url)(stored(store, event))
        assert exc.value.reason == f"forward_http_{status}"
        assert exc.value.retry_after is None

    @pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 405, 409, 410, 413, 422])
    def test_other_statuses_are_permanent(self, store, sink, event, status):
        """A 4xx will not change by retrying (nor will a redirect we do not follow): dead, with the status."""
        sink.status = status
        with pytest.raises(PermanentError) as exc:
            forwarder(sink.url)(stored(store, event))
        assert exc.value.reason == f"forward_http_{status}"

    def test_retry_after_seconds(self, store, sink, event):
        sink.status, sink.reply_headers = 429, {"Retry-After": "120"}
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url)(stored(store, event))
        assert exc.value.retry_after == 120

    def test_retry_after_http_date(self, store, sink, event):
        sink.status, sink.reply_headers = 503, {"Retry-After": formatdate(time.time() + 600, usegmt=True)}
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url)(stored(store, event))
        assert 590 <= exc.value.retry_after <= 601

    def test_unparseable_retry_after_is_ignored(self, store, sink, event):
        sink.status, sink.reply_headers = 503, {"Retry-After": "soon"}
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url)(stored(store, event))
        assert exc.value.retry_after is None


class TestUnreachable:
    def test_connection_refused_is_transient(self, store, event):
        port = free_port()  # nothing listens there
        with pytest.raises(TransientError) as exc:
            forwarder(f"http://127.0.0.1:{port}/hook")(stored(store, event))
        assert exc.value.reason == "forward_unreachable"

    def test_timeout_is_transient(self, store, sink, event):
        """A receiver slower than FORWARD_TIMEOUT_SECONDS: transient, and the attempt ends on time."""
        sink.delay = 1.0
        started = time.monotonic()
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url, timeout=0.2)(stored(store, event))
        assert time.monotonic() - started < 0.9
        assert exc.value.reason == "forward_unreachable"

    def test_server_that_never_answers_is_transient(self, store, event):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
            fwd = forwarder(url, timeout=0.5)
            ctx = stored(store, event)
            # Accepted by the kernel backlog, never answered: a read timeout, not a hang.
            with pytest.raises(TransientError):
                fwd(ctx)


class TestIdempotency:
    def test_same_event_from_two_sources_is_forwarded_once(self, store, sink, event):
        """Two deliveries of one Voucherify event (two endpoints, two source ids) make one POST."""
        first = stored(store, event)
        second = stored(store, {**event, "source": {**event["source"], "id": "wh_other"}})
        assert first.event_id != second.event_id
        fwd = forwarder(sink.url)
        assert fwd(first).status == "succeeded"
        result = fwd(second)
        assert result.status == "skipped"
        assert "already forwarded" in result.detail
        assert len(sink.attempts) == 1

    def test_each_destination_gets_its_own_copy(self, store, event):
        a, b = HttpSink().start(), HttpSink().start()
        try:
            ctx = stored(store, event)
            assert forwarder(a.url, name="a")(ctx).status == "succeeded"
            assert forwarder(b.url, name="b")(ctx).status == "succeeded"
            assert forwarder(a.url, name="a")(ctx).status == "skipped"
            assert (len(a.requests), len(b.requests)) == (1, 1)
        finally:
            a.stop()
            b.stop()

    def test_failed_attempt_does_not_block_the_retry(self, store, sink, event):
        """A failure releases the reservation, so the next attempt posts (and only that one succeeds)."""
        ctx = stored(store, event)
        fwd = forwarder(sink.url)
        sink.status = 503
        with pytest.raises(TransientError):
            fwd(ctx)
        sink.status = 200
        retry = ActionContext(ctx.event_id, ctx.attempt_id + ":2", ctx.parsed, ctx.raw, store)
        assert fwd(retry).status == "succeeded"
        assert (len(sink.attempts), len(sink.requests)) == (2, 1)

    def test_another_worker_on_it_is_busy_not_a_second_post(self, store, sink, event):
        ctx = stored(store, event)
        store.reserve(f"forward:crm:{event['event']['id']}", "someone-else", 60)
        with pytest.raises(TransientError) as exc:
            forwarder(sink.url)(ctx)
        assert exc.value.reason == "busy"
        assert 55 < exc.value.retry_after <= 60  # when the other holder's reservation lapses
        assert sink.attempts == []


class TestInThePipeline:
    @pytest.fixture
    def runtime(self, settings, store, sink):
        dest = ForwardDestination("crm", sink.url, DEST_SECRET)
        clock = [1_700_000_000.0]
        return pipeline.Runtime(
            settings=settings.with_(forward_destinations=(dest,), action_backoff_base_s=1.0),
            store=store,
            actions={dispatch.forward_action("crm"): Forwarder(dest, timeout=2.0)},
            clock=lambda: clock[0],
            rng=lambda: 1.0,
        )

    def test_retry_after_from_the_receiver_sets_the_next_attempt(self, runtime, store, sink, event):
        """503 with Retry-After: 30 puts the event back in the outbox 30 s later, not at the 1 s backoff."""
        event_id = stored(store, event).event_id
        sink.status, sink.reply_headers = 503, {"Retry-After": "30"}
        now = runtime.clock()
        assert pipeline.process_event(event_id, runtime) == "failed"
        action = store.document(event_id)["actions"]["forward:crm"]
        assert action["reason"] == "forward_http_503"
        assert store.claim_due(now=now + 29) == []
        assert store.claim_due(now=now + 31) == [event_id]

    def test_permanent_answer_is_dead_and_recorded(self, runtime, store, sink, event):
        event_id = stored(store, event).event_id
        sink.status = 422
        assert pipeline.process_event(event_id, runtime) == "dead"
        doc = store.document(event_id)
        assert doc["reason"] == "forward_http_422"
        assert doc["actions"]["forward:crm"]["last_error"] == "crm answered 422"
        assert store.outbox_size() == 0
