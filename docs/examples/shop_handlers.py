"""Example handlers (docs/handlers.md): a Slack-compatible message when a campaign's codes are ready, and a
CRM sync of every voucher change. Run them with

    PYTHONPATH=docs/examples HANDLERS=shop_handlers SLACK_WEBHOOK_URL=https://hooks.slack.com/... \\
        CRM_URL=https://crm.example.com/api voucherify-ingest run

Only the standard library, so the example runs anywhere the service does.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from workers.handlers import Event, PermanentError, Skip, TransientError, on


def _post(url: str, body: dict, *, idempotency_key: str | None = None) -> None:
    """POST JSON; a 5xx, a 429 or no answer is worth retrying, any other refusal is not."""
    headers = {"Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if not url.startswith(("https://", "http://")):
        raise PermanentError(f"not an http(s) URL: {url}", reason="bad_url")
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - checked above
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"{url} answered {exc.code}", reason=f"http_{exc.code}") from exc
        raise PermanentError(f"{url} refused: {exc.code}", reason=f"http_{exc.code}") from exc
    except OSError as exc:
        raise TransientError(f"{url} unreachable: {exc}", reason="unreachable") from exc


@on("campaign.vouchers.generation.completed")
def announce_codes(event: Event) -> str | Skip:
    """Tell the team on Slack that a campaign's codes are ready; once per campaign and run of generation."""
    url = os.environ.get("SLACK_WEBHOOK_URL")
    if not url:
        return Skip("SLACK_WEBHOOK_URL is not set")
    campaign, count = event.data.campaign, event.data.count
    text = f":tada: {count} codes generated for *{campaign.name}* ({campaign.id})"
    # Slack has no idempotency key: once() makes sure a retry or a replay does not post twice.
    posted = event.once(f"{campaign.id}:{event.data.completed_at}", lambda: _post(url, {"text": text}))
    return "posted to Slack" if posted else Skip("already posted")


@on("voucher.updated", "voucher.enabled", "voucher.disabled", max_attempts=10, timeout=15)
def sync_voucher(event: Event) -> str | Skip:
    """Keep the CRM's copy of each voucher current; the CRM deduplicates on the Idempotency-Key."""
    url = os.environ.get("CRM_URL")
    if not url:
        return Skip("CRM_URL is not set")
    voucher = event.data.voucher
    body = {"code": voucher.code, "active": voucher.active, "holder": voucher.holder_id}
    _post(f"{url}/vouchers/{voucher.code}", body, idempotency_key=event.voucherify_id)
    return f"synced {voucher.code}"
