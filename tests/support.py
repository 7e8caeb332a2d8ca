"""Real collaborators for the tests: an SMTP sink, a Celery worker process, an HTTP sink, signing helpers.

Every process started here has a bounded start-up wait and is stopped (process group and all) on teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.settings import Settings
from core.store import EventStore
from ingest import signature

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-" + "k" * 20  # a test secret; signatures are always computed from it, never pasted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(doc: Any, secret: str = SECRET, *, compact: bool = True) -> tuple[bytes, dict[str, str]]:
    """A body and the headers Voucherify would send for it."""
    body = json.dumps(doc, separators=(",", ":") if compact else None).encode()
    return body, {"Content-Type": "application/json", signature.HEADER: signature.sign(secret, body)}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until predicate() is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class SmtpSink:
    """A real SMTP server on localhost (aiosmtpd) that keeps what it receives; can be told to refuse.

    `rcpt_delay` makes each RCPT slow (the phase before the server accepts a message), and `on_rcpt` is
    called with how many RCPTs are being held at that moment. Addresses in `unknown` are refused at RCPT
    (550, no such mailbox). stop() then start() brings the server back on
    the same port, keeping what it received.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) of each message kept
        self.refuse_code: int | None = None
        self.unknown: set[str] = set()
        self.rcpt_delay = 0.0
        self.on_rcpt: Callable[[int], None] | None = None
        self._in_rcpt = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd API
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self._in_rcpt += 1  # only the server's event loop runs this: no lock needed
        try:
            if self.on_rcpt is not None:
                self.on_rcpt(self._in_rcpt)
            if self.rcpt_delay:
                await asyncio.sleep(self.rcpt_delay)
        finally:
            self._in_rcpt -= 1
        if address in self.unknown:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        if self.refuse_code:
            return f"{self.refuse_code} refused by test"
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self) -> SmtpSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]


class HttpSink:
    """A real HTTP server on localhost that records POSTs and answers with a settable status.

    `requests` keeps the 2xx-answered ones (what the receiver accepted), `attempts` every POST;
    `reply_headers` go with every answer (a Retry-After, say); `delay` holds answers back (a slow receiver).
    Pass the port of a stopped sink to bring a receiver back on the same URL.
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.reply_headers: dict[str, str] = {}
        self.delay = 0.0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = sink.status
                with sink._lock:
                    sink.attempts.append((headers, body))
                if sink.delay:
                    time.sleep(sink.delay)
                if 200 <= status < 300:
                    with sink._lock:
                        sink.requests.append((headers, body))
                self.send_response(status)
                for name, value in sink.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TcpProxy:
    """A TCP forwarder from a local port to `target_port` that a test can cut (every connection closed, new
    ones refused) and restore on the same port: a database that goes away without stopping the real one."""

    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut or stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept() (close alone would leave it listening).
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.start()

    stop = cut


class Proc:
    """A child process in its own process group, its output captured to a file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, env=dict(env), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited ({self.popen.returncode}):\n{self.output()[-3000:]}")
            return text in self.output()

        try:
            wait_for(seen, timeout=timeout, interval=0.1, what=repr(text))
        except AssertionError:
            if self.popen.poll() is not None:  # say how it ended: a refusal to start is an exit code
                raise AssertionError(
                    f"process exited ({self.popen.returncode}) before {text!r}:\n{self.output()[-3000:]}"
                ) from None
            raise AssertionError(f"{text!r} not seen in output:\n{self.output()[-3000:]}") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.kill(signal.SIGKILL)  # stragglers in the group
        self._log.close()


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    # PROMETHEUS_MULTIPROC_DIR is the test process's own (conftest): an intake started here gets its own.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY", "FORWARD_", "SMTP_", "PROMETHEUS_"))
    }
    env.update(
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        VOUCHERIFY_WEBHOOK_SECRETS=SECRET,
        RECONCILE_INTERVAL_SECONDS="0.5",
        OUTBOX_LEASE_SECONDS="10",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_intake(env: Mapping[str, str], log_path: Path, *, port: int, workers: int = 2) -> Proc:
    """The real intake as production runs it (gunicorn, our config, several processes); returns when ready."""
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:ingest.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--no-control-socket",  # several test intakes must not fight over ~/.gunicorn/gunicorn.ctl
        "ingest:create_app()",
    ]
    proc = Proc(args, env, log_path)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"intake exited ({proc.popen.returncode}):\n{proc.output()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_for(up, timeout=30, interval=0.1, what="the intake to answer /healthz")
    return proc


def start_procfile_intake(
    redis_url: str, data_dir: Path, *, workers: int = 2, **env: str
) -> tuple[Proc, str]:
    """gunicorn with cli.commands.web's arguments, as the Procfile and the image run it; (process, URL)."""
    from cli import commands

    port = free_port()
    args = commands.web(host="127.0.0.1", port=port, web_concurrency=workers)
    args.insert(-1, "--no-control-socket")  # as start_intake: test intakes must not share one control socket
    proc = Proc(args, worker_env(redis_url, DATA_DIR=str(data_dir), **env), data_dir / "intake.log")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"intake exited ({proc.popen.returncode}):\n{proc.output()[-3000:]}")
        try:
            return http("GET", f"{base}/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=30, interval=0.1, what="the intake to answer /healthz")
    except BaseException:
        proc.stop()
        raise
    return proc, base


def http(method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None):
    """(status, body bytes, headers) of one request; HTTP errors are answers too, not exceptions."""
    req = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(metrics: Samples, name: str, **labels: str) -> float:
    """One sample's value from parse_metrics' result; an absent series fails the test.

    Absent is not zero: a `== 0` check must not pass because the series disappeared.
    """
    key = (name, tuple(sorted(labels.items())))
    if key not in metrics:
        near = sorted(str(dict(k[1])) for k in metrics if k[0] == name)
        raise AssertionError(f"no series {name}{dict(labels)}; {name} has: {near or 'no series at all'}")
    return metrics[key]


def start_worker(
    env: Mapping[str, str],
    log_path: Path,
    *,
    concurrency: int = 2,
    beat: bool = True,
    quiet: bool = False,
    extra_args: tuple[str, ...] = (),
) -> Proc:
    """A real `celery -A workers worker` process; returns once it is ready to consume.

    quiet: as the Procfile runs it, without the ASCII banner, so every line it writes is a JSON log line.
    """
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers",
        *(["--quiet"] if quiet else []),
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        *extra_args,
    ]
    if beat:
        args += ["--beat", "--schedule", str(log_path.with_suffix(".beat"))]
    proc = Proc(args, env, log_path)
    try:
        proc.wait_for_output("ready.", timeout=60)
    except BaseException:
        proc.stop()  # a worker that refused to start (or hung): nothing left running, its log closed
        raise
    return proc


EVENT_TYPES_DOC = ROOT / "docs" / "event-types.md"
_DOC_ROW = re.compile(
    r"^\| `(?P<type>[^`]+)` \| [^|]+ \| (?P<schema>[^|]+) \| (?P<example>[^|]+) \| (?P<route>[^|]+) \|$"
)


def event_types_doc() -> dict[str, dict[str, str]]:
    """The rows of docs/event-types.md's table, by event type: schema, example, route."""
    found = {}
    for line in EVENT_TYPES_DOC.read_text(encoding="utf-8").splitlines():
        if m := _DOC_ROW.match(line):
            found[m["type"]] = {k: v.strip() for k, v in m.groupdict().items()}
    return found


# The PostgreSQL the mirror tests use (this machine's and CI's: trust auth on 127.0.0.1:5432, user postgres);
# MIRROR_TEST_POSTGRES_URL names another server's maintenance database.
POSTGRES_ADMIN_URL = os.environ.get(
    "MIRROR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def fresh_mirror_url(kind: str, postgres: str | None, tmp_path: Path) -> str:
    """An empty, migrated mirror (and archive) database of `kind` ("sqlite" or "postgresql"); skips when none
    answers."""

    from core import db
    from core.archive.tables import archived
    from core.mirror.tables import TABLES, history

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'mirror.sqlite3'}"
    elif postgres is None:
        pytest.skip(f"no PostgreSQL answers at {POSTGRES_ADMIN_URL} (set MIRROR_TEST_POSTGRES_URL)")
    else:
        url = postgres
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with engine.begin() as conn:
            for t in (*TABLES.values(), history, archived):
                conn.execute(t.delete())
    finally:
        engine.dispose()
    return url


def worker_start_refused(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Start `celery -A workers worker` where it should refuse to start; its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo"],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- `voucherify-ingest run` as a newcomer starts it ------------------------------------------------------


@dataclass
class Service:
    port: int
    env: dict[str, str]
    data: Path
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/voucherify"

    @property
    def store(self) -> EventStore:
        """The embedded store `run` started, read directly: for waiting, not for what is being tested."""
        url = (self.data / "embedded-redis.url").read_text().strip()
        return EventStore.from_settings(Settings(redis_url=url))


def run_env(data: Path) -> dict[str, str]:
    """A clean environment: no store URL (so `run` embeds Valkey), no secret (so it makes one)."""
    drop = ("REDIS_URL", "CELERY", "VOUCHERIFY_", "PROMETHEUS_", "FORWARD_", "SMTP_", "ADMIN_", "DATA_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATA_DIR=str(data), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", RECONCILE_INTERVAL_SECONDS="0.5"
    )
    return env


def start_run(data: Path) -> Service:
    port = free_port()
    env = run_env(data)
    proc = Proc(
        [sys.executable, "-m", "cli", "run", "--port", str(port), "--workers", "2"],
        env,
        data / "run.log",
    )
    try:
        proc.wait_for_output("stop       Ctrl-C", timeout=60)
        wait_for(
            lambda: http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200 if answers(port) else False,
            timeout=30,
            interval=0.2,
            what="the intake to be ready",
        )
    except BaseException:
        proc.stop()
        raise
    return Service(port, env, data, proc)


def answers(port: int) -> bool:
    """True when something answers HTTP on the port."""
    try:
        http("GET", f"http://127.0.0.1:{port}/healthz")
    except OSError:
        return False
    return True


def stop_run(service: Service) -> int:
    """SIGTERM to `run` alone, as Ctrl-C or a supervisor would; it stops its children itself."""
    service.proc.popen.send_signal(signal.SIGTERM)
    try:
        return service.proc.popen.wait(timeout=40)
    finally:
        service.proc.stop()  # anything left in the group, whatever happened


def record_round_trips(r: Any, monkeypatch: pytest.MonkeyPatch, *, pipeline_label: str) -> list[str]:
    """Record each round trip a Redis client makes from now on: a command's name, or for a pipeline
    `<pipeline_label>:` and the names of the commands it sends at once."""
    trips: list[str] = []
    real_command, real_pipeline = r.execute_command, r.pipeline

    def command(*args: Any, **kwargs: Any) -> Any:
        trips.append(args[0])
        return real_command(*args, **kwargs)

    def pipeline_(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*a: Any, **kw: Any) -> Any:
            trips.append(f"{pipeline_label}:" + " ".join(str(c[0]) for c, _ in pipe.command_stack))
            return real_execute(*a, **kw)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(r, "execute_command", command)
    monkeypatch.setattr(r, "pipeline", pipeline_)
    return trips
