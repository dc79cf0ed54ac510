"""Retry a job with exponential backoff, and fail with the real error at the end."""

from __future__ import annotations

from typing import Any, NoReturn

from arq import Retry

from ..config import Config

__all__ = ["backoff", "retry_or_raise"]


def backoff(config: Config, job_try: int) -> float:
    """Seconds to wait before try ``job_try + 1``: base, 2x base, 4x base, ..."""
    return float(config.worker_retry_backoff * 2 ** (job_try - 1))


def retry_or_raise(ctx: dict[str, Any], error: Exception) -> NoReturn:
    """Raise `Retry` while tries remain; on the last try raise ``error`` itself.

    arq would otherwise end the job with a bare "max retries exceeded", losing
    the reason the job failed.
    """
    config: Config = ctx["config"]
    job_try: int = ctx["job_try"]
    if job_try < config.worker_max_tries:
        raise Retry(defer=backoff(config, job_try)) from error
    raise error
