"""What a queue client raises; every error is a `QueueError`."""

from __future__ import annotations

from arq.jobs import SerializationError

__all__ = [
    "JobFinished",
    "JobNotFound",
    "JobNotQueued",
    "JobNotSerializable",
    "JobResultUnavailable",
    "QueueError",
    "QueueUnavailable",
]


class QueueError(Exception):
    """Base class of the queue clients' errors."""


class JobNotQueued(QueueError):
    """A job with this `_job_id` already exists (queued, running or kept result)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already exists")
        self.job_id = job_id


class JobNotFound(QueueError):
    """No job with this id is known to the queue (or it is not a job this app wrote)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobResultUnavailable(QueueError):
    """The job exists but has no result yet."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} has no result yet")
        self.job_id = job_id


class JobFinished(QueueError):
    """The job already finished, so it cannot be aborted."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already finished")
        self.job_id = job_id


class JobNotSerializable(QueueError, SerializationError):
    """A job's arguments cannot be carried as JSON (also an arq `SerializationError`)."""


class QueueUnavailable(QueueError):
    """Redis could not be reached or did not answer in time."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the job queue is unavailable: {type(cause).__name__}: {cause}")
