"""What a queue client returns: typed job metadata, results and abort outcomes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from arq.jobs import JobStatus
from pydantic import BaseModel, Field

from ..serialization import JobFailed

__all__ = ["AbortResult", "JobError", "JobMetadata", "JobResult", "JobStatus", "QueueStats"]


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


class AbortResult(StrEnum):
    """How an abort went. A finished job cannot be aborted: that raises `JobFinished`."""

    removed = "removed"  # it was waiting: it will never run
    cancelled = "cancelled"  # it was running: the worker cancelled it
    requested = "requested"  # it is running: the worker will cancel it, but did not confirm in time


@dataclass(frozen=True)
class QueueStats:
    """A queue at one moment, read cheaply (no key scans)."""

    ready: int  # due jobs, running ones included (a job stays in its queue until it ends)
    deferred: int
    oldest_ready_age_s: float  # of the oldest due job no worker has started; 0 when none
    health_check_ttl_s: float | None  # time left on a worker's health key; None: no worker
