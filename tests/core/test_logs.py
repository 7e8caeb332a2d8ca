import io
import json
import logging
import warnings

import pytest

from core import examples, logs
from core.logs import JsonFormatter, configure_logging, log_context, mask_email, secrets_of
from core.settings import ForwardDestination, Settings
from ingest import create_app
from tests.support import SECRET, signed


def record(msg="hello %s", args=("world",), **extra):
    rec = logging.LogRecord("test.logger", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def line(formatter, rec):
    return json.loads(formatter.format(rec))


@pytest.fixture(autouse=True)
def _clean_context():
    logs.clear()
    yield
    logs.clear()


class TestJsonFormatter:
    def test_one_json_object_with_message_and_extras(self):
        """A record becomes one line of JSON: time, level, logger, message, then the extras."""
        out = line(JsonFormatter(), record(event_id="evt_1", attempts=2))
        assert out["msg"] == "hello world"
        assert out["level"] == "info"
        assert out["logger"] == "test.logger"
        assert out["ts"].endswith("Z")
        assert (out["event_id"], out["attempts"]) == ("evt_1", 2)

    def test_bound_context_is_on_every_line(self):
        """Fields bound with log_context appear on lines that did not pass them; extras win on conflict."""
        with log_context(event_id="evt_ctx", task_id="t-1"):
            out = line(JsonFormatter(), record(task_id="t-explicit"))
        assert out["event_id"] == "evt_ctx"
        assert out["task_id"] == "t-explicit"
        assert "event_id" not in line(JsonFormatter(), record())

    def test_nested_contexts_unwind(self):
        with log_context(event_id="evt_1"):
            with log_context(action="notify_customer"):
                assert logs.bound() == {"event_id": "evt_1", "action": "notify_customer"}
            assert logs.bound() == {"event_id": "evt_1"}
        assert logs.bound() == {}

    def test_emails_are_masked_everywhere(self):
        """In the message, in extras, nested in dicts and lists, and in the bound context."""
        with log_context(customer="alex.doe@example.com"):
            out = line(
                JsonFormatter(),
                record(
                    "mail to %s",
                    ("jo.smith@shop.example.org",),
                    to="Jo <jo.smith@shop.example.org>",
                    nested={"list": ["x@y.io", {"deep": "deeper@example.com"}]},
                ),
            )
        text = json.dumps(out)
        for email in ("alex.doe@example.com", "jo.smith@shop.example.org", "deeper@example.com"):
            assert email not in text
        assert out["msg"] == "mail to j***@s***.org"
        assert out["customer"] == "a***@e***.com"
        assert out["nested"]["list"][1]["deep"] == "d***@e***.com"

    def test_configured_secrets_are_blanked(self):
        """A secret that slips into a line (a message, an extra, a traceback) is replaced, never printed."""
        fmt = JsonFormatter(redact=(SECRET, "hunter22-password"))
        try:
            raise ValueError(f"could not use {SECRET}")
        except ValueError:
            import sys

            rec = record("url redis://:hunter22-password@host", (), extra_secret=SECRET)
            rec.exc_info = sys.exc_info()
        text = fmt.format(rec)
        assert SECRET not in text
        assert "hunter22-password" not in text
        assert text.count("[redacted]") == 3

    def test_short_values_are_not_hunted(self):
        """A one-letter "secret" would blank every matching letter of every line: too short to redact."""
        out = line(JsonFormatter(redact=("a",)), record("a cat", ()))
        assert out["msg"] == "a cat"

    def test_unserialisable_extras_become_strings(self):
        out = line(JsonFormatter(), record(obj=object(), n=None, ok=True))
        assert out["obj"].startswith("<object object")
        assert out["n"] is None
        assert out["ok"] is True


class TestSecretsOf:
    def test_collects_every_secret_value(self):
        """Webhook secrets, the admin token, forward secrets and passwords in URLs."""
        s = Settings(
            redis_url="redis://:redis-pass-1@host:6379/0",
            broker_url="amqp://user:broker%2Fpass@mq//",
            smtp_url="smtp://me:smtp-pass-1@mail:587",
            webhook_secrets=("whsec-one", "whsec-two"),
            admin_token="admin-token-1",
            forward_destinations=(ForwardDestination("crm", "https://crm", secret="fwd-secret-1"),),
        )
        found = set(secrets_of(s))
        assert {
            "whsec-one",
            "whsec-two",
            "admin-token-1",
            "fwd-secret-1",
            "redis-pass-1",
            "smtp-pass-1",
            "broker/pass",
            "broker%2Fpass",
        } <= found


class TestConfigureLogging:
    def test_warnings_become_json_lines(self):
        """A library's warning is a log record too, so it comes out as JSON, not as a bare stderr line."""
        # pytest swaps warnings.showwarning around each test: start from a process that never captured.
        logging.captureWarnings(False)
        configure_logging("INFO")
        handler = logging.getLogger().handlers[0]
        buf = io.StringIO()
        old = handler.setStream(buf)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("something odd", UserWarning, stacklevel=1)
        finally:
            handler.setStream(old)
        (out,) = [json.loads(x) for x in buf.getvalue().splitlines()]
        assert out["logger"] == "py.warnings"
        assert "something odd" in out["msg"]


class TestIntakeLines:
    def test_intake_lines_are_json_without_secret_or_email(self, settings, store):
        """Accepted, duplicate and refused deliveries log JSON lines; no secret, no unmasked email."""
        from tests.fakes import RecordingQueue

        app = create_app(settings.with_(admin_token="admin-token-xyz"), store=store, queue=RecordingQueue())
        client = app.test_client()
        handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
        buf = io.StringIO()
        old = handler.setStream(buf)
        try:
            doc = examples.example_envelope("publication.succeeded")
            doc["data"]["customer"]["email"] = "alex.doe@example.com"
            body, headers = signed(doc)
            client.post("/webhooks/voucherify", data=body, headers=headers)
            client.post("/webhooks/voucherify", data=body, headers=headers)
            client.post(
                "/webhooks/voucherify", data=body, headers={**headers, "x-voucherify-signature": SECRET}
            )
            client.get("/admin/events", headers={"Authorization": f"Bearer {SECRET}"})
        finally:
            handler.setStream(old)
        lines = buf.getvalue().splitlines()
        assert len(lines) >= 3
        for raw in lines:
            json.loads(raw)
        text = "\n".join(lines)
        assert SECRET not in text
        assert "admin-token-xyz" not in text
        assert "alex.doe@example.com" not in text
        assert mask_email("alex.doe@example.com") == "a***@e***.com"


class TestTextFormatter:
    def test_a_delivery_is_one_readable_line(self):
        rec = record("webhook accepted", (), event_id="evt_1", status="queued", size=812, ms=1.5)
        out = logs.TextFormatter().format(rec)
        assert "--> delivery  evt_1  queued  (812 B, 1.5 ms)" in out

    def test_a_settled_event_shows_type_status_and_action_outcomes(self):
        rec = logging.LogRecord("workers.pipeline", logging.INFO, __file__, 1, "event %s", ("dead",), None)
        rec.__dict__.update(
            event_id="evt_2",
            status="dead",
            event_type="publication.succeeded",
            reason="smtp_refused",
            actions={"notify_customer": "dead"},
        )
        out = logs.TextFormatter().format(rec)
        assert "<-- publication.succeeded  evt_2  DEAD  (smtp_refused)  notify_customer=dead" in out

    def test_other_lines_keep_their_fields_masked_and_redacted(self):
        rec = record("sent to %s", ("alex.doe@example.com",), token="s3cr3t-value")
        out = logs.TextFormatter(redact=["s3cr3t-value"]).format(rec)
        assert "INFO" in out
        assert "a***@e***.com" in out
        assert "s3cr3t-value" not in out
        assert not out.startswith("{")

    def test_format_choice(self, monkeypatch):
        """auto: text on a terminal, JSON otherwise; LOG_FORMAT=json or text decides outright."""
        monkeypatch.setattr(logs.os, "isatty", lambda fd: True)
        assert type(logs.formatter("auto")) is logs.TextFormatter
        assert type(logs.formatter("json")) is JsonFormatter
        monkeypatch.setattr(logs.os, "isatty", lambda fd: False)
        assert type(logs.formatter("auto")) is JsonFormatter
        assert type(logs.formatter("text")) is logs.TextFormatter
