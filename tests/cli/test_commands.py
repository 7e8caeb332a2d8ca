"""The process command lines: one source (cli/commands.py), spelled the same in every deployment file."""

from __future__ import annotations

import json
import re
import shlex
import sys

from cli import commands
from tests.support import ROOT

# How the deployment files write the parts a platform fills in.
# The Procfile and the Dockerfile bind every interface: the platform or the container decides exposure.
PROCFILE_WEB = commands.web(host="0.0.0.0", port="$PORT", web_concurrency="${WEB_CONCURRENCY:-2}")  # noqa: S104


def unpython(argv: list[str]) -> list[str]:
    """`python -m gunicorn ...` as a deployment file writes it: `gunicorn ...`."""
    assert argv[:2] == [sys.executable, "-m"]
    return argv[2:]


def procfile() -> dict[str, list[str]]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        out[name.strip()] = shlex.split(command)
    return out


class TestDeploymentFiles:
    def test_procfile_web_is_the_web_command(self):
        """The Procfile's web process is exactly commands.web()."""
        assert procfile()["web"] == unpython(PROCFILE_WEB)

    def test_procfile_worker_and_reconciler(self):
        """The Procfile's worker and reconciler are exactly commands.WORKER and commands.BEAT."""
        assert procfile()["worker"] == list(commands.WORKER)
        assert procfile()["reconciler"] == list(commands.BEAT)

    def test_dockerfile_cmd_is_the_web_command(self):
        """The Dockerfile's CMD runs the same web command line as the Procfile."""
        cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
        assert cmd is not None
        argv = json.loads(cmd.group(1))
        assert argv[:2] == ["sh", "-c"]
        assert shlex.split(argv[2]) == unpython(PROCFILE_WEB)

    def test_compose_worker_and_reconciler(self):
        """docker-compose.yml's worker and reconciler commands are commands.WORKER and commands.BEAT."""
        text = (ROOT / "docker-compose.yml").read_text()
        found = {
            m.group(1): json.loads(m.group(2))
            for m in re.finditer(r"^  (\w+):\n(?:    .*\n)*?    command: (\[.*\])$", text, re.M)
        }
        assert found["worker"] == list(commands.WORKER)
        assert found["reconciler"] == list(commands.BEAT)


class TestLocal:
    def test_run_starts_the_procfile_programs(self, tmp_path):
        """`run` starts the Procfile's web command and its worker, with the reconciler inside the worker."""
        web, worker = commands.local(host="127.0.0.1", port=8123, concurrency=3, data_dir=tmp_path)
        assert web == commands.web(host="127.0.0.1", port=8123)
        assert unpython(worker)[: len(commands.WORKER)] == list(commands.WORKER)
        assert unpython(worker)[len(commands.WORKER) :] == [
            "--beat",
            "--concurrency",
            "3",
            "--schedule",
            str(tmp_path / "celerybeat-schedule"),
        ]


class TestSlowClientProtection:
    def test_the_web_command_brings_the_buffering_worker(self):
        """The config file every deployment names sets the worker that keeps slow clients off the threads."""
        from ingest import gunicorn_conf

        assert gunicorn_conf.worker_class == "ingest.buffered_worker.BufferedThreadWorker"
        assert unpython(commands.web(host="h", port=1))[1:3] == ["--config", "python:ingest.gunicorn_conf"]
        assert "--worker-class" not in commands.WEB  # it would override the config's

    def test_the_off_switch_falls_back_to_gthread(self):
        """INTAKE_BUFFERING=0 serves with gunicorn's own gthread worker (should a release break ours)."""
        from core.settings import Settings
        from ingest import gunicorn_conf

        assert Settings.from_env({"INTAKE_BUFFERING": "0"}).intake_buffering is False
        assert gunicorn_conf.worker_class_for(Settings(intake_buffering=False)) == "gthread"
