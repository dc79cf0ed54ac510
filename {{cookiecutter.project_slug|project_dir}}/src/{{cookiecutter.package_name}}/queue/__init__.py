"""The job queue client: one interface, a Redis and an in-memory implementation."""

from .base import ArqQueue
from .mock import MockArqQueue
from .models import (
    JobError,
    JobMetadata,
    JobNotFound,
    JobNotQueued,
    JobResult,
    JobResultUnavailable,
    JobStatus,
    QueueUnavailable,
)
from .redis import RedisArqQueue

__all__ = [
    "ArqQueue",
    "JobError",
    "JobMetadata",
    "JobNotFound",
    "JobNotQueued",
    "JobResult",
    "JobResultUnavailable",
    "JobStatus",
    "MockArqQueue",
    "QueueUnavailable",
    "RedisArqQueue",
]
