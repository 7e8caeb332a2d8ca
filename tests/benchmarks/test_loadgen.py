"""The benchmark's load generator, in its own process, against a real HTTP/1.1 server that records each
connection and request."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.connections = 0  # accepted
        self.paths: list[str] = []  # every request's path, in the order they were answered


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the intake's gunicorn
    server: Recorder

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.paths.append(self.path)
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def loadgen(server: Recorder, paths: list[str], *extra: str) -> list[dict]:
    port = server.server_address[1]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            *(f"http://127.0.0.1:{port}{path}" for path in paths),
            "--secret",
            "s",
            "--connections",
            "2",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=50,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


class TestLoadgen:
    def test_connections_are_opened_again_after_so_many_requests(self, server):
        """With --requests-per-connection 5, no connection carries more than 5 requests: a multi-process
        server gets to split its connections again and again, rather than once for the whole run."""
        (got,) = loadgen(server, ["/a"], "--seconds", "0.5", "--requests-per-connection", "5")
        assert got["count"] == len(server.paths) > 10
        assert got["statuses"] == {"202": got["count"]}
        assert got["connections"] == server.connections >= math.ceil(got["count"] / 5)

    def test_one_connection_each_without_the_option(self, server):
        """By default a connection is kept for the whole run."""
        (got,) = loadgen(server, ["/a"], "--seconds", "0.3")
        assert got["connections"] == server.connections == 2
        assert got["count"] == len(server.paths)

    def test_several_urls_take_turns(self, server):
        """Two URLs, 3 slices each: one result per URL, in order, and the server saw them alternate."""
        a, b = loadgen(server, ["/a", "/b"], "--seconds", "0.6", "--slice", "0.2")
        assert a["count"] == server.paths.count("/a") > 0
        assert b["count"] == server.paths.count("/b") > 0
        # Each slice opens its connections afresh.
        assert a["connections"] == b["connections"] == 6
        assert server.connections == 12
        switches = sum(1 for x, y in zip(server.paths, server.paths[1:], strict=False) if x != y)
        assert switches >= 3
        assert server.paths[0] == "/a"
