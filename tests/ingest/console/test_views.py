"""The console's pages: off without ADMIN_TOKEN, login and sessions, CSRF, CSP, filters, paging, masking."""

from __future__ import annotations

import json
import re
import time

import pytest

from core import examples
from core.states import ActionState, ActionStatus, Status
from ingest import create_app
from ingest.console import auth
from ingest.dedup import dedup_key
from tests.fakes import RecordingQueue

TOKEN = "admin-token-" + "c" * 20


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """Wrong tokens are answered at once here; TestLogin.test_wrong_token_is_slow_and_logged puts it back."""
    monkeypatch.setattr(auth, "WRONG_TOKEN_PAUSE_S", 0.0)


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def app(settings, store, queue):
    return create_app(settings.with_(admin_token=TOKEN), store=store, queue=queue)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html: bytes) -> str:
    m = re.search(rb'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1).decode()


def log_in(client, token=TOKEN):
    page = client.get("/console/login")
    return client.post("/console/login", data={"token": token, "csrf": csrf_of(page.data)})


@pytest.fixture
def logged_in(client):
    resp = log_in(client)
    assert resp.status_code == 303
    return client


def deliver(store, name="voucher.updated", *, now=None, email=None, source=None):
    doc = examples.example_envelope(name)
    if email:
        doc["data"]["customer"]["email"] = email
    if source:
        doc["source"] = {"id": source}
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)
    assert created
    if source:
        store.r.hset(store.key("ev", event_id), "source", source)
    return event_id


class TestAccess:
    @pytest.mark.parametrize(
        "path", ["/console/", "/console/login", "/console/events", "/console/static/console.css"]
    )
    def test_off_without_admin_token(self, settings, store, path):
        """No ADMIN_TOKEN, no console: 404 like the admin API, the login page and static files too."""
        client = create_app(settings, store=store, queue=RecordingQueue()).test_client()
        assert client.get(path).status_code == 404

    @pytest.mark.parametrize(
        "path", ["/console/", "/console/events", "/console/events/evt_x", "/console/replay"]
    )
    def test_pages_send_strangers_to_the_login(self, client, path):
        resp = client.get(path)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith("/console/login?next=")

    def test_posts_without_a_session_are_refused(self, client, store):
        event_id = deliver(store)
        assert client.post(f"/console/events/{event_id}/replay").status_code == 401

    def test_every_page_forbids_inline_script(self, logged_in, client):
        """The CSP allows scripts and styles from the console's own static files only."""
        for path in ("/console/", "/console/login", "/console/events", "/console/static/console.js"):
            with client.get(path) as resp:  # a static file's answer holds the file open until closed
                csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "default-src 'none'" in csp
        html = client.get("/console/").data
        assert b"<script>" not in html
        assert b"style=" not in html


class TestLogin:
    def test_right_token_opens_a_session_cookie(self, client):
        resp = log_in(client)
        assert resp.status_code == 303
        cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE + "="))
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        assert client.get("/console/").status_code == 200

    def test_cookie_is_secure_over_https(self, app):
        client = app.test_client()
        page = client.get("/console/login", base_url="https://intake.example")
        resp = client.post(
            "/console/login",
            data={"token": TOKEN, "csrf": csrf_of(page.data)},
            base_url="https://intake.example",
        )
        cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE + "="))
        assert "Secure" in cookie

    def test_forwarded_proto_is_believed_only_from_trusted_proxies(self, settings, store):
        """X-Forwarded-Proto: https makes the cookie Secure with TRUSTED_PROXIES=1, and is ignored without."""
        for trusted, secure in ((0, False), (1, True)):
            app = create_app(
                settings.with_(admin_token=TOKEN, trusted_proxies=trusted),
                store=store,
                queue=RecordingQueue(),
            )
            client = app.test_client()
            fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
            page = client.get("/console/login", headers=fwd)
            resp = client.post(
                "/console/login", data={"token": TOKEN, "csrf": csrf_of(page.data)}, headers=fwd
            )
            cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE + "="))
            assert ("Secure" in cookie) is secure

    def test_login_without_its_csrf_value_is_refused(self, client):
        assert client.post("/console/login", data={"token": TOKEN}).status_code == 403

    def test_wrong_token_is_slow_and_logged(self, client, monkeypatch, caplog):
        monkeypatch.setattr(auth, "WRONG_TOKEN_PAUSE_S", 1.0)
        started = time.monotonic()
        resp = log_in(client, "guess")
        assert resp.status_code == 401
        assert time.monotonic() - started >= 0.9  # a lower bound: never flaky
        record = next(r for r in caplog.records if r.getMessage() == "console: wrong admin token")
        assert record.reason == "console_wrong_token"
        assert "guess" not in caplog.text

    def test_too_many_wrong_tokens_are_refused_even_with_the_right_one(self, client):
        """After MAX_FAILURES in the window the client waits: guessing gets a few tries per quarter hour."""
        for _ in range(auth.MAX_FAILURES):
            assert log_in(client, "guess").status_code == 401
        resp = log_in(client)
        assert resp.status_code == 429
        assert 0 < int(resp.headers["Retry-After"]) <= auth.FAILURE_WINDOW_S

    def test_logout_ends_the_session_for_good(self, logged_in, client):
        csrf = csrf_of(client.get("/console/").data)
        sid = client.get_cookie(auth.COOKIE, path="/console").value
        assert client.post("/console/logout", data={"csrf": csrf}).status_code == 303
        client.set_cookie(auth.COOKIE, sid, path="/console")  # a copy of the old cookie is worth nothing
        assert client.get("/console/").status_code == 302

    def test_session_expires_when_idle(self, logged_in, client, store):
        sid = client.get_cookie(auth.COOKIE, path="/console").value
        key = store.key("console", f"session:{sid}")
        assert 0 < store.r.ttl(key) <= 30 * 60
        store.r.delete(key)  # what the idle TTL does
        assert client.get("/console/").status_code == 302

    def test_changing_the_token_ends_sessions(self, logged_in, client, settings, store):
        sid = client.get_cookie(auth.COOKIE, path="/console").value
        other = create_app(
            settings.with_(admin_token="another-token-xyz"), store=store, queue=RecordingQueue()
        )
        c2 = other.test_client()
        c2.set_cookie(auth.COOKIE, sid, path="/console")
        assert c2.get("/console/").status_code == 302

    def test_next_never_leaves_the_console(self, client):
        page = client.get("/console/login?next=//evil.example/")
        resp = client.post(
            "/console/login", data={"token": TOKEN, "csrf": csrf_of(page.data), "next": "//evil.example/"}
        )
        assert resp.headers["Location"] == "/console/"


class TestCsrf:
    def test_replay_without_csrf_is_refused(self, logged_in, client, store, queue):
        event_id = deliver(store)
        resp = client.post(f"/console/events/{event_id}/replay")
        assert resp.status_code == 403
        assert queue.sent == []

    def test_replay_with_csrf_acts_and_returns_to_the_event(self, logged_in, client, store, queue):
        event_id = deliver(store)
        csrf = csrf_of(client.get(f"/console/events/{event_id}").data)
        resp = client.post(f"/console/events/{event_id}/replay", data={"csrf": csrf})
        assert resp.status_code == 303
        assert resp.headers["Location"].startswith(f"/console/events/{event_id}")
        assert queue.sent == [(event_id, "replay")]


class TestEvents:
    def test_newest_first_with_status_and_type_filters(self, logged_in, client, store):
        old = deliver(store, "voucher.updated", now=1000.0)
        new = deliver(store, "voucher.created", now=2000.0)
        html = client.get("/console/events").data.decode()
        assert html.index(new) < html.index(old)
        assert old not in client.get("/console/events?type=voucher.created").data.decode()
        store.set_status(old, Status.DEAD, outbox=False, reason="smtp_refused")
        html = client.get("/console/events?status=dead").data.decode()
        assert old in html
        assert new not in html

    def test_source_and_time_filters(self, logged_in, client, store):
        a = deliver(store, now=1000.0, source="src_a")
        b = deliver(store, now=2000.0, source="src_b")
        html = client.get("/console/events?source=src_a").data.decode()
        assert a in html
        assert b not in html
        html = client.get("/console/events?since=1500").data.decode()
        assert b in html
        assert a not in html

    def test_bad_filter_is_a_400_naming_it(self, logged_in, client):
        resp = client.get("/console/events?since=yesterday")
        assert resp.status_code == 400
        assert "since" in resp.json["message"]
        assert client.get("/console/events?status=nope").status_code == 400
        assert client.get("/console/events?cursor=x_y").status_code == 400

    def test_cursor_pages_cover_every_event_once(self, logged_in, client, store, monkeypatch):
        """Pages go by position: same-time events across a page boundary are neither lost nor repeated."""
        from ingest.console import views

        monkeypatch.setattr(views, "PAGE", 4)
        ids = [deliver(store, now=1000.0 + i // 3) for i in range(11)]  # three per timestamp
        seen, url = [], "/console/events"
        while url:
            html = client.get(url).data.decode()
            seen += re.findall(r'href="/console/events/(evt_\w+)"', html)
            m = re.search(r'href="([^"]+)" rel="next"', html)
            url = m.group(1).replace("&amp;", "&") if m else None
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(ids)

    def test_search_by_our_id_and_by_voucherify_event_id(self, logged_in, client, store):
        event_id = deliver(store)
        resp = client.get(f"/console/events?q={event_id}")
        assert resp.headers["Location"] == f"/console/events/{event_id}"
        vf_id = json.loads(store.raw(event_id))["event"]["id"]
        assert client.get(f"/console/events?q={vf_id}").headers["Location"] == f"/console/events/{event_id}"
        assert b"No event found" in client.get("/console/events?q=evt_nothing").data


class TestEventPage:
    def test_emails_masked_until_revealed(self, logged_in, client, store, caplog):
        event_id = deliver(store, "customer.created", email="alex.doe@example.com")
        html = client.get(f"/console/events/{event_id}").data.decode()
        assert "alex.doe@example.com" not in html
        assert "a***@e***.com" in html
        revealed = client.get(f"/console/events/{event_id}?reveal=1").data.decode()
        assert "alex.doe@example.com" in revealed
        assert any(r.getMessage() == "console: raw body revealed" for r in caplog.records)

    def test_validation_errors_field_by_field(self, logged_in, client, store):
        event_id = deliver(store)
        store.set_status(
            event_id,
            Status.INVALID,
            outbox=False,
            reason="schema",
            errors=json.dumps({"data": {"code": ["Missing data for required field."]}}),
        )
        html = client.get(f"/console/events/{event_id}").data.decode()
        assert "<code>data.code</code>" in html
        assert "Missing data for required field." in html

    def test_attempt_timeline(self, logged_in, client, store):
        event_id = deliver(store)
        state = ActionState(
            ActionStatus.DEAD,
            attempts=2,
            last_error="550 refused by test",
            history=(
                {"at": 1000.0, "outcome": "failed", "error": "451 try later", "ms": 12},
                {"at": 1010.0, "outcome": "dead", "error": "550 refused by test", "ms": 9},
            ),
        )
        store.set_status(event_id, Status.DEAD, outbox=False, actions={"notify_customer": state})
        html = client.get(f"/console/events/{event_id}").data.decode()
        assert "451 try later" in html
        assert "550 refused by test" in html
        assert "12 ms" in html
        assert "Replay failed actions" in html
        assert "Replay all actions" in html

    def test_unknown_event_is_404(self, logged_in, client):
        assert client.get("/console/events/evt_nope").status_code == 404


class TestOverviewAndBulk:
    def test_overview_counts_and_chart(self, logged_in, client, store):
        event_id = deliver(store)
        store.set_status(event_id, Status.PROCESSED, outbox=False)
        html = client.get("/console/").data.decode()
        assert '<span class="n" data-status="processed">1</span>' in html
        assert "<svg" in html
        assert "processed: 1" in html  # a bar's tooltip

    def test_bulk_replay_counts_then_starts_a_job(self, logged_in, client, store, queue):
        for _ in range(3):
            store.set_status(deliver(store), Status.DEAD, outbox=False)
        html = client.get("/console/replay?status=dead").data.decode()
        assert '<strong id="count">3</strong>' in html
        csrf = csrf_of(html.encode())
        assert client.post("/console/replay", data={"csrf": csrf, "status": "dead"}).status_code == 400
        resp = client.post("/console/replay", data={"csrf": csrf, "status": "dead", "confirm": "1"})
        assert resp.status_code == 303
        job_id = resp.headers["Location"].rsplit("/", 1)[1]
        assert queue.sent == [(job_id, "replay_job")]
        assert b"0</span> of 3" in client.get(resp.headers["Location"]).data

    def test_dry_run_per_action_from_the_routes_the_workers_published(self, logged_in, client, store):
        """Backfill shows: a handler routed since the events arrived is counted, from the published table."""
        ignored = [deliver(store) for _ in range(2)]
        for event_id in ignored:
            store.set_status(event_id, Status.IGNORED, outbox=False, event_type="voucher.updated")
        html = client.get("/console/replay?status=ignored").data.decode()
        assert "no worker has published its routes" in html
        store.publish_routes({"voucher.updated": ("handler:shop.sync",)})
        html = client.get("/console/replay?status=ignored").data.decode()
        assert re.search(r"<code>handler:shop.sync</code></td><td>2</td>", html)


class TestHostileInput:
    @pytest.mark.parametrize(
        "query",
        [
            "cursor=nan_evt_x",
            "cursor=inf_evt_x",
            "cursor=-inf_",
            "cursor=1e999_x",
            "since=nan",
            "until=1e999",
            "q=*",
            "q=[",
            "q=" + "x" * 5000,
            "type=" + "%00" * 10,
            "source=%ff",
        ],
    )
    def test_bad_input_is_a_4xx_or_a_page_never_a_5xx(self, logged_in, client, store, query):
        deliver(store)
        resp = client.get(f"/console/events?{query}")
        assert resp.status_code < 500, resp.data[:500]

    @pytest.mark.parametrize("form", [{"since": "nan"}, {"status": "x"}, {"until": "9" * 400}])
    def test_bulk_replay_bad_filter_is_a_400(self, logged_in, client, form):
        assert client.get("/console/replay", query_string=form).status_code == 400


class TestMirror:
    """With MIRROR_DATABASE_URL: search by voucher code or customer id; an event links the rows it touched."""

    @pytest.fixture
    def mirrored(self, settings, store, queue, tmp_path):
        from core.mirror import Mirror
        from tests.support import fresh_mirror_url

        url = fresh_mirror_url("sqlite", None, tmp_path)
        app = create_app(settings.with_(admin_token=TOKEN, mirror_database_url=url), store=store, queue=queue)
        client = app.test_client()
        log_in(client)
        event_id = deliver(store, "voucher.updated")
        mirror = Mirror.from_url(url)
        mirror.apply_raw(store.raw(event_id), event_id)
        voucher = json.loads(store.raw(event_id))["data"]["voucher"]
        return client, event_id, voucher

    def test_search_by_voucher_code_finds_the_last_event(self, mirrored):
        client, event_id, voucher = mirrored
        resp = client.get("/console/events", query_string={"q": voucher["code"]})
        assert resp.status_code in (302, 303)
        assert resp.headers["Location"].endswith(f"/console/events/{event_id}")

    def test_event_page_links_the_rows_it_touched(self, mirrored):
        client, event_id, voucher = mirrored
        page = client.get(f"/console/events/{event_id}").data.decode()
        assert f"/console/mirror/vouchers/{voucher['id']}" in page
        row = client.get(f"/console/mirror/vouchers/{voucher['id']}")
        assert row.status_code == 200
        assert voucher["code"] in row.data.decode()
        assert event_id in row.data.decode()  # the history links back

    def test_without_the_mirror_the_row_page_is_404(self, logged_in):
        assert logged_in.get("/console/mirror/vouchers/v_1").status_code == 404
