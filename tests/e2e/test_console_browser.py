"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright.

Against the real service: gunicorn serving the intake, a Celery worker with the reconciler, the embedded
store, an SMTP server that refuses and then recovers. The screenshots in the README are taken here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.settings import Settings
from core.store import EventStore
from tests.support import ROOT, SECRET, SmtpSink, free_port, start_intake, start_worker, wait_for, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "console-e2e-token-" + "t" * 16
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def shots(tmp_path: Any) -> Any:
    """Where the screenshots go: docs/ (the README's) with UPDATE_SCREENSHOTS=1, else the test's own folder,
    so a plain test run leaves the work tree clean."""
    return ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        # CI installs it (.ci/run) and sets REQUIRE_BROWSER=1, so there the test cannot quietly skip.
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium to run the browser tests")
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def service(valkey_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """gunicorn + a Celery worker (with the reconciler) on a fresh database, mail to a real SMTP server."""
    import redis

    url = f"{valkey_server}/0"
    redis.Redis.from_url(url).flushdb()
    smtp = SmtpSink().start()
    logs = tmp_path_factory.mktemp("console")
    env = worker_env(
        url,
        SMTP_URL=smtp.url,
        NOTIFY_FROM="shop@example.com",
        ADMIN_TOKEN=TOKEN,
        DATA_DIR=str(logs),
        ACTION_BACKOFF_BASE_SECONDS="0.2",
    )
    port = free_port()
    procs = []
    try:
        procs.append(start_worker(env, logs / "worker.log", concurrency=2))
        procs.append(start_intake(env, logs / "intake.log", port=port))
        yield {
            "base": f"http://127.0.0.1:{port}",
            "env": env,
            "smtp": smtp,
            "store": EventStore.from_settings(Settings(redis_url=url)),
        }
    finally:
        for proc in procs:
            proc.stop()
        smtp.stop()


def send_test(service: dict[str, Any], *args: str) -> str:
    """`voucherify-ingest send-test ...` against the intake; the new event's id."""
    res = subprocess.run(
        [sys.executable, "-m", "cli", "send-test", *args, "--url", f"{service['base']}/webhooks/voucherify"],
        env={**service["env"], "VOUCHERIFY_WEBHOOK_SECRETS": SECRET},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    m = re.search(r'"id":\s*"(evt_\w+)"', res.stdout)
    assert m, res.stdout
    return m.group(1)


def reload_until(page: Any, selector: str, text: str, timeout: float = 30) -> None:
    """Reload the page until `selector` shows `text` (the pages are server-rendered)."""

    def shown() -> bool:
        page.reload()
        return text in (page.text_content(selector) or "")

    wait_for(shown, timeout=timeout, interval=0.3, what=f"{selector} to show {text!r}")


def test_console_end_to_end(browser, service, tmp_path):
    """Log in, see events arrive, a refused email go dead with its reason, replay it from the page once the
    server recovers, and see it processed; a wrong token and a POST without CSRF are refused."""
    started = time.monotonic()
    base, smtp, store = service["base"], service["smtp"], service["store"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # Strangers are sent to the login; a wrong token is refused.
        page.goto(f"{base}/console/")
        assert page.url.startswith(f"{base}/console/login")
        page.fill("input[name=token]", "not-the-token")
        page.click("button[type=submit]")
        assert "wrong token" in page.text_content("p.error")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/")
        assert page.text_content("h1") == "Overview"

        # Some traffic that settles fine, then an email the SMTP server refuses.
        fine = [
            send_test(service, name) for name in ("voucher.updated", "voucher.created", "customer.created")
        ]
        smtp.refuse_code = 550
        dead = send_test(service, "publication.succeeded", "--email", "alex.doe@example.com")

        page.goto(f"{base}/console/events")
        for event_id in (*fine, dead):
            reload_until(page, "table.events", event_id)
        reload_until(page, "table.events", "dead")

        page.click(f"a[href='/console/events/{dead}']")
        page.wait_for_url(f"{base}/console/events/{dead}")
        assert "dead" in page.text_content("h1")
        assert "550" in page.text_content("section.action")
        raw = page.text_content("#raw")
        assert "alex.doe@example.com" not in raw
        assert "a***@e***.com" in raw

        # A POST without the form's CSRF token is refused, even with the session cookie.
        resp = context.request.post(f"{base}/console/events/{dead}/replay", form={"all": "1"})
        assert resp.status == 403

        # The server recovers; one click replays the failed action and comes back to the event.
        smtp.refuse_code = None
        page.click("#replay-failed")
        page.wait_for_url(re.compile(rf".*/console/events/{dead}\?replayed=1$"))
        reload_until(page, "h1", "processed")
        assert "succeeded" in page.text_content("section.action")
        wait_for(lambda: smtp.to("alex.doe@example.com"), timeout=10, what="the email")
        page.goto(f"{base}/console/events/{dead}")
        page.screenshot(path=str(shots(tmp_path) / "console-event.png"), full_page=False)

        page.goto(f"{base}/console/")
        settled = sum(int(page.text_content(f"[data-status={s}]")) for s in ("processed", "ignored"))
        assert settled == len(fine) + 1
        assert page.locator("svg.chart rect").count() >= 1
        page.screenshot(path=str(shots(tmp_path) / "console-overview.png"), full_page=True)
        assert store.document(dead)["status"] == "processed"

        # Bulk replay: a filter, its dry-run count, confirm, then the job's progress to the end.
        page.goto(f"{base}/console/replay")
        page.select_option("select[name=status]", "ignored")
        page.click("form.filters button[type=submit]")
        assert page.text_content("#count") == str(len(fine))
        # Per action, from the routes the worker published when it started: nothing routes these types.
        assert "(nothing)" in page.text_content("table.would-run")
        page.check("input[name=confirm]")
        page.click("#start")
        page.wait_for_url(re.compile(r".*/console/replay/job_\w+$"))
        reload_until(page, "#state", "done")
        assert page.text_content("#done") == str(len(fine))
    finally:
        context.close()
    print(f"\nbrowser test wall time: {time.monotonic() - started:.1f} s")
