"""The service's process command lines, in one place.

The Procfile, the Dockerfile, docker-compose.yml and `voucherify-ingest run` all start the same programs with
the same flags; tests/cli/test_commands.py checks that the files spell exactly what these functions return, so
the copies cannot drift again.
"""

from __future__ import annotations

import sys
from pathlib import Path

# gunicorn serving the intake: JSON logs and per-process metrics from ingest.gunicorn_conf; threads, because a
# request spends most of its time waiting on Redis; the graceful timeout lets in-flight deliveries finish.
WEB = (
    "gunicorn",
    "--config",
    "python:ingest.gunicorn_conf",
    "--bind",
    "{host}:{port}",
    "--workers",
    "{web_concurrency}",
    "--threads",
    "8",
    "--graceful-timeout",
    "10",
    "{app}",
)
APP = "ingest:create_app()"
# `--quiet`: no ASCII banner, so every line a worker writes is a JSON log line.
WORKER = ("celery", "-A", "workers", "--quiet", "worker", "--loglevel", "INFO")
BEAT = ("celery", "-A", "workers", "--quiet", "beat", "--loglevel", "INFO")


def _python(argv: tuple[str, ...]) -> list[str]:
    # This interpreter's copy of the program, whatever is on PATH.
    return [sys.executable, "-m", *argv]


def web(*, host: str, port: int | str, web_concurrency: int | str = 2, app: str = APP) -> list[str]:
    """The intake's gunicorn command line (`port` and `web_concurrency` may be shell words like `$PORT`).

    `app` is for the benchmark, which serves its ceiling app under the very same server settings.
    """
    fill = {"host": host, "port": port, "web_concurrency": web_concurrency, "app": app}
    return _python(tuple(a.format(**fill) for a in WEB))


def local(*, host: str, port: int, concurrency: int, data_dir: Path) -> list[list[str]]:
    """What `voucherify-ingest run` starts: the intake, and one worker that also runs the reconciler."""
    schedule = str(data_dir / "celerybeat-schedule")
    worker = (*WORKER, "--beat", "--concurrency", str(concurrency), "--schedule", schedule)
    return [web(host=host, port=port), _python(worker)]
