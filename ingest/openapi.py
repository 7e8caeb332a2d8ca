"""GET /openapi.json: the intake's and the admin API's contract, an OpenAPI 3.1 document kept in the repo.

ingest/openapi.json is the document; the test suite runs schemathesis against a live service with it
(tests/e2e/test_openapi.py), so the document and the service cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from flask import Blueprint, Response

bp = Blueprint("openapi", __name__)


@cache
def document() -> bytes:
    """The document's bytes, read and checked once (a broken file fails the app's start, not a request)."""
    raw = resources.files("ingest").joinpath("openapi.json").read_bytes()
    doc = json.loads(raw)
    if not str(doc.get("openapi", "")).startswith("3.1"):
        raise ValueError("ingest/openapi.json is not an OpenAPI 3.1 document")
    return raw


@bp.get("/openapi.json")
def openapi() -> Response:
    return Response(document(), mimetype="application/json")
