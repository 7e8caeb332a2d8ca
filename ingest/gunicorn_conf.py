"""gunicorn settings for the intake: `gunicorn -c python:ingest.gunicorn_conf 'ingest:create_app()'`.

Only what the command line cannot say: gunicorn's own lines as JSON, like the app's.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from ingest.logs import JsonFormatter


class JsonLogger(Logger):
    """gunicorn's own lines (start, workers booting and dying, the access log if asked for) as JSON."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())


logger_class = JsonLogger
