"""The email policy's shortcut writes exactly what compat32 writes, header by header and whole messages."""

import string
from email import message_from_bytes
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32, compat32
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers import mail
from workers.actions.notify import POLICY, NotifyCustomer, _alternative, _part
from workers.actions.templates import EmailTemplates
from workers.mail import flatten as wire

NAMES = st.sampled_from(["Subject", "To", "From", "Message-ID", "X-Custom-Header-Name"])
ASCII_TEXT = st.text(alphabet=string.printable, max_size=90)
ANY_TEXT = st.text(max_size=90)


@settings(max_examples=500, deadline=None)
@given(name=NAMES, value=ASCII_TEXT | ANY_TEXT)
def test_each_header_folds_as_compat32_does(name, value):
    for linesep in ("\n", "\r\n"):
        assert fold(POLICY, linesep, name, value) == fold(compat32, linesep, name, value)


def fold(policy, linesep, name, value):
    try:
        return policy.clone(linesep=linesep).fold_binary(name, value)
    except Exception as exc:  # compat32 refuses some values (an embedded header): so must the shortcut
        return type(exc)


def flatten(message, policy):
    out = BytesIO()
    BytesGenerator(out, policy=policy.clone(linesep="\r\n")).flatten(message)
    return out.getvalue()


@pytest.fixture(scope="module", params=["packaged", "text-only"])
def templates(request, tmp_path_factory):
    """The packaged templates (multipart/alternative) and a text-only set: both email structures."""
    if request.param == "packaged":
        return EmailTemplates.load()
    folder = tmp_path_factory.mktemp("text-only")
    (folder / "subject.txt").write_text("Codes {{ codes|join(' ') }} {{ campaign.name if campaign }}")
    (folder / "body.txt").write_text("{{ customer.name }}\n{{ codes|join('\\n') }}\n")
    return EmailTemplates.load(folder)


@settings(max_examples=100, deadline=None)
@given(name=st.none() | ANY_TEXT, campaign=st.none() | ANY_TEXT, codes=st.lists(ASCII_TEXT, min_size=1))
def test_whole_emails_are_the_bytes_compat32_writes(templates, name, campaign, codes):
    notify = NotifyCustomer(
        None, sender="shop@example.com", reservation_ttl=30, remember_s=60, templates=templates
    )
    message = notify.compose("alex@example.com", name, codes, campaign, "pub_1")
    # Every part is written with the shortcut policy, not only the outer headers.
    assert {part.policy for part in message.walk()} == {POLICY}
    assert message.is_multipart() == (templates.default.html is not None)
    assert flatten(message, POLICY) == flatten(message, compat32)


def test_the_shortcut_is_taken_for_ordinary_headers(monkeypatch):
    """Guard for the tests above: the common case does not fall through to compat32."""

    def refuse(self, name, value):
        raise AssertionError(f"compat32 folded {name}")

    monkeypatch.setattr(Compat32, "fold_binary", refuse)
    assert POLICY.fold_binary("Subject", "Your voucher code from Summer") == (
        b"Subject: Your voucher code from Summer\n"
    )


@settings(max_examples=300, deadline=None)
@given(
    body=ANY_TEXT | ASCII_TEXT | st.text(alphabet="ab \n", min_size=990, max_size=2100),
    subtype=st.sampled_from(["plain", "html"]),
)
def test_a_part_is_what_mimetext_writes(body, subtype):
    """notify's hand-built text part: MIMEText's headers, the same text when read back, lines SMTP takes.

    A 7bit part is MIMEText's bytes exactly; a quoted-printable one comes from binascii's encoder, which
    escapes a few characters the pure-Python one leaves alone: the same text, other bytes.
    """
    short_lines = max(map(len, body.splitlines()), default=0) <= 998
    charset = "us-ascii" if body.isascii() and short_lines else Charset("utf-8")
    if not isinstance(charset, str):
        charset.body_encoding = QP
    expected = MIMEText(body, subtype, charset, policy=POLICY)
    ours = flatten(_part(body, subtype), POLICY)
    if charset == "us-ascii":
        assert ours == flatten(expected, POLICY)
    head, _, payload = ours.partition(b"\r\n\r\n")
    assert head == flatten(expected, POLICY).partition(b"\r\n\r\n")[0]
    assert max(map(len, payload.split(b"\r\n"))) <= (998 if charset == "us-ascii" else 76)
    read = message_from_bytes(ours)
    text = read.get_payload(decode=True).decode(read.get_content_charset())
    assert lines(text) == lines(body)


def lines(text):
    """Line ends as the generator writes them: \\r\\n, \\r and \\n are each one line break."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sent(message):
    """The bytes smtplib's send_message puts on the wire for `message` (its own policy, CRLF)."""
    out = BytesIO()
    BytesGenerator(out).flatten(message, linesep="\r\n")
    return out.getvalue()


@settings(max_examples=100, deadline=None)
@given(name=st.none() | ANY_TEXT, campaign=st.none() | ANY_TEXT, codes=st.lists(ASCII_TEXT, min_size=1))
def test_the_mailer_writes_whole_emails_as_the_generator_does(templates, name, campaign, codes):
    """workers.mail.flatten (the SMTP mailer's shortcut) against send_message's generator, byte for byte."""
    notify = NotifyCustomer(
        None, sender="shop@example.com", reservation_ttl=30, remember_s=60, templates=templates
    )
    message = notify.compose("alex@example.com", name, codes, campaign, "pub_1")
    assert wire(message) == sent(message)


@settings(max_examples=300, deadline=None)
@given(
    body=ANY_TEXT | ASCII_TEXT | st.text(alphabet="From .\r\n", max_size=200),
    subtype=st.sampled_from(["plain", "html"]),
    alternative=st.booleans(),
)
def test_the_mailer_writes_parts_as_the_generator_does(body, subtype, alternative):
    """Any body: line ends of every kind, lines starting "From " (compat32 escapes them), dots."""
    message = _alternative(body, body) if alternative else _part(body, subtype)
    assert wire(message) == sent(message)


def test_other_shapes_go_to_the_generator():
    """A preamble, a nested multipart, an 8bit body, the default policy: the generator writes them."""
    with_preamble = _alternative("a\n", "<p>a</p>\n")
    with_preamble.preamble = "This is a MIME message."
    nested = MIMEMultipart("mixed", policy=POLICY)
    nested.attach(_alternative("a\n", "<p>a</p>\n"))
    eight_bit = message_from_bytes(
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xc3\x89t\xc3\xa9\r\n"
    )
    modern = EmailMessage()
    modern["Subject"] = "hi"
    modern.set_content("From here\n")
    for message in (with_preamble, nested, eight_bit, modern):
        assert wire(message) == sent(message)


def test_the_shortcut_is_taken_for_notify_emails(templates, monkeypatch):
    """Guard for the tests above: notify's emails never fall through to the generator."""

    def refuse(*args, **kwargs):
        raise AssertionError("the generator was used")

    monkeypatch.setattr(mail, "BytesGenerator", refuse)
    notify = NotifyCustomer(
        None, sender="shop@example.com", reservation_ttl=30, remember_s=60, templates=templates
    )
    assert wire(notify.compose("alex@example.com", "Zoë", ["A", "B"], "Été", "pub_1")).endswith(b"\r\n")
