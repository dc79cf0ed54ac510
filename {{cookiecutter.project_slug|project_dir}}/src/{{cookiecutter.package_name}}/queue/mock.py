"""`ArqQueue` in memory, for tests of the web tier without Redis.

It follows arq's rules rather than an idealised queue: a `_job_id` stays taken
while the job or its kept result exists; deferred jobs report `deferred`
until their time; every queue name works and queues are separate; aborting a
waiting job removes it and aborting a running one completes it as failed.
Tests move jobs along with `set_in_progress` and `set_complete`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.utils import to_ms

from .base import ArqQueue
from .models import (
    JobError,
    JobMetadata,
    JobNotFound,
    JobNotQueued,
    JobResult,
    JobResultUnavailable,
    JobStatus,
)

__all__ = ["MockArqQueue"]


@dataclass
class _Job:
    metadata: JobMetadata
    run_at: float
    started_at: float | None = None
    result: JobResult | None = None
    result_expires: float | None = None


class MockArqQueue(ArqQueue):
    """Jobs in a dict; `keep_result` is how long results (and their ids) live."""

    def __init__(self, *, default_queue_name: str = "arq:queue", keep_result: float = 3600) -> None:
        super().__init__(default_queue_name=default_queue_name)
        self.keep_result = keep_result
        self._jobs: dict[str, dict[str, _Job]] = {}

    async def enqueue(
        self,
        name: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_by: timedelta | float | None = None,
        _defer_until: datetime | None = None,
        **kwargs: Any,
    ) -> JobMetadata:
        if _defer_by is not None and _defer_until is not None:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        queue_name = self._queue(_queue_name)
        job_id = _job_id or uuid.uuid4().hex
        # arq refuses an id while its job *or its result* exists, in any queue.
        if any(self._live(queue, job_id) for queue in self._jobs):
            raise JobNotQueued(job_id)
        now = time.time()
        if _defer_until is not None:
            run_at = _defer_until.timestamp()
        else:
            run_at = now + (to_ms(_defer_by) or 0) / 1000
        metadata = JobMetadata(
            id=job_id,
            name=name,
            args=args,
            kwargs=kwargs,
            enqueue_time=datetime.fromtimestamp(now, UTC),
            status=JobStatus.deferred if run_at > now else JobStatus.queued,
            queue_name=queue_name,
        )
        self._jobs.setdefault(queue_name, {})[job_id] = _Job(metadata, run_at)
        return metadata

    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        job = self._get(job_id, queue_name)
        return job.metadata.model_copy(update={"status": self._status(job)})

    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        job = self._get(job_id, queue_name)
        if job.result is None:
            raise JobResultUnavailable(job_id)
        return job.result

    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float | None = None
    ) -> bool:
        queue = self._queue(queue_name)
        job = self._get(job_id, queue)
        if job.result is not None:
            return False
        if job.started_at is not None:
            self._complete(job, result=asyncio.CancelledError(), success=False)
        else:
            del self._jobs[queue][job_id]
        return True

    async def set_in_progress(self, job_id: str, queue_name: str | None = None) -> None:
        """Mark a waiting job as picked up by a worker."""
        job = self._get(job_id, queue_name)
        if job.result is not None:
            raise ValueError(f"job {job_id} is already complete")
        job.started_at = time.time()

    async def set_complete(
        self,
        job_id: str,
        *,
        result: Any = None,
        success: bool = True,
        queue_name: str | None = None,
    ) -> None:
        """Finish a job; for a failure pass the exception as `result`."""
        job = self._get(job_id, queue_name)
        if job.result is not None:
            raise ValueError(f"job {job_id} is already complete")
        self._complete(job, result=result, success=success)

    def _complete(self, job: _Job, *, result: Any, success: bool) -> None:
        now = time.time()
        metadata = job.metadata.model_copy(update={"status": JobStatus.complete})
        job.result = JobResult(
            **metadata.model_dump(),
            start_time=datetime.fromtimestamp(job.started_at or now, UTC),
            finish_time=datetime.fromtimestamp(now, UTC),
            success=success,
            result=result if success else None,
            error=None if success else JobError.from_failure(result),
        )
        job.result_expires = now + self.keep_result

    def _get(self, job_id: str, queue_name: str | None) -> _Job:
        queue = self._queue(queue_name)
        if self._live(queue, job_id):
            return self._jobs[queue][job_id]
        # Like arq, whose result keys are not per queue: a finished job is
        # found whichever queue is asked.
        for other in list(self._jobs):
            if self._live(other, job_id) and self._jobs[other][job_id].result:
                return self._jobs[other][job_id]
        raise JobNotFound(job_id)

    def _live(self, queue: str, job_id: str) -> bool:
        """Whether the job exists, dropping it once its kept result expired."""
        job = self._jobs.get(queue, {}).get(job_id)
        if job is None:
            return False
        if job.result_expires is not None and job.result_expires <= time.time():
            del self._jobs[queue][job_id]
            return False
        return True

    @staticmethod
    def _status(job: _Job) -> JobStatus:
        if job.result is not None:
            return JobStatus.complete
        if job.started_at is not None:
            return JobStatus.in_progress
        return JobStatus.deferred if job.run_at > time.time() else JobStatus.queued
