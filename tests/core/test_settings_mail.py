"""The mail settings of issue 10 (items 4-6): each with a safe default, a bad value refused at start."""

from pathlib import Path

import pytest

from core.settings import ConfigError, Settings

DAY = 86400


class TestSmtpDeadline:
    def test_default(self):
        s = Settings.from_env({})
        assert s.smtp_deadline_s == 40.0
        assert s.smtp_deadline_s < s.task_time_limit_s

    def test_not_as_long_as_the_task_time_limit(self):
        """The task's hard limit would kill a send mid-way instead of the deadline ending it cleanly."""
        with pytest.raises(ConfigError, match=r"^SMTP_DEADLINE_SECONDS: .*TASK_TIME_LIMIT_SECONDS"):
            Settings.from_env({"SMTP_DEADLINE_SECONDS": "60"})
        s = Settings.from_env({"SMTP_DEADLINE_SECONDS": "100", "TASK_TIME_LIMIT_SECONDS": "120"})
        assert s.smtp_deadline_s == 100.0

    def test_not_shorter_than_one_command(self):
        with pytest.raises(ConfigError, match=r"^SMTP_DEADLINE_SECONDS: .*SMTP_TIMEOUT_SECONDS"):
            Settings.from_env({"SMTP_DEADLINE_SECONDS": "5", "SMTP_TIMEOUT_SECONDS": "10"})

    def test_a_number(self):
        with pytest.raises(ConfigError, match=r"^SMTP_DEADLINE_SECONDS: "):
            Settings.from_env({"SMTP_DEADLINE_SECONDS": "soon"})


class TestSmtpTls:
    def test_defaults(self):
        s = Settings.from_env({})
        assert s.smtp_ca_file is None
        assert s.smtp_allow_plaintext_auth is False

    def test_ca_file_must_be_readable(self, tmp_path: Path):
        with pytest.raises(ConfigError, match=r"^SMTP_CA_FILE: "):
            Settings.from_env({"SMTP_CA_FILE": str(tmp_path / "missing.pem")})
        ca = tmp_path / "ca.pem"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        assert Settings.from_env({"SMTP_CA_FILE": str(ca)}).smtp_ca_file == ca

    def test_plaintext_auth_is_an_explicit_opt_in(self):
        assert Settings.from_env({"SMTP_ALLOW_PLAINTEXT_AUTH": "1"}).smtp_allow_plaintext_auth is True
        with pytest.raises(ConfigError, match=r"^SMTP_ALLOW_PLAINTEXT_AUTH: "):
            Settings.from_env({"SMTP_ALLOW_PLAINTEXT_AUTH": "maybe"})


class TestNotifyRemember:
    def test_default_is_400_days(self):
        assert Settings.from_env({}).notify_remember_s == 400 * DAY

    def test_an_explicit_value_shorter_than_retention_is_refused(self):
        """Shorter than an event can be kept (or than the dedup window): a replay would email again."""
        with pytest.raises(ConfigError, match=r"^NOTIFY_REMEMBER_SECONDS: .*7776000"):
            Settings.from_env({"NOTIFY_REMEMBER_SECONDS": str(30 * DAY)})
        with pytest.raises(ConfigError, match=r"^NOTIFY_REMEMBER_SECONDS: "):
            Settings.from_env(
                {"NOTIFY_REMEMBER_SECONDS": "3600", "RETENTION_FAILED_SECONDS": "60",
                 "RETENTION_PROCESSED_SECONDS": "60", "DEDUP_WINDOW_SECONDS": "7200"}
            )  # fmt: skip

    def test_the_default_follows_a_longer_retention(self):
        """Left unset while a retention is set longer than 400 days: the memory takes the longest."""
        s = Settings.from_env({"RETENTION_FAILED_SECONDS": str(800 * DAY)})
        assert s.notify_remember_s == 800 * DAY

    def test_an_explicit_long_value_is_kept(self):
        assert Settings.from_env({"NOTIFY_REMEMBER_SECONDS": str(90 * DAY)}).notify_remember_s == 90 * DAY
        s = Settings.from_env({"NOTIFY_REMEMBER_SECONDS": str(1000 * DAY)})
        assert s.notify_remember_s == 1000 * DAY
