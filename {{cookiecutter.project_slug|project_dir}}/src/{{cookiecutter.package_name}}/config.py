"""Settings of the service and its worker, read from the environment.

Every variable name starts with `{{ cookiecutter.env_prefix }}`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self
from urllib.parse import urlsplit, urlunsplit

from arq.constants import default_queue_name
from pydantic import Field, SecretStr, {% if cookiecutter.api_auth == "token" %}field_validator, {% endif %}model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .redis_dsn import RedactedRedisSettings, parse_redis_dsn

__all__ = ["ArqMode", "Config", "LogFormat", "get_config"]

Seconds = Annotated[float, Field(ge=0)]
# arq's health key expires this long after health_check_interval (arq.worker.Worker.record_health).
HEALTH_KEY_MARGIN_S = 1.0
# The shortest pause between an idle worker's reads: below it, a worker costs Redis hundreds
# of commands a second for latency the wake-up gives anyway.
MIN_PAUSE_S = 0.01
{%- if cookiecutter.api_auth == "token" %}
MIN_TOKEN_LENGTH = 16
{%- endif %}


class ArqMode(StrEnum):
    """`production` talks to Redis; `test` keeps jobs in memory."""

    production = "production"
    test = "test"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class Config(BaseSettings):
    """Every setting, with the reason for its default.

    A password inside ``arq_queue_url`` is moved into ``arq_queue_password``
    when the settings load, so the URL can be shown and logged safely.
    """

    model_config = SettingsConfigDict(
        env_prefix="{{ cookiecutter.env_prefix }}",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        # `NAME=` (empty) means unset, so the default applies.
        env_ignore_empty=True,
        # A validation error must not echo a value: it may hold a password or a token.
        hide_input_in_errors=True,
    )

    arq_mode: ArqMode = ArqMode.production
    arq_queue_url: str = Field(
        default="redis://localhost:6379/0",
        description=(
            "Redis DSN: redis://, rediss:// (TLS) or unix://, with ?db= or /db; Sentinel:"
            " redis+sentinel://host1:26379,host2:26379/mymaster/0 (rediss+sentinel:// for TLS)"
        ),
    )
    arq_queue_password: SecretStr | None = None
    arq_queue_name: str = Field(default=default_queue_name, min_length=1)

    # Worker tuning. A worker reads at most queue_read_limit job ids a read and runs
    # max_jobs at a time. arq pauses poll_delay seconds after each loop; when a read
    # finds nothing to start, the worker waits there for the signal an enqueue sends
    # (worker/wakeup.py), reading at least every idle_poll_interval anyway: jobs that
    # come without a signal (plain arq clients, retries, deferred jobs, cron) start
    # within it. At 0.5 s an idle worker costs Redis about 10 commands a second.
    # poll_delay stays short so a job enqueued just after another starts at once; it
    # also paces the loop while the worker is full or waits for its jobs at shutdown
    # (arq then checks abort requests, about 4 commands a loop). An idle interval of
    # 0 turns the wake-up off: arq then polls every poll_delay (raise it: arq's 0.5 s
    # caps a worker near 200 jobs/s; 0.05 s drains ten times that at 100 polls/s).
    # arq rewrites its health key (`arq --check`) in a loop, and it expires 1 s after
    # health_check_interval, so the longest pause between loops stays below 1 s.
    worker_idle_poll_interval: Seconds = 0.5
    worker_poll_delay: Seconds = 0.01
    worker_max_jobs: int = Field(default=100, ge=1)
    worker_queue_read_limit: int | None = Field(default=None, ge=1)
    worker_job_timeout: Seconds = 300
    # Above 0: without a kept result an abort cannot be confirmed, and a job's
    # outcome cannot be read.
    worker_keep_result: float = Field(default=3600, gt=0)
    worker_max_tries: int = Field(default=5, ge=1)
    worker_retry_backoff: Seconds = 2.0
    # A liveness probe (`arq --check`) fails when the health key is older than
    # this interval plus one second: arq's default of one hour is useless there.
    worker_health_check_interval: Seconds = 30
    # On SIGTERM the worker stops taking jobs and waits this long for running
    # ones; keep compose's stop_grace_period (and Kubernetes'
    # terminationGracePeriodSeconds) above it.
    worker_job_completion_wait: int = Field(default=25, ge=0)
    # The worker serves its Prometheus metrics on this port (0: not at all).
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
{%- if cookiecutter.api_auth == "token" %}

    # Clients of /jobs send `Authorization: Bearer <token>` with one of these
    # (comma-separated, so a new token can be added before the old one goes).
    api_tokens: SecretStr | None = None
{%- endif %}

    # Larger request bodies are refused with 413 before they are read whole.
    api_max_body_bytes: int = Field(default=65536, ge=1024)

    # The example job fetches invoices from this API.
    invoice_api_url: str = "http://localhost:8080"
    invoice_retention_days: int = Field(default=30, ge=1)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.json

    @model_validator(mode="after")
    def _reads_keep_the_health_key(self) -> Self:
        if self.worker_idle_poll_interval + self.worker_poll_delay >= HEALTH_KEY_MARGIN_S:
            raise ValueError(
                "worker_idle_poll_interval + worker_poll_delay must be below"
                f" {HEALTH_KEY_MARGIN_S:g} s: arq rewrites its health key between reads, and"
                " the key outlives health_check_interval by only that much"
            )
        if self.worker_poll_delay < MIN_PAUSE_S or 0 < self.worker_idle_poll_interval < MIN_PAUSE_S:
            raise ValueError(
                f"worker_poll_delay must be at least {MIN_PAUSE_S:g} s, and"
                f" worker_idle_poll_interval 0 or at least {MIN_PAUSE_S:g} s: the worker"
                " would loop on Redis in a busy loop"
            )
        return self

    @model_validator(mode="after")
    def _move_password_out_of_url(self) -> Self:
        password = self.arq_queue_password.get_secret_value() if self.arq_queue_password else None
        settings = parse_redis_dsn(self.arq_queue_url, password=password)
        if settings.password is not None and password is None:
            object.__setattr__(self, "arq_queue_password", SecretStr(settings.password))
            object.__setattr__(self, "arq_queue_url", _without_password(self.arq_queue_url))
        return self

{%- if cookiecutter.api_auth == "token" %}

    @field_validator("api_tokens")
    @classmethod
    def _tokens_are_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            tokens = _split(value)
            if not tokens or any(len(token) < MIN_TOKEN_LENGTH for token in tokens):
                raise ValueError(
                    f"every API token must be at least {MIN_TOKEN_LENGTH} characters"
                    " (make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
        return value

    @cached_property
    def api_token_list(self) -> tuple[bytes, ...]:
        """The accepted API tokens, as bytes for constant-time comparison."""
        return tuple(token.encode() for token in _split(self.api_tokens)) if self.api_tokens else ()
{%- endif %}

    @cached_property
    def arq_redis_settings(self) -> RedactedRedisSettings:
        """The Redis connection settings for arq's pool and worker."""
        password = self.arq_queue_password
        return parse_redis_dsn(
            self.arq_queue_url,
            password=password.get_secret_value() if password else None,
        )
{%- if cookiecutter.api_auth == "token" %}


def _split(tokens: SecretStr) -> list[str]:
    return [token.strip() for token in tokens.get_secret_value().split(",") if token.strip()]
{%- endif %}


def _without_password(dsn: str) -> str:
    parts = urlsplit(dsn)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username = userinfo.partition(":")[0]
    netloc = f"{username}@{hostport}" if username else hostport
    return urlunsplit(parts._replace(netloc=netloc))


def get_config() -> Config:
    """Read the configuration from the environment (and `.env`)."""
    return Config()
