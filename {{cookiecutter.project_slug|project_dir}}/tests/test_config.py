from __future__ import annotations

from pathlib import Path

import pytest
from arq.connections import RedisSettings
from pydantic import ValidationError
from redis.asyncio.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from {{ cookiecutter.package_name }}.config import ArqMode, Config
from {{ cookiecutter.package_name }}.redis_pool import connect_pool

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


async def test_a_sentinel_url_builds_a_sentinel_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: redis-py asks the sentinels for the master on the first command."""
    monkeypatch.setenv(f"{PREFIX}ARQ_QUEUE_URL", "redis+sentinel://app:hunter2@s1,s2:26380/cache/1")

    config = Config()

    assert config.arq_queue_url == "redis+sentinel://app@s1,s2:26380/cache/1"
    assert "hunter2" not in repr(config) + repr(config.arq_redis_settings)
    pool = connect_pool(config.arq_redis_settings, default_queue_name="invoices")
    try:
        connections = pool.connection_pool
        assert isinstance(connections, SentinelConnectionPool)
        assert (connections.service_name, connections.is_master) == ("cache", True)
        assert connections.connection_class is SentinelManagedConnection
        kwargs = connections.connection_kwargs
        assert (kwargs["db"], kwargs["username"], kwargs["password"]) == (1, "app", "hunter2")
        sentinels = [
            s.connection_pool.connection_kwargs for s in connections.sentinel_manager.sentinels
        ]
        assert [(s["host"], s["port"]) for s in sentinels] == [("s1", 26379), ("s2", 26380)]
        # The password is the master's and replicas': the sentinels are asked without it.
        assert all(s.get("password") is None and s.get("username") is None for s in sentinels)
        assert pool.default_queue_name == "invoices"
    finally:
        await pool.aclose()


async def test_a_rediss_sentinel_url_talks_tls_to_the_master() -> None:
    config = Config(arq_queue_url="rediss+sentinel://s1/mymaster?ssl_ca_certs=/etc/ca.pem")
    pool = connect_pool(config.arq_redis_settings, default_queue_name="q")
    try:
        connections = pool.connection_pool
        assert isinstance(connections, SentinelConnectionPool)
        assert connections.connection_class is SentinelManagedSSLConnection
        assert connections.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
        (sentinel,) = connections.sentinel_manager.sentinels
        assert "ssl_ca_certs" not in sentinel.connection_pool.connection_kwargs
    finally:
        await pool.aclose()


def test_sentinel_settings_need_a_list_of_sentinels() -> None:
    with pytest.raises(ValueError, match="list of"):
        connect_pool(RedisSettings(host="s1", sentinel=True), default_queue_name="q")


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
