from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.config import ArqMode, Config

PREFIX = "{{ cookiecutter.env_prefix }}"


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}ARQ_MODE", "production")
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_URL", "rediss://cache:6390/2")
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_NAME", "invoices")
    monkeypatch.setenv(f"{PREFIX}WORKER_MAX_TRIES", "7")

    config = Config()

    assert config.arq_mode is ArqMode.production
    assert config.arq_queue_name == "invoices"
    assert config.worker_max_tries == 7
    settings = config.arq_redis_settings
    assert (settings.host, settings.port, settings.database, settings.ssl) == (
        "cache",
        6390,
        2,
        True,
    )


def test_password_in_the_url_moves_to_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_URL", "redis://app:hunter2@cache:6379/1")

    config = Config()

    assert config.arq_queue_url == "redis://app@cache:6379/1"
    assert config.arq_queue_password is not None
    assert config.arq_queue_password.get_secret_value() == "hunter2"
    assert config.arq_redis_settings.password == "hunter2"
    assert config.arq_redis_settings.username == "app"
    for text in (
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(config.arq_redis_settings),
    ):
        assert "hunter2" not in text


def test_separate_password_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_URL", "redis://cache")
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_PASSWORD", "s3cret")

    config = Config()

    assert config.arq_redis_settings.password == "s3cret"
    assert "s3cret" not in repr(config)


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unsupported scheme 'http'"):
        Config(arq_queue_url="http://cache")


def test_a_malformed_url_never_shows_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_URL", "redis://:hunter2@cache:0/x")
    with pytest.raises(ValidationError, match="database must be a non-negative integer") as error:
        Config()
    assert "hunter2" not in str(error.value)


def test_bad_mode_is_rejected() -> None:
    with pytest.raises(ValidationError, match="arq_mode"):
        Config(arq_mode="staging")  # type: ignore[arg-type]


def test_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv(f"{PREFIX}WORKER_MAX_TRIES", "")
    assert Config().worker_max_tries == 5
{%- if cookiecutter.api_auth == "token" %}
    monkeypatch.setenv(f"{PREFIX}API_TOKENS", "")  # as in `cp .env.example .env`, then edited
    assert Config().api_tokens is None
{%- endif %}


def test_results_must_be_kept() -> None:
    # Without a kept result an abort cannot be confirmed and a job's outcome is lost.
    with pytest.raises(ValidationError, match="worker_keep_result"):
        Config(worker_keep_result=0)
