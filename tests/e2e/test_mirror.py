"""The mirror through the real intake and real Celery workers: the seed events, the admin API, the CLI,
a rebuild, and two workers racing on PostgreSQL."""

from __future__ import annotations

import io
import json
import random
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import cli
from core import db, examples
from core.mirror import Mirror
from core.mirror.tables import TABLES, publications
from core.states import Status
from core.store import EventStore
from ingest import create_app
from tests.faults.helpers import FAULT_ENV, Intake, fault_settings, wait_settled
from tests.mirror_events import T0, campaign_event, voucher_event
from tests.support import SmtpSink, fresh_mirror_url, parse_metrics, sample

pytestmark = pytest.mark.integration
ADMIN = "admin-token-" + "x" * 20


def action(store: EventStore, event_id: str) -> dict[str, Any]:
    return store.document(event_id)["actions"]["mirror"]


def run_cli(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


class TestSeedEvents:
    def test_seed_events_through_the_intake(self, redis_url, tmp_path, workers, smtp: SmtpSink, monkeypatch):
        """voucher.created/enabled/updated (newer, older), generation completed, publication: rows, stale
        skips counted, the email sent once; the admin API and the CLI show the row; a rebuild equals it."""
        url = fresh_mirror_url("sqlite", None, tmp_path)
        settings = fault_settings(redis_url, tmp_path, mirror_database_url=url, admin_token=ADMIN)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        workers(redis_url, **FAULT_ENV, MIRROR_DATABASE_URL=url, SMTP_URL=smtp.url)
        mirror = Mirror.from_url(url)

        def post(doc: dict[str, Any], status: str = Status.PROCESSED) -> str:
            event_id = intake.post(doc)["id"]
            assert wait_settled(store, [event_id], timeout=30) == {event_id: status}
            return event_id

        post(voucher_event("created", n=1, active=False))
        assert mirror.voucher("MIRROR-1")["active"] is False
        post(voucher_event("enabled", n=2))
        assert mirror.voucher("MIRROR-1")["active"] is True
        newer = post(voucher_event("updated", n=5))
        assert action(store, newer)["status"] == "succeeded"
        assert mirror.voucher("MIRROR-1")["snapshot"]["metadata"] == {"n": 5}
        older = post(voucher_event("updated", n=3))
        stale = action(store, older)
        assert stale["status"] == "skipped"
        row = mirror.voucher("MIRROR-1")
        assert stale["history"][-1]["detail"] == f"stale: row is at {row['version']}"
        assert row["snapshot"]["metadata"] == {"n": 5}
        assert [h["outcome"] for h in row["history"][:2]] == ["stale", "applied"]

        post(campaign_event("generated", n=42, updated_at=T0 + timedelta(seconds=42)))
        campaign = mirror.campaign("camp_mirror_test")
        assert (campaign["vouchers_generated"], campaign["vouchers_generated_at"]) == (
            42,
            "2024-01-01T00:00:42.000000Z",
        )

        pub = examples.example_envelope("publication.succeeded")
        pub["data"]["customer"]["email"] = "jack@example.com"
        first, again = post(pub), post(examples.envelope("publication.succeeded", pub["data"]))
        assert first != again
        with mirror.engine.connect() as conn:
            row_pub = conn.execute(select(publications)).mappings().one()
        assert row_pub["id"] == pub["data"]["publication"]["id"]
        assert row_pub["first_ingest_event_id"] == first
        assert mirror.customer(pub["data"]["customer"]["id"])["email"] == "jack@example.com"
        assert len(smtp.to("jack@example.com")) == 1  # two deliveries of one publication: one email

        client = create_app(settings).test_client()
        metrics = parse_metrics(client.get("/metrics").get_data(as_text=True))
        assert sample(metrics, "voucherify_ingest_mirror_stale_total", table="vouchers") == 1
        auth = {"Authorization": f"Bearer {ADMIN}"}
        got = client.get("/admin/mirror/vouchers/MIRROR-1", headers=auth)
        assert got.status_code == 200
        assert got.json["snapshot"]["metadata"] == {"n": 5}
        assert client.get("/admin/mirror/vouchers/MIRROR-1").status_code == 401
        assert client.get("/admin/mirror/vouchers/NOPE", headers=auth).status_code == 404
        assert (
            client.get("/admin/mirror/campaigns/camp_mirror_test", headers=auth).json["vouchers_generated"]
            == 42
        )
        assert (
            client.get(f"/admin/mirror/customers/{pub['data']['customer']['id']}", headers=auth).status_code
            == 200
        )

        env = {"REDIS_URL": redis_url, "MIRROR_DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
        code, out, _ = run_cli(monkeypatch, env, "mirror", "voucher", "MIRROR-1")
        assert code == 0
        assert json.loads(out)["version"] == row["version"]
        rebuilt_url = f"sqlite:///{tmp_path}/rebuilt.sqlite3"
        code, out, err = run_cli(monkeypatch, env, "mirror", "rebuild", "--to", rebuilt_url)
        assert code == 0, err
        assert "rebuilding" in err
        assert dump(Mirror.from_url(rebuilt_url)) == dump(mirror)
        code, _, err = run_cli(monkeypatch, env, "mirror", "rebuild", "--to", rebuilt_url)
        assert code == 2
        assert "not empty" in err


def dump(m: Mirror) -> dict[str, list[dict[str, Any]]]:
    """Every mirrored row (history aside), for comparing two databases."""
    with m.engine.connect() as conn:
        return {
            name: [dict(r) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]
            for name, t in TABLES.items()
        }


class TestTwoWorkersOnPostgres:
    def test_interleaved_updates_never_regress(self, redis_url, tmp_path, workers, postgres_url):
        """Two worker processes apply 200 shuffled updates of 5 vouchers: every row ends at its newest."""
        url = fresh_mirror_url("postgresql", postgres_url, tmp_path)
        settings = fault_settings(redis_url, tmp_path)
        store, intake = EventStore.from_settings(settings), Intake(settings)
        procs = [
            workers(redis_url, **FAULT_ENV, MIRROR_DATABASE_URL=url, concurrency=1),
            workers(redis_url, **FAULT_ENV, MIRROR_DATABASE_URL=url, concurrency=1, beat=False),
        ]
        docs = [
            voucher_event(
                "updated",
                voucher_id=f"v_race_{i % 5}",
                code=f"RACE-{i % 5}",
                n=i,
                updated_at=T0 + timedelta(milliseconds=i // 5),
                event_id=f"evvou_race_{i:04d}",
            )
            for i in range(200)
        ]
        random.Random(13).shuffle(docs)
        ids = [intake.post(doc)["id"] for doc in docs]
        assert set(wait_settled(store, ids, timeout=120).values()) == {Status.PROCESSED}
        # No duplicate-key failure, nothing retried: each event's mirror action ran once.
        actions = [store.document(i)["actions"]["mirror"] for i in ids]
        assert {len(a["history"]) for a in actions} == {1}
        # Shuffled, so some arrive after a newer one: skipped as stale, not errors.
        assert {a["status"] for a in actions} == {"succeeded", "skipped"}
        mirror = Mirror(db.make_engine(url))
        for k in range(5):
            row = mirror.voucher(f"RACE-{k}")
            assert row["snapshot"]["metadata"] == {"n": 195 + k}
        for proc in procs:
            log = proc.output()
            assert "Traceback" not in log
            assert '"level": "error"' not in log
            assert '"level": "critical"' not in log
        mirror.engine.dispose()
