"""The customer email's words: Jinja2 templates the operator can replace (NOTIFY_TEMPLATES_DIR).

A template directory holds:

    subject.txt                 required: the Subject, made one line after rendering
    body.txt                    required: the plain-text body
    body.html                   optional: the HTML alternative, autoescaped (without it: text only)
    _<anything>.txt / .html     partials, for {% include %} and {% extends %}
    campaigns/<campaign>/       optional: subject.txt, body.txt, body.html for one campaign

`<campaign>` is the campaign id exactly (`camp_...`), or its name as `campaign_key` spells it (lowercase,
words joined by `-`: "Summer Sale 2026" is `summer-sale-2026`); the id wins over the name. A campaign's
subject.txt replaces the default subject; its body.txt replaces the default body, text and HTML: the HTML
comes from beside that body.txt or not at all, so the two parts never tell different stories.

Every template is compiled once per process, when the worker starts (so a syntax error stops it there).
"""

from __future__ import annotations

import re
import traceback
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from workers.errors import PermanentError

PACKAGED = Path(__file__).with_name("notify_templates")
SUBJECT, TEXT, HTML = "subject.txt", "body.txt", "body.html"
CAMPAIGNS = "campaigns"
_NAMES = (SUBJECT, TEXT, HTML)
# Voucherify's campaign ids: `camp_` and letters and digits. A directory named so is matched by id, exactly.
_CAMPAIGN_ID = re.compile(r"camp_[A-Za-z0-9]+")
_WORDS = re.compile(r"\w+")


class TemplateError(Exception):
    """The template directory cannot be used: the worker refuses to start and says which file and line."""


@dataclass(frozen=True)
class TemplateSet:
    """The three templates of one email (html None: a text-only email)."""

    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template | None


@dataclass(frozen=True)
class Rendered:
    """One email's words: a one-line subject, the text body and the HTML body (or None)."""

    subject: str
    text: str
    html: str | None


def campaign_key(name: str) -> str:
    """A campaign name as a safe directory name: NFKC, lowercase, word characters joined by `-`."""
    return "-".join(_WORDS.findall(unicodedata.normalize("NFKC", name).casefold()))


class EmailTemplates:
    """A compiled template directory: picks the set for a campaign and renders it."""

    def __init__(self, root: Path, default: TemplateSet, campaigns: Mapping[str, TemplateSet]) -> None:
        self.root = root
        self.default = default
        self.campaigns = dict(campaigns)

    @classmethod
    def load(cls, directory: Path | None = None) -> EmailTemplates:
        """Compile every template under `directory` (the packaged defaults when None).

        Raises TemplateError naming the file (and line) when a template does not compile, a required one is
        missing, or a file or directory is not one this layout knows (a typo must not be silently unused).
        """
        root = (directory or PACKAGED).resolve()
        if not root.is_dir():
            raise TemplateError(f"NOTIFY_TEMPLATES_DIR: {root} is not a directory")
        env = _environment(root)
        names = _check_layout(root)
        compiled: dict[str, jinja2.Template] = {}
        for name in names:
            try:
                compiled[name] = env.get_template(name)
                # Jinja2 resolves {% include %} and {% extends %} when rendering: check them now.
                source = (root / name).read_text(encoding="utf-8")
                refs = jinja2.meta.find_referenced_templates(env.parse(source, name))
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(
                    f"NOTIFY_TEMPLATES_DIR: {exc.filename or root / name}:{exc.lineno}: {exc.message}"
                ) from exc
            missing = [ref for ref in refs if ref is not None and ref not in names]
            if missing:
                raise TemplateError(
                    f"NOTIFY_TEMPLATES_DIR: {root / name}: {missing[0]} is not a template in the directory"
                )
        for required in (SUBJECT, TEXT):
            if required not in compiled:
                raise TemplateError(f"NOTIFY_TEMPLATES_DIR: {root / required} is missing (it is required)")
        default = TemplateSet(compiled[SUBJECT], compiled[TEXT], compiled.get(HTML))
        campaigns: dict[str, TemplateSet] = {}
        for folder in sorted({n.split("/")[1] for n in compiled if n.startswith(f"{CAMPAIGNS}/")}):
            prefix = f"{CAMPAIGNS}/{folder}/"
            subject, text, html = (compiled.get(prefix + n) for n in _NAMES)
            if html is not None and text is None:
                raise TemplateError(
                    f"NOTIFY_TEMPLATES_DIR: {root / prefix / HTML} has no {TEXT} beside it "
                    "(a campaign's body.txt and body.html replace the default body together)"
                )
            campaigns[folder] = TemplateSet(
                subject or default.subject,
                text or default.text,
                html if text is not None else default.html,
            )
        return cls(root, default, campaigns)

    def pick(self, campaign_id: str | None, campaign_name: str | None) -> TemplateSet:
        """The campaign's own templates (by id, then by name), else the default ones."""
        if self.campaigns:
            if campaign_id and campaign_id in self.campaigns:
                return self.campaigns[campaign_id]
            key = campaign_key(campaign_name) if campaign_name else ""
            if key in self.campaigns:
                return self.campaigns[key]
        return self.default

    def render(
        self, context: Mapping[str, Any], *, campaign_id: str | None = None, campaign_name: str | None = None
    ) -> Rendered:
        """Render one email. A template that fails is a PermanentError (`template_error`): file and line."""
        chosen = self.pick(campaign_id, campaign_name)
        subject = _one_line(_render(chosen.subject, context))
        if not subject:
            raise PermanentError(
                f"email template {chosen.subject.filename}: rendered an empty subject",
                reason="template_error",
            )
        text = _render(chosen.text, context)
        html = _render(chosen.html, context) if chosen.html is not None else None
        return Rendered(subject, text, html if html and not html.isspace() else None)


_cache: dict[Path | None, EmailTemplates] = {}


def templates_for(directory: Path | None) -> EmailTemplates:
    """This process's compiled templates for `directory` (compiled at the first call, then reused).

    The worker's start check is the first call, in the parent: forked pool processes inherit the result.
    """
    found = _cache.get(directory)
    if found is None:
        found = _cache[directory] = EmailTemplates.load(directory)
    return found


def _environment(root: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        # A variable misspelt is an error at render, not an email with a hole in it.
        undefined=jinja2.StrictUndefined,
        # A field the payload leaves null prints as nothing, not as "None".
        finalize=lambda value: "" if value is None else value,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Compiled once at start; no stat() of the file before every email.
        auto_reload=False,
        cache_size=-1,
    )


def _check_layout(root: Path) -> list[str]:
    """The template names under `root`, refusing files and directories the layout does not know."""
    names: list[str] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if path.name != CAMPAIGNS:
                raise TemplateError(
                    f"NOTIFY_TEMPLATES_DIR: {path} is not a known directory "
                    f"(a campaign's templates go in {CAMPAIGNS}/<campaign id or name>/)"
                )
            names += _campaign_names(path)
        elif _is_template(path):
            names.append(path.name)
    return names


def _campaign_names(campaigns: Path) -> list[str]:
    names: list[str] = []
    for folder in sorted(campaigns.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        if not _CAMPAIGN_ID.fullmatch(folder.name) and campaign_key(folder.name) != folder.name:
            raise TemplateError(
                f"NOTIFY_TEMPLATES_DIR: {folder} matches no campaign: name it after the campaign id "
                f"(camp_...) or its name spelt {campaign_key(folder.name)!r}"
            )
        found = [f.name for f in sorted(folder.iterdir()) if f.is_file() and _is_template(f)]
        if not {SUBJECT, TEXT, HTML} & set(found):
            raise TemplateError(f"NOTIFY_TEMPLATES_DIR: {folder} has none of {', '.join(_NAMES)}")
        names += [f"{CAMPAIGNS}/{folder.name}/{name}" for name in found]
    return names


def _is_template(path: Path) -> bool:
    """True for a template file; refuses a .txt/.html file that is neither one of ours nor a partial."""
    if not path.name.endswith((".txt", ".html")):
        return False  # a README, an image: not ours to judge
    if path.name in _NAMES or path.name.startswith("_"):
        return True
    raise TemplateError(
        f"NOTIFY_TEMPLATES_DIR: {path} is not a template name this worker uses "
        f"({', '.join(_NAMES)}, or _<name> for a partial)"
    )


def _render(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    try:
        return template.render(context)
    except Exception as exc:
        # Jinja2 rewrites the traceback so the template's own frames carry its file name and line.
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith((".txt", ".html"))
        ]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(template.filename)
        raise PermanentError(
            f"email template {where}: {type(exc).__name__}: {exc}", reason="template_error"
        ) from exc


def _one_line(value: str) -> str:
    """A subject is one header line: no CR/LF (header injection), no other control characters."""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value)
    return " ".join(value.split())
