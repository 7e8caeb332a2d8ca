"""The customer email from templates: the packaged default, the operator's directory, per campaign, and
what a template can and cannot do to the message."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import jinja2
import pytest

from core import examples
from ingest.dedup import dedup_key
from workers import pipeline
from workers.actions.templates import EmailTemplates, TemplateError, campaign_key, templates_for
from workers.runtime import build_runtime

CAMPAIGN_ID = "camp_EV79Z6CjaAMpX4pFxVivvzzk"  # the seed example's campaign
CAMPAIGN_NAME = "Free product zero items-test"


def deliver(store, doc) -> str:
    """Store a delivery the way the intake does and return its event id."""
    raw = json.dumps(doc).encode()
    event_id, created = store.accept(raw, dedup_key=dedup_key(raw, ""), headers={}, secret="s:0", source="")
    assert created
    return event_id


def publication(email="alex@example.com", name="Jack Webhook", campaign=CAMPAIGN_NAME, pub_id="pub_1"):
    """The seed `publication.succeeded` (core/examples), for a customer with an email address."""
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = email
    doc["data"]["customer"]["name"] = name
    doc["data"]["campaign"]["name"] = campaign
    doc["data"]["publication"]["id"] = pub_id
    return doc


def parts(msg: Message) -> dict[str, str]:
    """The decoded body parts of the email as it goes on the wire, by content type."""
    wire = message_from_bytes(msg.as_bytes())
    return {
        p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset())
        for p in wire.walk()
        if not p.is_multipart()
    }


def subject(msg: Message) -> str:
    """The Subject as a mail client shows it: unfolded (RFC 5322 2.2.3), encoded words decoded."""
    folded = message_from_bytes(msg.as_bytes())["Subject"]
    return str(make_header(decode_header(folded.replace("\r\n", "").replace("\n", ""))))


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def run_with(settings, store, mailer):
    """Process one delivery through a runtime built from settings (NOTIFY_TEMPLATES_DIR as given)."""

    def run(doc, templates_dir: Path | None = None) -> tuple[str, dict]:
        changed = settings.with_(notify_templates_dir=templates_dir, notify_from="shop@example.com")
        runtime = build_runtime(changed, store=store, mailer=mailer)
        event_id = deliver(store, doc)
        status = pipeline.process_event(event_id, runtime)
        return status, store.document(event_id)["actions"]["notify_customer"]

    return run


class TestPackagedDefault:
    def test_seed_publication_is_text_and_html_with_the_code(self, run_with, mailer):
        """The seed publication.succeeded: a multipart/alternative email, code and campaign in both parts."""
        status, _ = run_with(publication())
        assert status == "processed"
        (msg,) = mailer.sent
        assert msg.get_content_type() == "multipart/alternative"
        body = parts(msg)
        assert list(body) == ["text/plain", "text/html"]  # the last part is the preferred one
        assert body["text/plain"].splitlines() == [
            "Hello Jack Webhook,",
            "",
            f"Here is your code from {CAMPAIGN_NAME}:",
            "",
            "    ZERO-8",
            "",
            "Enjoy!",
        ]
        assert "ZERO-8" in body["text/html"]
        assert f"<strong>{CAMPAIGN_NAME}</strong>" in body["text/html"]
        assert "Hello Jack Webhook," in body["text/html"]
        assert subject(msg) == f"Your voucher code from {CAMPAIGN_NAME}"
        assert msg["Message-ID"] == "<pub_1@example.com>"
        assert msg["From"] == "shop@example.com"
        assert msg["Date"]

    def test_html_escapes_payload_text(self, run_with, mailer):
        """A customer called <script> is text in the HTML part, not markup; the text part says it as is."""
        run_with(publication(name="<script>alert(1)</script>", campaign="Tom & Jerry's <b>"))
        (msg,) = mailer.sent
        body = parts(msg)
        assert "<script>" not in body["text/html"]
        assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in body["text/html"]
        assert "Tom &amp; Jerry&#39;s &lt;b&gt;" in body["text/html"]
        assert "Hello <script>alert(1)</script>," in body["text/plain"]

    def test_no_name_no_campaign(self, run_with, mailer):
        """A customer without a name is greeted plainly; a null campaign name leaves no hole."""
        doc = publication(name=None)
        doc["data"]["campaign"]["name"] = None
        doc["data"]["vouchers"][0]["campaign"] = None
        run_with(doc)
        (msg,) = mailer.sent
        assert parts(msg)["text/plain"].startswith("Hello,\n\nHere is your code:\n")
        assert subject(msg) == "Your voucher code"


class TestOperatorDirectory:
    def test_custom_directory_replaces_the_words(self, run_with, mailer, tmp_path):
        """NOTIFY_TEMPLATES_DIR: the operator's subject and text; without body.html the email is text only."""
        folder = write(
            tmp_path / "tpl",
            {
                "subject.txt": "{{ codes|join(', ') }} for {{ customer.name }}\n",
                "body.txt": "Codes: {{ codes|join(' ') }}\n{{ publication.id }} by {{ event.type }}\n",
            },
        )
        run_with(publication(), folder)
        (msg,) = mailer.sent
        assert msg.get_content_type() == "text/plain"
        assert subject(msg) == "ZERO-8 for Jack Webhook"
        assert parts(msg)["text/plain"] == "Codes: ZERO-8\npub_1 by publication.succeeded\n"

    def test_partials_can_be_included(self, run_with, mailer, tmp_path):
        """Files starting with _ are partials: {% include %} finds them, and they are escaped as HTML too."""
        folder = write(
            tmp_path / "tpl",
            {
                "subject.txt": "Hi",
                "body.txt": "{% include '_sig.txt' %}",
                "_sig.txt": "-- {{ campaign.name }}\n",
                "body.html": "<p>{% include '_sig.html' %}</p>",
                "_sig.html": "{{ customer.name }}",
            },
        )
        run_with(publication(name="A&B"), folder)
        (msg,) = mailer.sent
        assert parts(msg) == {"text/plain": f"-- {CAMPAIGN_NAME}\n", "text/html": "<p>A&amp;B</p>"}


class TestPerCampaign:
    @pytest.fixture
    def folder(self, tmp_path):
        return write(
            tmp_path / "tpl",
            {
                "subject.txt": "default subject",
                "body.txt": "default text\n",
                "body.html": "<p>default html</p>",
                f"campaigns/{campaign_key('Été 2026')}/subject.txt": "Summer: {{ codes[0] }}",
                f"campaigns/{CAMPAIGN_ID}/body.txt": "by id: {{ campaign.id }}\n",
                f"campaigns/{campaign_key(CAMPAIGN_NAME)}/body.txt": "by name\n",
            },
        )

    def test_a_campaign_name_directory_wins_over_the_default(self, run_with, mailer, folder):
        """campaigns/ete-2026 (the name's key): its subject, the default body (text and HTML)."""
        doc = publication(campaign="Été 2026")
        doc["data"]["campaign"]["id"] = "camp_other"
        run_with(doc, folder)
        (msg,) = mailer.sent
        assert subject(msg) == "Summer: ZERO-8"
        assert parts(msg) == {"text/plain": "default text\n", "text/html": "<p>default html</p>"}

    def test_the_campaign_id_wins_over_its_name(self, run_with, mailer, folder):
        """Both campaigns/<id> and campaigns/<name> exist: the id's; its body.txt alone means text only."""
        run_with(publication(), folder)
        (msg,) = mailer.sent
        assert subject(msg) == "default subject"
        assert parts(msg) == {"text/plain": f"by id: {CAMPAIGN_ID}\n"}

    def test_without_a_campaign_the_vouchers_campaign_counts(self, run_with, mailer, folder):
        """No `campaign` object in the payload: the campaign the voucher names (id and name) is used."""
        doc = publication()
        doc["data"]["campaign"] = None
        run_with(doc, folder)
        (msg,) = mailer.sent
        assert parts(msg) == {"text/plain": f"by id: {CAMPAIGN_ID}\n"}

    def test_another_campaign_gets_the_default(self, run_with, mailer, folder):
        doc = publication(campaign="Winter")
        doc["data"]["campaign"]["id"] = "camp_other"
        run_with(doc, folder)
        (msg,) = mailer.sent
        assert subject(msg) == "default subject"

    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("Summer Sale 2026", "summer-sale-2026"),
            ("  Été / 2026 ", "été-2026"),
            ("../../etc/passwd", "etc-passwd"),
            ("\uff26\uff35\uff2c\uff2c width", "full-width"),  # NFKC: fullwidth letters
            ("!!!", ""),
        ],
    )
    def test_campaign_names_become_safe_directory_names(self, name, key):
        assert campaign_key(name) == key


class TestRenderErrors:
    def test_a_template_failing_at_render_is_dead_with_file_and_line(self, run_with, mailer, tmp_path):
        """A misspelt variable (line 3 of body.txt) ends the email `dead`, template_error, after one
        attempt: retrying renders the same error."""
        folder = write(
            tmp_path / "tpl",
            {"subject.txt": "Hi", "body.txt": "Hello\n\n{{ custmer.name }}\n"},
        )
        status, action = run_with(publication(), folder)
        assert status == "dead"
        assert (action["status"], action["reason"], action["attempts"]) == ("dead", "template_error", 1)
        assert f"{folder.resolve() / 'body.txt'}:3" in action["last_error"]
        assert "custmer" in action["last_error"]
        assert mailer.sent == []

    def test_an_exception_inside_a_partial_names_the_partial(self, tmp_path):
        write(
            tmp_path, {"subject.txt": "x", "body.txt": "{% include '_p.txt' %}", "_p.txt": "\n{{ 1 // 0 }}"}
        )
        from workers.errors import PermanentError

        with pytest.raises(PermanentError, match=r"_p\.txt:2: ZeroDivisionError") as info:
            EmailTemplates.load(tmp_path).render({})
        assert info.value.reason == "template_error"


class TestHeaderInjection:
    def test_payload_values_cannot_add_headers(self, run_with, mailer, tmp_path):
        """CR, LF and other line breaks in payload values used in the subject are spaces: one Subject line,
        no Bcc, no X-Injected; the recipient's name cannot break out of To either."""
        folder = write(
            tmp_path / "tpl",
            {"subject.txt": "{{ campaign.name }} {{ customer.name }}", "body.txt": "{{ campaign.name }}\n"},
        )
        evil = "Sale\r\nBcc: victim@example.com\r\n\r\nbody"
        run_with(publication(name="Eve\nX-Injected: yes\u2028Z", campaign=evil), folder)
        (msg,) = mailer.sent
        wire = msg.as_bytes()
        parsed = message_from_bytes(wire)
        assert parsed["Bcc"] is None
        assert parsed["X-Injected"] is None
        assert subject(msg) == "Sale Bcc: victim@example.com body Eve X-Injected: yes Z"
        head = wire.split(b"\n\n", 1)[0]
        assert [line.split(b":")[0] for line in head.splitlines() if not line[:1].isspace()] == [
            b"Content-Type",
            b"MIME-Version",
            b"Content-Transfer-Encoding",
            b"From",
            b"To",
            b"Subject",
            b"Date",
            b"Message-ID",
        ]

    def test_long_and_non_ascii_subjects_fold(self, run_with, mailer, tmp_path):
        """A long subject, ASCII or not, is folded into lines a mail server takes, and reads back whole."""
        for n, words in enumerate(["word " * 60, "Été très long " * 30, "x" * 1200]):
            folder = write(tmp_path / f"tpl{n}", {"subject.txt": words, "body.txt": "x\n"})
            run_with(publication(pub_id=f"pub_{n}"), folder)
            msg = mailer.sent[-1]
            assert subject(msg) == " ".join(words.split())
            head = msg.as_bytes().split(b"\n\n", 1)[0]
            assert max(map(len, head.splitlines())) <= 78

    def test_an_empty_subject_is_a_template_error(self, run_with, mailer, tmp_path):
        folder = write(tmp_path / "tpl", {"subject.txt": "{{ customer.name }}\n", "body.txt": "x\n"})
        status, action = run_with(publication(name=None), folder)
        assert (status, action["reason"]) == ("dead", "template_error")
        assert "subject.txt" in action["last_error"]


class TestBrokenDirectory:
    @pytest.mark.parametrize(
        ("files", "said"),
        [
            ({"subject.txt": "x", "body.txt": "a\n{% if %}\n"}, r"body\.txt:2: Expected an expression"),
            ({"subject.txt": "x", "body.txt": "a", "body.html": "\n\n{{ x }\n"}, r"body\.html:3: unexpected"),
            ({"subject.txt": "x"}, r"body\.txt is missing"),
            ({"subject.txt": "x", "body.txt": "x", "subjet.txt": "x"}, r"subjet\.txt is not a template name"),
            (
                {"subject.txt": "x", "body.txt": "{% include '_nope.txt' %}"},
                r"body\.txt: _nope\.txt is not a template",
            ),
            (
                {"subject.txt": "x", "body.txt": "x", "campaigns/Summer Sale/body.txt": "x"},
                r"Summer Sale matches no campaign.*'summer-sale'",
            ),
            (
                {"subject.txt": "x", "body.txt": "x", "campaigns/summer/body.html": "x"},
                r"summer/body\.html has no body\.txt beside it",
            ),
            (
                {
                    "subject.txt": "x",
                    "body.txt": "x",
                    "campaigns/summer/body.txt": "x",
                    "campaigns/summer/_p.txt": "{{ x",
                },
                r"summer/_p\.txt:1: unexpected end",
            ),
            (
                {"subject.txt": "x", "body.txt": "x", "campaign/x/body.txt": "x"},
                r"campaign is not a known dir",
            ),
        ],
        ids=[
            "syntax",
            "html-syntax",
            "missing-text",
            "unknown-name",
            "missing-include",
            "unsafe-campaign",
            "html-alone",
            "partial",
            "typo-dir",
        ],
    )
    def test_refused_at_load_naming_file_and_line(self, tmp_path, files, said):
        with pytest.raises(TemplateError, match=said):
            EmailTemplates.load(write(tmp_path, files))

    def test_not_a_directory(self, tmp_path):
        with pytest.raises(TemplateError, match="is not a directory"):
            EmailTemplates.load(tmp_path / "nope")

    def test_other_files_are_left_alone(self, tmp_path):
        """A README or an image beside the templates is not ours to judge."""
        write(tmp_path, {"subject.txt": "x", "body.txt": "x", "README.md": "notes", ".hidden.txt": "x"})
        assert EmailTemplates.load(tmp_path).default.html is None


class TestCompiledOnce:
    def test_sending_emails_compiles_nothing(self, run_with, mailer, tmp_path, monkeypatch):
        """Templates are compiled when loaded (the worker's start), not per email."""
        folder = write(tmp_path / "tpl", {"subject.txt": "s", "body.txt": "b\n", "body.html": "<p>b</p>"})
        assert templates_for(folder) is templates_for(folder)
        compiled = []
        original = jinja2.Environment.compile
        monkeypatch.setattr(
            jinja2.Environment, "compile", lambda self, *a, **k: compiled.append(a) or original(self, *a, **k)
        )
        for n in range(3):
            run_with(publication(pub_id=f"pub_{n}"), folder)
        assert len(mailer.sent) == 3
        assert compiled == []
