"""The operator command: each subcommand run as a subprocess against `voucherify-ingest run`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

import cli
from core import examples
from core.store import STATUSES, TERMINAL
from tests.support import ROOT, Service, answers, http, start_run, stop_run, wait_for

ALEX = "alex.doe@example.com"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_run(tmp_path_factory.mktemp("run"))
    try:
        yield svc
    finally:
        stop_run(svc)


def vi(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    """`voucherify-ingest ARGS` in its own process, as an operator would type it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=service.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def send(service: Service, *args: str) -> str:
    """send-test; returns the new event's id."""
    res = vi(service, "send-test", *args, "--url", service.url)
    assert res.returncode == 0, res.stderr
    status, _, body = res.stdout.strip().partition(" ")
    assert status == "202"
    return json.loads(body)["id"]


def show(service: Service, event_id: str) -> dict:
    res = vi(service, "events", "show", event_id)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def settled(service: Service, event_id: str, after: str | None = None) -> dict:
    """The event's document once it is in a final status (updated after `after`, if given)."""
    store = service.store
    wait_for(
        lambda: (d := store.document(event_id)) and d["status"] in TERMINAL and d["updated_at"] != after,
        timeout=30,
        what=f"{event_id} to settle",
    )
    return show(service, event_id)


class TestHelp:
    @pytest.mark.parametrize(
        "args",
        [
            [],
            ["run"],
            ["events"],
            ["events", "list"],
            ["events", "show"],
            ["replay"],
            ["send-test"],
            ["stats"],
        ],
    )
    def test_every_subcommand_has_help(self, args, capsys):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*args, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: voucherify-ingest {' '.join(args)}".rstrip())

    def test_events_alone_shows_its_commands(self, capsys):
        assert cli.main(["events"]) == 2
        out = capsys.readouterr().out
        assert "list" in out
        assert "show" in out

    def test_unknown_status_is_refused(self, capsys):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["events", "list", "--status", "finished"])
        assert exit_.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.timeout(240)
class TestAgainstARunningService:
    def test_send_test_from_the_corpus_is_processed(self, service):
        """A signed example with the given email is accepted, processed, and the email is logged masked."""
        event_id = send(service, "publication.succeeded", "--email", ALEX)
        doc = settled(service, event_id)
        assert doc["status"] == "processed"
        assert doc["actions"]["notify_customer"]["status"] == "succeeded"
        log = service.proc.output()
        assert "a***@e***.com" in log
        assert ALEX not in log

    def test_send_test_from_a_file(self, service, tmp_path):
        """A data-only file is wrapped in an envelope of the named type; `run` mirrors the voucher."""
        path = tmp_path / "voucher.json"
        path.write_text(json.dumps(examples.load("voucher.created")))
        doc = settled(service, send(service, "voucher.created", "--file", str(path)))
        assert (doc["status"], doc["event_type"]) == ("processed", "voucher.created")
        assert doc["actions"]["mirror"]["status"] == "succeeded"
        code = examples.load("voucher.created")["voucher"]["code"]
        row = vi(service, "mirror", "voucher", code)
        assert row.returncode == 0, row.stderr
        assert json.loads(row.stdout)["history"][0]["ingest_event_id"] == doc["id"]

    def test_send_test_lists_the_corpus(self, service):
        res = vi(service, "send-test", "--list")
        assert res.returncode == 0
        assert {"publication.succeeded", "voucher.created"} <= set(res.stdout.split())

    def test_send_test_with_a_wrong_secret_is_refused(self, service):
        res = vi(service, "send-test", "voucher.created", "--secret", "wrong-secret", "--url", service.url)
        assert res.returncode == 1
        assert res.stdout.startswith("401 ")

    def test_events_list(self, service):
        """Newest first, as a table or as JSON, filtered by status and type."""
        event_id = send(service, "business_validation_rule.updated")  # nothing routes it, mirror or not
        settled(service, event_id)
        table = vi(service, "events", "list", "--limit", "5")
        assert table.returncode == 0
        header, first, *_ = table.stdout.splitlines()
        assert header.split()[:3] == ["ID", "STATUS", "TYPE"]
        assert first.split()[:3] == [event_id, "ignored", "business_validation_rule.updated"]
        flt = ("--type", "business_validation_rule.updated", "--status", "ignored")
        res = vi(service, "events", "list", "--json", *flt)
        events = json.loads(res.stdout)["events"]
        assert event_id in [e["id"] for e in events]
        assert {e["event_type"] for e in events} == {"business_validation_rule.updated"}

    def test_events_show(self, service):
        event_id = send(service, "voucher.enabled")
        settled(service, event_id)
        res = vi(service, "events", "show", event_id, "--raw")
        doc = json.loads(res.stdout)
        assert doc["id"] == event_id
        assert json.loads(doc["raw"])["event"]["type"] == "voucher.enabled"
        missing = vi(service, "events", "show", "evt_nope")
        assert missing.returncode == 1
        assert "no event evt_nope" in missing.stderr

    def test_replay_one(self, service):
        """--dry-run names the event and changes nothing; then the event runs again and settles again."""
        event_id = send(service, "business_validation_rule.created")
        before = settled(service, event_id)
        dry = vi(service, "replay", event_id, "--dry-run")
        assert dry.stdout.strip() == f"would replay 1 event: {event_id}"
        assert show(service, event_id)["updated_at"] == before["updated_at"]
        res = vi(service, "replay", event_id)
        assert res.stdout.strip() == f"replayed {event_id}"
        assert settled(service, event_id, after=before["updated_at"])["status"] == "ignored"
        assert vi(service, "replay", "evt_nope").returncode == 1

    def test_replay_in_bulk_with_progress(self, service):
        """By filter: the dry run counts, the real run replays them all and draws a progress bar."""
        ids = [send(service, "business_validation_rule.deleted") for _ in range(3)]
        for event_id in ids:
            settled(service, event_id)
        flt = ("--type", "business_validation_rule.deleted", "--status", "ignored")
        dry = vi(service, "replay", *flt, "--dry-run")
        assert dry.stdout.splitlines() == [
            "would replay 3 event(s)",
            "per action, events that would run it:",
            "  (nothing)  3",  # ignored: nothing routes this type, before or now
        ]
        res = vi(service, "replay", *flt)
        assert res.returncode == 0
        assert res.stdout.strip() == "replayed 3 event(s)"
        assert "replaying [" in res.stderr
        assert "3/3" in res.stderr
        for event_id in ids:
            settled(service, event_id)

    def test_replay_takes_an_id_or_filters_not_both(self, service):
        res = vi(service, "replay", "evt_x", "--status", "dead")
        assert res.returncode == 2

    def test_stats(self, service):
        """Counts by status, the backlog (outbox and broker queues) and the oldest unfinished event."""
        settled(service, send(service, "business_validation_rule.created"))
        wait_for(lambda: service.store.outbox_size() == 0, what="an empty outbox")
        out = json.loads(vi(service, "stats", "--json").stdout)
        assert set(out["counts"]) == set(STATUSES)
        assert out["counts"]["ignored"] >= 1
        assert set(out["queues"]) == {"events", "replay"}
        assert out["oldest_unfinished_age_s"] is None
        text = vi(service, "stats").stdout
        for word in ("processed", "outbox", "queue events", "oldest"):
            assert word in text

    def test_run_serves_metrics(self, service):
        status, body, _ = http("GET", f"http://127.0.0.1:{service.port}/metrics")
        assert status == 200
        assert b'voucherify_ingest_requests_total{outcome="accepted"}' in body


@pytest.mark.integration
@pytest.mark.timeout(120)
class TestRunLifecycle:
    def test_sigterm_stops_everything(self, tmp_path):
        """Ctrl-C / SIGTERM: `run` stops the intake, the worker and the embedded store, and exits 0."""
        svc = start_run(tmp_path)
        url_file = tmp_path / "embedded-redis.url"
        assert url_file.exists()
        assert stop_run(svc) == 0
        assert f"console    http://127.0.0.1:{svc.port}/console/" in svc.proc.output()
        assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
        assert not url_file.exists()
        assert not answers(svc.port)
        # Every line `run`'s children wrote is JSON; `run` itself prints a few plain lines for humans.
        # Regression: this skipped every line not starting with "{", so plain lines passed unseen.
        own = (
            "store      ",
            "secret     ",
            "admin      ",
            "intake     ",
            "console    ",
            "try it     ",
            "and        ",
            "mirror     ",
            "archive    ",
            "stop       ",
        )
        lines = svc.proc.output().splitlines()
        assert len(lines) > len(own)
        plain = []
        for line in lines:
            if line.startswith(own):
                continue
            try:
                json.loads(line)
            except ValueError:
                plain.append(line)
        assert plain == [], "\n".join(lines)
