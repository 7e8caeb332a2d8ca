"""Email templates through a real Celery worker: a broken template directory stops it at start."""

from __future__ import annotations

import pytest

from tests.support import start_worker, worker_env

pytestmark = pytest.mark.integration


def test_worker_refuses_a_broken_template_directory(redis_url, tmp_path):
    """A syntax error on line 3 of body.html: exit code 2 before consuming anything, the file and line
    in its output, rather than a worker that fails every customer email."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "subject.txt").write_text("Your code")
    (folder / "body.txt").write_text("{{ codes|join(', ') }}\n")
    (folder / "body.html").write_text("<p>\n{% for code in codes %}\n{{ code }\n{% endfor %}\n</p>\n")
    log = tmp_path / "worker.log"
    env = worker_env(redis_url, NOTIFY_TEMPLATES_DIR=str(folder))
    try:
        worker = start_worker(env, log, concurrency=1, beat=False)
    except AssertionError as exc:
        said = str(exc)
    else:
        worker.stop()
        pytest.fail("the worker started with a broken template directory")
    assert said.startswith("process exited (2) before 'ready.'")
    output = log.read_text()
    assert f"{folder / 'body.html'}:3" in output
    assert "ready." not in output
