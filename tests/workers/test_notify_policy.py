"""The email policy's shortcut writes exactly what compat32 writes, header by header and whole messages."""

import string
from email.generator import BytesGenerator
from email.policy import Compat32, compat32
from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.actions.notify import POLICY, NotifyCustomer

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


@settings(max_examples=100, deadline=None)
@given(name=st.none() | ANY_TEXT, campaign=st.none() | ANY_TEXT, codes=st.lists(ASCII_TEXT, min_size=1))
def test_whole_emails_are_the_bytes_compat32_writes(name, campaign, codes):
    message = NotifyCustomer(None, sender="shop@example.com", reservation_ttl=30, remember_s=60).compose(
        "alex@example.com", name, codes, campaign, "pub_1"
    )
    assert message.policy is POLICY
    assert flatten(message, POLICY) == flatten(message, compat32)


def test_the_shortcut_is_taken_for_ordinary_headers(monkeypatch):
    """Guard for the tests above: the common case does not fall through to compat32."""

    def refuse(self, name, value):
        raise AssertionError(f"compat32 folded {name}")

    monkeypatch.setattr(Compat32, "fold_binary", refuse)
    assert POLICY.fold_binary("Subject", "Your voucher code from Summer") == (
        b"Subject: Your voucher code from Summer\n"
    )
