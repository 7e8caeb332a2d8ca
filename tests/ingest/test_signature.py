import pytest

from ingest import signature

# VOUCHERIFY.md §4: vectors from Voucherify's docs and SDK tests, recomputed with Python's hmac.
VECTORS = [
    (
        "secret-signature-key",
        b'{"test":"test1"}',
        "5547d4d07430a2d1b77649564c68d80afe591f7cc61ca110bccb442e3205eeec",
    ),
    ("secretKey", b'{"a":1}', "a17d2ac229d1ebbb5f10e839c7985c4818e5986eab297f7e5979196d4d7d3ed2"),
    ("secretKey", b'{"a\\"b":1}', "f7cf97814a03146abedb9793f56e1dec34f618f82d10395310d053f749483ffb"),
    ("secretKey", b"  message  ", "53ff92957e1427ce23ad5bda9d0c5f2f4ff384d0806b83eeacb510c842d3a358"),
    (
        "secret_01234567890_secret",
        b"Example test message",
        "776247e1a5ed607c7d1ad00d2b0f5760d4a8d5ab680b86acbcea2d3d56e55fa3",
    ),
    (
        "secret_01234567890_secret",
        b'{"item1":123,"item2":"message","item3":{"a":1,"b":2},"item4":["a","b","c"]}',
        "e87e23da6caa7407a6177cc84ba1b26f58e1a68e24f08eba6ee023c8932b111a",
    ),
]


class TestVectors:
    @pytest.mark.parametrize(("secret", "body", "expected"), VECTORS)
    def test_sign_matches_published_vectors(self, secret, body, expected):
        """sign() reproduces every published test vector."""
        assert signature.sign(secret, body) == expected

    @pytest.mark.parametrize(("secret", "body", "expected"), VECTORS)
    def test_verify_accepts_published_vectors(self, secret, body, expected):
        """verify() accepts each vector's signature over its exact bytes."""
        assert signature.verify(body, expected, [secret]) == 0

    def test_whitespace_body_verifies_through_compact_form(self):
        """A pretty-printed body verifies against the signature of its compact form (docs' Java example)."""
        body = b'{\n  "a": 1\n}'
        assert signature.verify(body, VECTORS[1][2], ["secretKey"]) == 0

    def test_non_ascii_compact_form_keeps_characters(self):
        """The compact form keeps non-ASCII as UTF-8, like JSON.stringify."""
        compact = '{"name":"Zoë"}'.encode()
        sig = signature.sign("k", compact)
        assert signature.verify('{ "name": "Zoë" }'.encode(), sig, ["k"]) == 0


class TestVerify:
    def test_rotation_reports_which_secret_matched(self):
        """With several secrets, the index of the one that matched is returned."""
        body = b'{"a":1}'
        assert signature.verify(body, signature.sign("new", body), ["old", "new"]) == 1
        assert signature.verify(body, signature.sign("old", body), ["old", "new"]) == 0

    @pytest.mark.parametrize("header", [None, "", "abc", "0" * 64, "sha256=" + "0" * 64])
    def test_missing_or_wrong_signature_is_refused(self, header):
        """Missing, short, prefixed or wrong signatures never verify."""
        assert signature.verify(b'{"a":1}', header, ["secretKey"]) is None

    def test_header_is_case_and_space_insensitive(self):
        """An upper-case hex signature with stray spaces still verifies."""
        sig = signature.sign("k", b"x").upper()
        assert signature.verify(b"x", f" {sig} ", ["k"]) == 0

    def test_no_secrets_means_nothing_verifies(self):
        assert signature.verify(b"x", signature.sign("k", b"x"), []) is None

    def test_tampered_body_is_refused(self):
        """One changed byte and the signature no longer matches, raw or compact."""
        sig = signature.sign("k", b'{"amount":100}')
        assert signature.verify(b'{"amount":900}', sig, ["k"]) is None
