"""SMTP credentials never cross the wire in clear (issue 10, item 5): STARTTLS and smtps:// for real.

aiosmtpd serves a certificate from a throwaway CA made here with the openssl CLI; the client trusts that CA
only through the file SMTP_CA_FILE names.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.smtp_servers import CREDENTIALS, USER, AuthRecorder, Pki, make_pki, sample_message, serving
from workers.errors import PermanentError, TransientError
from workers.mail import SmtpMailer

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def starttls(pki: Pki) -> Iterator[tuple[AuthRecorder, int]]:
    """STARTTLS offered; AUTH only once the session is encrypted (aiosmtpd's own rule too)."""
    with serving(tls_context=pki.server_context(), auth_require_tls=True) as server:
        yield server


@pytest.fixture
def plain() -> Iterator[tuple[AuthRecorder, int]]:
    """No STARTTLS at all, and AUTH offered anyway: the server that got the password in clear."""
    with serving(auth_require_tls=False) as server:
        yield server


def send(url: str, **options: Any) -> None:
    mailer = SmtpMailer(url, timeout=5, deadline_s=10, **options)
    try:
        mailer.send(sample_message())
    finally:
        mailer.close()


class TestPlaintext:
    def test_no_auth_without_tls(self, plain: tuple[AuthRecorder, int]):
        """Regression: with smtp://user:pass@ and a server offering no STARTTLS, the client logged in anyway
        and the password crossed the network in clear. Now nothing is sent: permanent, smtp_tls_required."""
        handler, port = plain
        with pytest.raises(PermanentError) as exc_info:
            send(f"smtp://{CREDENTIALS}@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_required"
        assert handler.logins == []
        assert handler.messages == []

    def test_plaintext_auth_when_the_operator_allows_it(self, plain: tuple[AuthRecorder, int]):
        """SMTP_ALLOW_PLAINTEXT_AUTH=1 (a relay on localhost): logs in without TLS and sends."""
        handler, port = plain
        send(f"smtp://{CREDENTIALS}@127.0.0.1:{port}", allow_plaintext_auth=True)
        assert handler.logins == [(USER, False)]
        assert len(handler.messages) == 1

    def test_no_credentials_need_no_tls(self, plain: tuple[AuthRecorder, int]):
        """Without credentials there is nothing to protect: a plain local relay still works."""
        handler, port = plain
        send(f"smtp://127.0.0.1:{port}")
        assert handler.logins == []
        assert len(handler.messages) == 1


class TestStartTls:
    def test_auth_over_starttls_verified_through_the_ca_file(
        self, pki: Pki, starttls: tuple[AuthRecorder, int]
    ):
        """STARTTLS, the certificate checked against SMTP_CA_FILE, then AUTH inside TLS, then the email."""
        handler, port = starttls
        send(f"smtp://{CREDENTIALS}@127.0.0.1:{port}", ca_file=pki.ca)
        assert handler.logins == [(USER, True)]
        assert len(handler.messages) == 1

    def test_a_certificate_from_an_unknown_ca_is_refused(self, starttls: tuple[AuthRecorder, int]):
        """Without the CA file the certificate is not trusted: no login, no email, a transient TLS failure."""
        handler, port = starttls
        with pytest.raises(TransientError) as exc_info:
            send(f"smtp://{CREDENTIALS}@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_failed"
        assert handler.logins == []
        assert handler.messages == []


class TestSmtps:
    def test_auth_over_implicit_tls(self, pki: Pki):
        """smtps://: TLS from the first byte, verified through the CA file, AUTH, the email."""
        with serving(ssl_context=pki.server_context(), auth_require_tls=False) as (handler, port):
            send(f"smtps://{CREDENTIALS}@127.0.0.1:{port}", ca_file=pki.ca)
        assert handler.logins == [(USER, True)]
        assert len(handler.messages) == 1

    def test_implicit_tls_with_an_untrusted_certificate_sends_nothing(self, pki: Pki):
        with (
            serving(ssl_context=pki.server_context(), auth_require_tls=False) as (handler, port),
            pytest.raises(TransientError) as exc_info,
        ):
            send(f"smtps://{CREDENTIALS}@127.0.0.1:{port}")
        assert exc_info.value.reason == "smtp_tls_failed"
        assert handler.logins == []
        assert handler.messages == []
