"""`voucherify-ingest run` in a terminal: readable lines, one per delivery and per settled event.

Run under a pseudo-terminal (pty), as a developer's shell runs it: every child inherits the terminal.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, http, run_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class Terminal:
    """`run` with a pty as its stdin, stdout and stderr; what it writes is collected as text."""

    def __init__(self, data: Path, **env: str) -> None:
        self.port = free_port()
        self.env = {**run_env(data), **env}
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "run", "--port", str(self.port), "--workers", "1"],
            env=self.env,
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"run exited ({self.proc.returncode}):\n{self.text[-3000:]}")
            return needle in self.text

        try:
            wait_for(seen, timeout=timeout, interval=0.1, what=repr(needle))
        except AssertionError:
            raise AssertionError(f"{needle!r} not seen:\n{self.text[-3000:]}") from None

    def send_test(self, *args: str) -> None:
        url = f"http://127.0.0.1:{self.port}/webhooks/voucherify"
        res = subprocess.run(
            [sys.executable, "-m", "cli", "send-test", *args, "--url", url],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stderr

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            os.close(self.master)


def _ready(port: int) -> bool:
    try:
        return http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200
    except OSError:  # not listening yet
        return False


def start(data: Path, **env: str) -> Terminal:
    term = Terminal(data, **env)
    try:
        term.wait_for("stop       Ctrl-C")
        wait_for(
            lambda: _ready(term.port),
            timeout=30,
            interval=0.2,
            what="the intake to be ready",
        )
        term.wait_for("ready")  # the worker consumes
    except BaseException:
        term.stop()
        raise
    return term


def test_readable_lines_in_a_terminal(tmp_path):
    """A delivery and its settled event are one readable line each; nothing is printed as JSON."""
    term = start(tmp_path)
    try:
        term.send_test("publication.succeeded", "--email", "alex.doe@example.com")
        term.wait_for("<-- publication.succeeded")
        term.wait_for("PROCESSED")
    finally:
        term.stop()
    lines = [line for line in term.text.splitlines() if line.strip()]
    delivery = next(line for line in lines if "--> delivery" in line)
    assert "evt_" in delivery
    assert "queued" in delivery
    settled = next(line for line in lines if "<-- publication.succeeded" in line)
    assert "notify_customer=" in settled
    assert not [line for line in lines if line.lstrip().startswith("{")], term.text
    assert "alex.doe@example.com" not in term.text
    # The reconciler's idle passes and Celery's per-task lines are not printed at INFO.
    assert "reconciler pass" not in term.text
    assert "Sending due task" not in term.text


def test_log_format_json_keeps_json_in_a_terminal(tmp_path):
    term = start(tmp_path, LOG_FORMAT="json")
    try:
        term.send_test("voucher.updated")
        term.wait_for('"msg": "webhook accepted"')
    finally:
        term.stop()
    assert "--> delivery" not in term.text
