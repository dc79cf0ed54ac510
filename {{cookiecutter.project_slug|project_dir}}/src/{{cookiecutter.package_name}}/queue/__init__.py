"""The job queue client: one interface, a Redis and an in-memory implementation."""

from .base import ABORT_TIMEOUT_S, ArqQueue
from .errors import (
    JobFinished,
    JobNotFound,
    JobNotQueued,
    JobNotSerializable,
    JobResultUnavailable,
    QueueError,
    QueueUnavailable,
)
from .mock import MockArqQueue
from .models import AbortResult, JobError, JobMetadata, JobResult, JobStatus, QueueStats
from .redis import RedisArqQueue

__all__ = [
    "ABORT_TIMEOUT_S",
    "AbortResult",
    "ArqQueue",
    "JobError",
    "JobFinished",
    "JobMetadata",
    "JobNotFound",
    "JobNotQueued",
    "JobNotSerializable",
    "JobResult",
    "JobResultUnavailable",
    "JobStatus",
    "MockArqQueue",
    "QueueError",
    "QueueStats",
    "QueueUnavailable",
    "RedisArqQueue",
]
