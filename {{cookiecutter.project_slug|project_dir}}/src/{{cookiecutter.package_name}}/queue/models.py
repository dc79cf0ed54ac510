"""What a queue client returns: typed job metadata and results, and its errors."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from arq.jobs import JobStatus
from pydantic import BaseModel, Field

from ..serialization import JobFailed

__all__ = [
    "JobError",
    "JobMetadata",
    "JobNotFound",
    "JobNotQueued",
    "JobResult",
    "JobResultUnavailable",
    "JobStatus",
    "QueueUnavailable",
]


class JobMetadata(BaseModel):
    """A job as it stands in the queue (or after it ran)."""

    id: str = Field(description="The job id; pass `_job_id` to make it idempotent")
    name: str = Field(description="Name of the job function")
    args: tuple[Any, ...] = Field(description="Positional arguments of the job")
    kwargs: dict[str, Any] = Field(description="Keyword arguments of the job")
    enqueue_time: datetime = Field(description="When the job was enqueued")
    status: JobStatus = Field(description="deferred, queued, in_progress or complete")
    queue_name: str = Field(description="The queue the job is in")


class JobError(BaseModel):
    """Why a job failed: the exception's type name and message."""

    type: str
    message: str

    @classmethod
    def from_failure(cls, failure: object) -> JobError:
        """Describe what arq stored as a failed job's result."""
        if isinstance(failure, JobFailed):
            return cls(type=failure.type_name, message=failure.message)
        if isinstance(failure, asyncio.CancelledError):
            return cls(type="CancelledError", message=str(failure) or "the job was aborted")
        if isinstance(failure, BaseException):
            return cls(type=type(failure).__name__, message=str(failure))
        return cls(type="JobFailed", message=str(failure))


class JobResult(JobMetadata):
    """A finished job: when it ran, whether it succeeded, and what it returned."""

    start_time: datetime
    finish_time: datetime
    success: bool
    result: Any = Field(default=None, description="The return value when success is true")
    error: JobError | None = Field(default=None, description="The failure when success is false")


class JobNotQueued(Exception):
    """A job with this `_job_id` already exists (queued, running or kept result)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already exists")
        self.job_id = job_id


class JobNotFound(Exception):
    """No job with this id is known to the queue."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobResultUnavailable(Exception):
    """The job exists but has no result yet."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} has no result yet")
        self.job_id = job_id


class QueueUnavailable(Exception):
    """Redis could not be reached or did not answer in time."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the job queue is unavailable: {type(cause).__name__}: {cause}")
