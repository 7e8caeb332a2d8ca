"""SMTP credentials never cross the wire in clear (issue 10, item 5): STARTTLS and smtps:// for real.

aiosmtpd serves a certificate from a throwaway CA made here with the openssl CLI; the client trusts that CA
only through the file SMTP_CA_FILE names.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port
from tests.workers.test_mail import compose
from workers.errors import PermanentError, TransientError
from workers.mail import SmtpMailer

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

USER, PASSWORD = "shop", "s3cret pass"


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate: what SMTP_CA_FILE points at
    cert: Path  # the server's certificate (127.0.0.1 and localhost), signed by the CA
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def make_pki(d: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1 signed by it, made with the openssl command in directory `d`."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-x509", *ec, *ca, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return Pki(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


class Handler:
    """Keeps the messages, and every login attempt with whether the session was encrypted then."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, bool]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.logins.append((data.login.decode(), encrypted))
        return AuthResult(success=(data.login.decode(), data.password.decode()) == (USER, PASSWORD))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def serving(**kwargs: Any) -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate, **kwargs
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def starttls(pki: Pki) -> Iterator[tuple[Handler, int]]:
    """STARTTLS offered; AUTH only once the session is encrypted (aiosmtpd's own rule too)."""
    with serving(tls_context=pki.server_context(), auth_require_tls=True) as server:
        yield server


@pytest.fixture
def plain() -> Iterator[tuple[Handler, int]]:
    """No STARTTLS at all, and AUTH offered anyway: the server that got the password in clear."""
    with serving(auth_require_tls=False) as server:
        yield server


def send(url: str, **options: Any) -> None:
    mailer = SmtpMailer(url, timeout=5, deadline_s=10, **options)
    try:
        mailer.send(compose())
    finally:
        mailer.close()


class TestPlaintext:
    def test_no_auth_without_tls(self, plain: tuple[Handler, int]):
        """Regression: with smtp://user:pass@ and a server offering no STARTTLS, the client logged in anyway
        and the password crossed the network in clear. Now nothing is sent: permanent, smtp_tls_required."""
        handler, port = plain
        with pytest.raises(PermanentError) as exc_info:
            send(f"smtp://{USER}:s3cret%20pass@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_required"
        assert handler.logins == []
        assert handler.messages == []

    def test_plaintext_auth_when_the_operator_allows_it(self, plain: tuple[Handler, int]):
        """SMTP_ALLOW_PLAINTEXT_AUTH=1 (a relay on localhost): logs in without TLS and sends."""
        handler, port = plain
        send(f"smtp://{USER}:s3cret%20pass@127.0.0.1:{port}", allow_plaintext_auth=True)
        assert handler.logins == [(USER, False)]
        assert len(handler.messages) == 1

    def test_no_credentials_need_no_tls(self, plain: tuple[Handler, int]):
        """Without credentials there is nothing to protect: a plain local relay still works."""
        handler, port = plain
        send(f"smtp://127.0.0.1:{port}")
        assert handler.logins == []
        assert len(handler.messages) == 1


class TestStartTls:
    def test_auth_over_starttls_verified_through_the_ca_file(self, pki: Pki, starttls: tuple[Handler, int]):
        """STARTTLS, the certificate checked against SMTP_CA_FILE, then AUTH inside TLS, then the email."""
        handler, port = starttls
        send(f"smtp://{USER}:s3cret%20pass@127.0.0.1:{port}", ca_file=pki.ca)
        assert handler.logins == [(USER, True)]
        assert len(handler.messages) == 1

    def test_a_certificate_from_an_unknown_ca_is_refused(self, starttls: tuple[Handler, int]):
        """Without the CA file the certificate is not trusted: no login, no email, a transient TLS failure."""
        handler, port = starttls
        with pytest.raises(TransientError) as exc_info:
            send(f"smtp://{USER}:s3cret%20pass@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_failed"
        assert handler.logins == []
        assert handler.messages == []


class TestSmtps:
    def test_auth_over_implicit_tls(self, pki: Pki):
        """smtps://: TLS from the first byte, verified through the CA file, AUTH, the email."""
        with serving(ssl_context=pki.server_context(), auth_require_tls=False) as (handler, port):
            send(f"smtps://{USER}:s3cret%20pass@127.0.0.1:{port}", ca_file=pki.ca)
        assert handler.logins == [(USER, True)]
        assert len(handler.messages) == 1

    def test_implicit_tls_with_an_untrusted_certificate_sends_nothing(self, pki: Pki):
        with (
            serving(ssl_context=pki.server_context(), auth_require_tls=False) as (handler, port),
            pytest.raises(TransientError) as exc_info,
        ):
            send(f"smtps://{USER}:s3cret%20pass@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_failed"
        assert handler.logins == []
        assert handler.messages == []
