"""One typed, frozen settings object, read once from the environment.

Both the intake and the workers use it, so it lives here, once. A bad value fails at start with the
variable's name, never later in a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class ConfigError(ValueError):
    """A configuration variable has a value we cannot use."""


@dataclass(frozen=True)
class ForwardDestination:
    """An HTTP endpoint that receives validated events (the `forward` action)."""

    name: str
    url: str
    secret: str | None = None
    event_types: tuple[str, ...] = ()  # empty: every routed event; "voucher.*" globs allowed
    # Distribution endpoints (/webhooks/voucherify/<source>) whose Payload-designer bodies, which no schema
    # can read, are forwarded here as they are instead of being ignored.
    sources: tuple[str, ...] = ()

    def wants(self, event_type: str) -> bool:
        from fnmatch import fnmatchcase

        return not self.event_types or any(fnmatchcase(event_type, p) for p in self.event_types)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with safe defaults (see the README's configuration table)."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = DEFAULT_REDIS_URL
    # Whether REDIS_URL was set: `voucherify-ingest run` embeds a Valkey server when it was not.
    store_configured: bool = False
    webhook_secrets: tuple[str, ...] = ()
    allow_unsigned: bool = False
    smtp_url: str | None = None
    notify_from: str = "vouchers@localhost"
    admin_token: str | None = None
    max_body_bytes: int = 1024 * 1024
    # The compact-form signature fallback is tried only for bodies up to this size (0: never), so a forged
    # signature on a large pretty-printed body costs one HMAC, not a pass over it. Real payloads: < 10 KiB.
    signature_fallback_max_bytes: int = 256 * 1024
    # A connection must deliver its headers, then its body, within these (ingest/buffered_worker.py): a slow
    # or stalled client is closed with a 408 instead of holding a request thread. The body's default is
    # Voucherify's own limit for a whole delivery.
    intake_header_timeout_s: float = 5.0
    intake_body_timeout_s: float = 10.0
    # Open connections one client address may hold in each intake process (0: no limit). Generous, since
    # Voucherify sends from a few addresses; a proxy in front is one address for everyone (README).
    intake_max_connections_per_client: int = 256
    # 0 serves with gunicorn's stock gthread worker instead of ours (ingest/buffered_worker.py reaches into
    # gthread's internals): the off switch if a gunicorn release breaks it, at the cost of the protection.
    intake_buffering: bool = True
    # Longer than Voucherify's retry span (~1.5 days), so a late retry is still recognised.
    dedup_window_s: int = 72 * 3600
    # An event not picked up (or not finished) this long after its last hand-off is re-enqueued.
    outbox_lease_s: int = 120
    reconcile_interval_s: float = 5.0
    task_time_limit_s: int = 60
    # Micro-batches (docs/batches.md): the most events one pool job takes; 1 is one job per message.
    worker_batch_size: int = 32
    # How long a batch may wait for more events while a pool process is free (0: it goes at once).
    worker_batch_wait_ms: float = 0.0
    action_max_attempts: int = 20
    action_max_age_s: int = 6 * 3600
    action_backoff_base_s: float = 5.0
    action_backoff_cap_s: float = 1800.0
    smtp_timeout_s: float = 10.0
    # One deadline for a whole send (connect to the last reply), so an email's reservation can outlast it.
    smtp_deadline_s: float = 40.0
    smtp_ca_file: Path | None = None
    smtp_allow_plaintext_auth: bool = False
    forward_timeout_s: float = 10.0
    forward_destinations: tuple[ForwardDestination, ...] = ()
    retention_processed_s: int = 30 * 86400
    retention_failed_s: int = 90 * 86400
    # How long "already emailed" (per publication) and "already forwarded" (per Voucherify event id and
    # destination) are remembered: past every way an event can come back (retention, dedup window, resends).
    notify_remember_s: int = 400 * 86400
    # The customer email's templates (workers/actions/templates.py); None: the packaged defaults.
    notify_templates_dir: Path | None = None
    key_prefix: str = "vw"
    data_dir: Path = field(default_factory=lambda: Path("var"))
    log_level: str = "INFO"
    # Modules of the user's handlers (workers/handlers.py), imported by every worker at start.
    handlers: tuple[str, ...] = ()
    # The schemas' fast field loop (schemas/fastpath.py); 0 falls back to marshmallow's own code.
    schema_fast_path: bool = True
    port: int = 8000  # the intake's port (`run`, the Procfile)
    # The console's session ends after this long without a request (ingest/console).
    console_idle_s: int = 30 * 60
    # How many reverse proxies in front of the intake set X-Forwarded-For/-Proto: 0 trusts no such header
    # (a client could send them itself), so the console's Secure cookie and rate limit use the socket's view.
    trusted_proxies: int = 0
    # auto: readable lines on a terminal, JSON otherwise; json or text to choose.
    log_format: str = "auto"
    # The mirror's database (SQLAlchemy URL); None: no mirror. `voucherify-ingest run` defaults it to SQLite.
    mirror_database_url: str | None = None
    # PostgreSQL only: commit the mirror's writes without waiting for the WAL flush (docs/mirror.md, "Cost").
    mirror_async_commit: bool = False
    # The disk archive (core/archive): settled events older than archive_after_s leave Redis for this
    # database (SQLAlchemy URL). Defaults to the mirror's database; None: no archive, events stay in Redis
    # until their retention (their raw bodies compressed once settled).
    archive_database_url: str | None = None
    archive_after_s: int = 3600
    # How often the archiver runs (its own beat entry and queue, workers/archiver.py).
    archive_interval_s: float = 10.0
    # How long the archive keeps an event after it settled.
    archive_retention_processed_s: int = 90 * 86400
    archive_retention_failed_s: int = 365 * 86400
    # The archiver defers to the workers: while this many events wait to be processed it leaves its work for
    # a later pass (0: never defers), unless an event due has waited archive_max_defer_s past its time.
    archive_yield_backlog: int = 1
    archive_max_defer_s: int = 900

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse the environment (os.environ by default); raise ConfigError naming the bad variable."""
        env = os.environ if environ is None else environ
        redis_url = _url(env, "REDIS_URL", DEFAULT_REDIS_URL, ("redis", "rediss", "unix"))
        settings = cls(
            redis_url=redis_url,
            store_configured=bool(env.get("REDIS_URL", "").strip()),
            broker_url=_url(
                env, "CELERY_BROKER_URL", redis_url, ("redis", "rediss", "unix", "amqp", "amqps", "pyamqp")
            ),
            webhook_secrets=tuple(
                s.strip() for s in env.get("VOUCHERIFY_WEBHOOK_SECRETS", "").split(",") if s.strip()
            ),
            allow_unsigned=_bool(env, "VOUCHERIFY_ALLOW_UNSIGNED", False),
            smtp_url=_optional_url(env, "SMTP_URL", ("smtp", "smtps")),
            notify_from=_email(env, "NOTIFY_FROM", "vouchers@localhost"),
            admin_token=env.get("ADMIN_TOKEN") or None,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1024 * 1024, minimum=1),
            signature_fallback_max_bytes=_int(env, "SIGNATURE_FALLBACK_MAX_BYTES", 256 * 1024, minimum=0),
            intake_buffering=_bool(env, "INTAKE_BUFFERING", True),
            intake_header_timeout_s=_float(env, "INTAKE_HEADER_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            intake_body_timeout_s=_float(env, "INTAKE_BODY_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            intake_max_connections_per_client=_int(env, "INTAKE_MAX_CONNECTIONS_PER_CLIENT", 256, minimum=0),
            dedup_window_s=_int(env, "DEDUP_WINDOW_SECONDS", 72 * 3600, minimum=1),
            outbox_lease_s=_int(env, "OUTBOX_LEASE_SECONDS", 120, minimum=5),
            reconcile_interval_s=_float(env, "RECONCILE_INTERVAL_SECONDS", 5.0, minimum=0.1),
            task_time_limit_s=_int(env, "TASK_TIME_LIMIT_SECONDS", 60, minimum=1),
            worker_batch_size=_int(env, "WORKER_BATCH_SIZE", 32, minimum=1),
            worker_batch_wait_ms=_float(env, "WORKER_BATCH_WAIT_MS", 0.0, minimum=0.0),
            action_max_attempts=_int(env, "ACTION_MAX_ATTEMPTS", 20, minimum=1),
            action_max_age_s=_int(env, "ACTION_MAX_AGE_SECONDS", 6 * 3600, minimum=1),
            action_backoff_base_s=_float(env, "ACTION_BACKOFF_BASE_SECONDS", 5.0, minimum=0.0),
            action_backoff_cap_s=_float(env, "ACTION_BACKOFF_CAP_SECONDS", 1800.0, minimum=0.0),
            smtp_timeout_s=_float(env, "SMTP_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            smtp_deadline_s=_float(env, "SMTP_DEADLINE_SECONDS", 40.0, minimum=0.1),
            smtp_ca_file=_file(env, "SMTP_CA_FILE"),
            smtp_allow_plaintext_auth=_bool(env, "SMTP_ALLOW_PLAINTEXT_AUTH", False),
            forward_timeout_s=_float(env, "FORWARD_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            forward_destinations=_destinations(env),
            # Seconds are allowed (staging, tests of expiry with real processes); days are the norm.
            retention_processed_s=_int(env, "RETENTION_PROCESSED_SECONDS", 30 * 86400, minimum=1),
            retention_failed_s=_int(env, "RETENTION_FAILED_SECONDS", 90 * 86400, minimum=1),
            notify_remember_s=_int(env, "NOTIFY_REMEMBER_SECONDS", 400 * 86400, minimum=1),
            notify_templates_dir=_directory(env, "NOTIFY_TEMPLATES_DIR"),
            key_prefix=env.get("KEY_PREFIX", "vw") or "vw",
            data_dir=Path(env.get("DATA_DIR", "var")),
            log_level=_choice(env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            schema_fast_path=_bool(env, "SCHEMA_FAST_PATH", True),
            handlers=_modules(env, "HANDLERS"),
            port=_int(env, "PORT", 8000, minimum=1),
            console_idle_s=_int(env, "CONSOLE_IDLE_SECONDS", 30 * 60, minimum=60),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, minimum=0),
            log_format=_choice(env, "LOG_FORMAT", "AUTO", ("AUTO", "JSON", "TEXT")).lower(),
            mirror_database_url=_database_url(env, "MIRROR_DATABASE_URL"),
            mirror_async_commit=_bool(env, "MIRROR_ASYNC_COMMIT", False),
            archive_database_url=_database_url(env, "ARCHIVE_DATABASE_URL")
            or _database_url(env, "MIRROR_DATABASE_URL"),
            archive_after_s=_int(env, "ARCHIVE_AFTER_SECONDS", 3600, minimum=1),
            archive_interval_s=_float(env, "ARCHIVE_INTERVAL_SECONDS", 10.0, minimum=0.1),
            archive_retention_processed_s=_int(
                env, "ARCHIVE_RETENTION_PROCESSED_SECONDS", 90 * 86400, minimum=1
            ),
            archive_retention_failed_s=_int(env, "ARCHIVE_RETENTION_FAILED_SECONDS", 365 * 86400, minimum=1),
            archive_yield_backlog=_int(env, "ARCHIVE_YIELD_BACKLOG", 1, minimum=0),
            archive_max_defer_s=_int(env, "ARCHIVE_MAX_DEFER_SECONDS", 900, minimum=0),
        )
        return _checked(settings, env)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and the `run` command use it)."""
        return replace(self, **changes)

    def with_store(self, redis_url: str) -> Settings:
        """A copy using the store at `redis_url`; the broker follows it unless it was set apart."""
        broker = redis_url if self.broker_url == self.redis_url else self.broker_url
        return replace(self, redis_url=redis_url, broker_url=broker)

    def require_secrets(self) -> None:
        """The intake refuses to start unsigned unless that was asked for explicitly."""
        if not self.webhook_secrets and not self.allow_unsigned:
            raise ConfigError(
                "VOUCHERIFY_WEBHOOK_SECRETS: not set; set it to your project's webhook secret key "
                "(Project settings -> Webhooks), or set VOUCHERIFY_ALLOW_UNSIGNED=1 to accept unsigned "
                "requests"
            )


def _checked(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Rules between variables: a bad combination fails at start, naming the variable to change."""
    if settings.smtp_deadline_s >= settings.task_time_limit_s:
        # The task's hard time limit would kill the worker mid-send instead of the deadline ending it cleanly.
        raise ConfigError(
            f"SMTP_DEADLINE_SECONDS: must be shorter than TASK_TIME_LIMIT_SECONDS "
            f"({settings.task_time_limit_s}), got {settings.smtp_deadline_s:g}"
        )
    if settings.smtp_deadline_s < settings.smtp_timeout_s:
        raise ConfigError(
            f"SMTP_DEADLINE_SECONDS: must be at least SMTP_TIMEOUT_SECONDS ({settings.smtp_timeout_s:g}), "
            f"got {settings.smtp_deadline_s:g}"
        )
    floor = max(settings.retention_processed_s, settings.retention_failed_s, settings.dedup_window_s)
    if settings.archive_database_url:
        # An archived event can be replayed for as long as the archive keeps it.
        floor = max(floor, settings.archive_retention_processed_s, settings.archive_retention_failed_s)
    if settings.notify_remember_s >= floor:
        return settings
    if env.get("NOTIFY_REMEMBER_SECONDS", "").strip():
        # Set explicitly shorter: refused, because an event kept (or re-sent) past it would email again.
        raise ConfigError(
            f"NOTIFY_REMEMBER_SECONDS: must be at least the longest of RETENTION_PROCESSED_SECONDS, "
            f"RETENTION_FAILED_SECONDS, DEDUP_WINDOW_SECONDS and, with an archive, "
            f"ARCHIVE_RETENTION_PROCESSED_SECONDS and ARCHIVE_RETENTION_FAILED_SECONDS ({floor}), "
            f"got {settings.notify_remember_s}"
        )
    # Left at its default while a retention was set longer: the memory follows the longest one.
    return replace(settings, notify_remember_s=floor)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected 1/0, true/false, yes/no or on/off, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().upper()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return raw


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip() or default
    scheme = urlsplit(raw).scheme
    if scheme not in schemes:
        raise ConfigError(
            f"{name}: expected a {'/'.join(s + '://' for s in schemes)} URL, got scheme {scheme!r}"
        )
    return raw


def _optional_url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name}: expected {' or '.join(s + '://[user:pass@]host:port' for s in schemes)}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ConfigError(f"{name}: the port is not a number") from None
    return raw


def _file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{name}: {raw!r} is not a readable file")
    return path


def _directory(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"{name}: {raw!r} is not a readable directory")
    return path


def _email(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    if "@" not in raw or raw.startswith("@"):
        raise ConfigError(f"{name}: expected an email address, got {raw!r}")
    return raw


def _modules(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated dotted module names (`myshop.handlers,crm_sync`)."""
    out = tuple(m.strip() for m in env.get(name, "").split(",") if m.strip())
    for module in out:
        if not all(part.isidentifier() for part in module.split(".")):
            raise ConfigError(f"{name}: {module!r} is not an importable module name (like myshop.handlers)")
    return out


def _database_url(env: Mapping[str, str], name: str) -> str | None:
    """A SQLite or PostgreSQL SQLAlchemy URL; `postgresql://` means psycopg 3, the driver we ship."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    scheme = urlsplit(raw).scheme
    if scheme == "sqlite":
        return raw
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg" + raw[len(scheme) :]
    raise ConfigError(
        f"{name}: expected sqlite:///path/to/file.sqlite3 or postgresql://user:pass@host/db, "
        f"got scheme {scheme!r}"
    )


def _destinations(env: Mapping[str, str]) -> tuple[ForwardDestination, ...]:
    """FORWARD_URLS=name=https://a.example/hook,https://b.example/x; FORWARD_<NAME>_SECRET, _EVENTS."""
    raw = env.get("FORWARD_URLS", "").strip()
    if not raw:
        return ()
    out: list[ForwardDestination] = []
    for i, item in enumerate(x.strip() for x in raw.split(",") if x.strip()):
        name, sep, url = item.partition("=")
        if not sep or "://" in name:
            name, url = f"dest{i + 1}", item
        name = name.strip().lower()
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"FORWARD_URLS: destination name {name!r} must be letters, digits, - or _")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"FORWARD_URLS: {url!r} is not an http(s) URL")
        key = name.upper().replace("-", "_")
        events = tuple(e.strip() for e in env.get(f"FORWARD_{key}_EVENTS", "").split(",") if e.strip())
        sources = tuple(e.strip() for e in env.get(f"FORWARD_{key}_SOURCES", "").split(",") if e.strip())
        out.append(
            ForwardDestination(name, url.strip(), env.get(f"FORWARD_{key}_SECRET") or None, events, sources)
        )
    if len({d.name for d in out}) != len(out):
        raise ConfigError("FORWARD_URLS: destination names must be unique")
    return tuple(out)
