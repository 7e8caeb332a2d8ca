"""The ceilings we measure against: the least the same stack can do.

- `create_ceiling_app()`: the least a durable intake can do: a Flask view that writes the body to Redis
  with one command and answers 202. Served by the same gunicorn configuration as the real intake.
- `create_wsgi_ceiling_app()`: the same without Flask, a bare WSGI callable. The intake answers its route
  ahead of Flask's request machinery (ingest/intake.py), which the Flask ceiling still pays for; against
  this one the ratio is the cost of the intake's promises alone, not of the framework.
- `bench.noop` (the Celery app of `benchmarks.noop_app`): Celery's own no-op task, with the same broker
  and worker settings as the real workers (`create_celery`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import redis
from flask import Flask, Response, jsonify, request

from core.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from celery import Celery


def create_ceiling_app() -> Flask:
    """Flask + one Redis SET per request, nothing else."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    app = Flask("ceiling", static_folder=None)

    @app.post("/webhooks/voucherify")
    def receive() -> tuple[Response, int]:
        event_id = uuid.uuid4().hex
        client.set(f"ceiling:{event_id}", request.get_data())
        return jsonify(id=event_id, status="queued"), 202

    return app


def create_wsgi_ceiling_app() -> WSGIApplication:
    """One Redis SET per request and a 202, in a WSGI callable of its own."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        event_id = uuid.uuid4().hex
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        client.set(f"ceiling:{event_id}", body)
        answer = f'{{"id":"{event_id}","status":"queued"}}\n'.encode()
        start_response(
            "202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
        )
        return [answer]

    return app


def create_noop_celery() -> Celery:
    """The workers' Celery app with a no-op task added under a bench-only name."""
    from workers.app import create_celery

    app = create_celery(Settings.from_env())

    @app.task(name="bench.noop", acks_late=True, ignore_result=True)
    def noop(event_id: str) -> None:
        return None

    return app
