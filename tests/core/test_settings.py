import pytest

from core.settings import ConfigError, Settings


class TestFromEnv:
    def test_defaults(self):
        """With nothing set, the documented defaults apply."""
        s = Settings.from_env({})
        assert s.redis_url == "redis://localhost:6379/0"
        assert s.broker_url == s.redis_url
        assert s.webhook_secrets == ()
        assert s.smtp_url is None
        assert s.notify_from == "vouchers@localhost"
        assert s.admin_token is None
        assert s.max_body_bytes == 1024 * 1024
        assert s.dedup_window_s == 72 * 3600
        assert s.signature_fallback_max_bytes == 256 * 1024
        assert (s.intake_header_timeout_s, s.intake_body_timeout_s) == (5.0, 10.0)
        assert s.intake_max_connections_per_client == 256
        assert (s.console_idle_s, s.trusted_proxies, s.log_format) == (1800, 0, "auto")
        assert (s.worker_batch_size, s.worker_batch_wait_ms) == (32, 0.0)

    def test_micro_batch_settings(self):
        s = Settings.from_env({"WORKER_BATCH_SIZE": "1", "WORKER_BATCH_WAIT_MS": "2.5"})
        assert (s.worker_batch_size, s.worker_batch_wait_ms) == (1, 2.5)

    def test_secrets_are_comma_separated_and_trimmed(self):
        s = Settings.from_env({"VOUCHERIFY_WEBHOOK_SECRETS": " new , old,, "})
        assert s.webhook_secrets == ("new", "old")

    def test_broker_defaults_to_redis_url(self):
        s = Settings.from_env({"REDIS_URL": "redis://store:6379/2"})
        assert s.broker_url == "redis://store:6379/2"
        s = Settings.from_env({"REDIS_URL": "redis://store:6379/2", "CELERY_BROKER_URL": "amqp://guest@mq//"})
        assert s.broker_url == "amqp://guest@mq//"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("MAX_BODY_BYTES", "lots"),
            ("MAX_BODY_BYTES", "0"),
            ("WORKER_BATCH_SIZE", "0"),
            ("WORKER_BATCH_WAIT_MS", "-1"),
            ("SIGNATURE_FALLBACK_MAX_BYTES", "-1"),
            ("REDIS_URL", "http://localhost"),
            ("SMTP_URL", "mail.example.com"),
            ("SMTP_URL", "smtp://host:notaport"),
            ("NOTIFY_FROM", "nobody"),
            ("VOUCHERIFY_ALLOW_UNSIGNED", "maybe"),
            ("FORWARD_URLS", "crm=ftp://x"),
            ("DEDUP_WINDOW_SECONDS", "-1"),
            ("RETENTION_PROCESSED_SECONDS", "0"),
            ("RETENTION_FAILED_SECONDS", "a month"),
            ("INTAKE_HEADER_TIMEOUT_SECONDS", "0"),
            ("INTAKE_BODY_TIMEOUT_SECONDS", "soon"),
            ("INTAKE_MAX_CONNECTIONS_PER_CLIENT", "-1"),
            ("CONSOLE_IDLE_SECONDS", "10"),
            ("TRUSTED_PROXIES", "-1"),
            ("LOG_FORMAT", "yaml"),
            ("NOTIFY_TEMPLATES_DIR", "/nonexistent/templates"),
            ("NOTIFY_TEMPLATES_DIR", __file__),
        ],
    )
    def test_bad_value_names_the_variable(self, name, value):
        """A bad value fails at start, and the message names the variable."""
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})

    def test_no_per_address_limit(self):
        """0 turns the per-address connection limit off (an intake behind a proxy sees one address)."""
        assert (
            Settings.from_env({"INTAKE_MAX_CONNECTIONS_PER_CLIENT": "0"}).intake_max_connections_per_client
            == 0
        )

    def test_templates_dir(self, tmp_path):
        """NOTIFY_TEMPLATES_DIR: unset (or blank) means the packaged templates; set, a directory."""
        assert Settings.from_env({}).notify_templates_dir is None
        assert Settings.from_env({"NOTIFY_TEMPLATES_DIR": " "}).notify_templates_dir is None
        assert Settings.from_env({"NOTIFY_TEMPLATES_DIR": str(tmp_path)}).notify_templates_dir == tmp_path

    def test_retention_can_be_seconds(self):
        """Short retention is allowed (staging, and the tests that watch events expire)."""
        s = Settings.from_env({"RETENTION_PROCESSED_SECONDS": "1", "RETENTION_FAILED_SECONDS": "2"})
        assert (s.retention_processed_s, s.retention_failed_s) == (1, 2)

    def test_forward_destinations(self):
        """FORWARD_URLS names destinations; each may have a secret and an event filter."""
        s = Settings.from_env(
            {
                "FORWARD_URLS": "crm=https://crm.example/hook,http://bi.example/in",
                "FORWARD_CRM_SECRET": "s3",
                "FORWARD_CRM_EVENTS": "voucher.*,publication.succeeded",
            }
        )
        crm, bi = s.forward_destinations
        assert (crm.name, crm.url, crm.secret) == ("crm", "https://crm.example/hook", "s3")
        assert crm.wants("voucher.updated")
        assert crm.wants("publication.succeeded")
        assert not crm.wants("customer.created")
        assert bi.name == "dest2"
        assert bi.wants("anything")


class TestArchive:
    def test_defaults(self):
        """No archive unless a database is named; an hour in Redis; 90 days / a year on disk."""
        s = Settings.from_env({})
        assert s.archive_database_url is None
        assert (s.archive_after_s, s.archive_interval_s) == (3600, 10.0)
        assert (s.archive_retention_processed_s, s.archive_retention_failed_s) == (90 * 86400, 365 * 86400)
        assert (s.archive_yield_backlog, s.archive_max_defer_s) == (1, 900)

    def test_the_archiver_can_be_told_never_to_defer(self):
        """ARCHIVE_YIELD_BACKLOG=0: the archiver never waits for a backlog to clear."""
        s = Settings.from_env({"ARCHIVE_YIELD_BACKLOG": "0", "ARCHIVE_MAX_DEFER_SECONDS": "60"})
        assert (s.archive_yield_backlog, s.archive_max_defer_s) == (0, 60)

    def test_the_archive_defaults_to_the_mirrors_database(self):
        """`run` and compose set only MIRROR_DATABASE_URL: the archive lives there too, unless set apart."""
        mirror = {"MIRROR_DATABASE_URL": "postgresql://u@db/mirror"}
        assert Settings.from_env(mirror).archive_database_url == "postgresql+psycopg://u@db/mirror"
        apart = {**mirror, "ARCHIVE_DATABASE_URL": "sqlite:////var/archive.sqlite3"}
        assert Settings.from_env(apart).archive_database_url == "sqlite:////var/archive.sqlite3"

    def test_bad_values_name_the_variable(self):
        with pytest.raises(ConfigError, match="ARCHIVE_DATABASE_URL"):
            Settings.from_env({"ARCHIVE_DATABASE_URL": "mysql://db/x"})
        with pytest.raises(ConfigError, match="ARCHIVE_AFTER_SECONDS"):
            Settings.from_env({"ARCHIVE_AFTER_SECONDS": "0"})
        with pytest.raises(ConfigError, match="ARCHIVE_YIELD_BACKLOG"):
            Settings.from_env({"ARCHIVE_YIELD_BACKLOG": "-1"})
        with pytest.raises(ConfigError, match="ARCHIVE_MAX_DEFER_SECONDS"):
            Settings.from_env({"ARCHIVE_MAX_DEFER_SECONDS": "soon"})

    def test_the_email_memory_outlasts_the_archive(self):
        """An archived event can be replayed while the archive keeps it: "already emailed" lasts as long."""
        env = {"MIRROR_DATABASE_URL": "sqlite:///m.db", "ARCHIVE_RETENTION_FAILED_SECONDS": str(500 * 86400)}
        assert Settings.from_env(env).notify_remember_s == 500 * 86400
        with pytest.raises(ConfigError, match="ARCHIVE_RETENTION_FAILED_SECONDS"):
            Settings.from_env({**env, "NOTIFY_REMEMBER_SECONDS": str(400 * 86400)})
        # Without an archive its retention does not matter.
        assert Settings.from_env(
            {"ARCHIVE_RETENTION_FAILED_SECONDS": str(500 * 86400)}
        ).notify_remember_s == (400 * 86400)


class TestRequireSecrets:
    def test_refuses_without_secret(self):
        with pytest.raises(ConfigError, match="VOUCHERIFY_WEBHOOK_SECRETS"):
            Settings.from_env({}).require_secrets()

    def test_allows_explicitly_unsigned(self):
        Settings.from_env({"VOUCHERIFY_ALLOW_UNSIGNED": "1"}).require_secrets()
