"""`voucherify-ingest send-test`: POST a correctly signed example webhook to a URL."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core import examples
from core.settings import Settings
from ingest import signature


def register(sub: Any) -> None:
    """Add the `send-test` command."""
    st = sub.add_parser(
        "send-test", help="POST a correctly signed example webhook (from the corpus or a file)"
    )
    st.add_argument("event_type", nargs="?", help="an event type or example name, e.g. publication.succeeded")
    st.add_argument("--file", type=Path, help="send this JSON file (an envelope, or a data object to wrap)")
    st.add_argument("--url", default=None, help="default: http://127.0.0.1:$PORT/webhooks/voucherify")
    st.add_argument(
        "--secret",
        default=None,
        help="default: first of $VOUCHERIFY_WEBHOOK_SECRETS, or the local secret `run` made",
    )
    st.add_argument("--email", help="set the customer's email (to see a notification arrive)")
    st.add_argument("--list", action="store_true", help="list the example names and exit")
    st.set_defaults(func=cmd_send_test)


def cmd_send_test(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(examples.names()))
        return 0
    settings = Settings.from_env()
    if args.file:
        doc = json.loads(args.file.read_text())
        if not examples.is_envelope(doc):
            if not args.event_type:
                raise SystemExit("--file holds a data object: name its event type too")
            doc = examples.envelope(args.event_type, doc)
    elif args.event_type:
        try:
            doc = examples.example_envelope(args.event_type)
        except KeyError as exc:
            raise SystemExit(str(exc).strip("'\"")) from None
        # Fresh ids, so each test send is a new event rather than a duplicate of the last one.
        fresh = examples.envelope(examples.event_type_of(args.event_type), None)
        doc["id"] = fresh["id"]
        doc["event"] = {**doc["event"], "id": fresh["event"]["id"]}
    else:
        raise SystemExit("name an event type (see --list) or give --file")
    if args.email:
        _set_email(doc, args.email)
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    secret = args.secret or _default_secret(settings)
    url = args.url or f"http://127.0.0.1:{settings.port}/webhooks/voucherify"
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[signature.HEADER] = signature.sign(secret, body)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - operator's URL
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - operator's URL
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        print(f"cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1
    print(f"{status} {text.strip()}")
    return 0 if 200 <= status < 300 else 1


def _default_secret(settings: Settings) -> str | None:
    if settings.webhook_secrets:
        return settings.webhook_secrets[0]
    path = settings.data_dir.resolve() / "dev-secret"
    return path.read_text().strip() if path.exists() else None


def _set_email(doc: dict[str, Any], email: str) -> None:
    data = doc.get("data")
    if not isinstance(data, dict):
        return
    for holder in (data, data.get("publication")):
        if isinstance(holder, dict) and isinstance(holder.get("customer"), dict):
            holder["customer"]["email"] = email
