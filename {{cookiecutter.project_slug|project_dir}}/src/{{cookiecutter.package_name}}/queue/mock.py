"""`ArqQueue` in memory, for tests of the web tier without Redis.

It keeps what Redis would hold, in the bytes Redis would hold them (jobs and
results written by arq's own functions through the project's serializer), and
follows arq's rules rather than an idealised queue's: a `_job_id` stays taken
while the job or its kept result exists, in any queue; deferred jobs report
`deferred` until their time; queues are separate; a job that finished is found
from any queue. Tests play the worker with `set_in_progress` and `set_complete`,
which refuse what no worker does (start a deferred job, finish one never started).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from arq.jobs import JobStatus
from arq.utils import timestamp_ms

from . import records
from .base import ABORT_TIMEOUT_S, ArqQueue
from .errors import JobFinished, JobNotFound, JobNotQueued, JobResultUnavailable
from .models import AbortResult, JobMetadata, JobResult, QueueStats

__all__ = ["MockArqQueue"]


@dataclass
class _Job:
    job: bytes  # as arq's serialize_job writes it
    queue_name: str
    score: int  # run time, ms
    started_ms: int | None = None
    result: bytes | None = None  # as arq's worker writes it
    result_expires: float | None = None


class MockArqQueue(ArqQueue):
    """Jobs in a dict. `keep_result` is how long results (and their ids) live;
    `confirm_aborts=False` plays a worker that does not confirm an abort in time."""

    def __init__(
        self,
        *,
        default_queue_name: str = "arq:queue",
        keep_result: float = 3600,
        confirm_aborts: bool = True,
    ) -> None:
        super().__init__(default_queue_name=default_queue_name)
        self.keep_result = keep_result
        self.confirm_aborts = confirm_aborts
        self._jobs: dict[str, _Job] = {}

    async def _store(
        self, job_id: str, job: bytes, *, queue_name: str, now_ms: int, score: int
    ) -> None:
        if self._live(job_id) is not None:
            raise JobNotQueued(job_id)
        self._jobs[job_id] = _Job(job, queue_name, score)

    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        job = self._get(job_id, queue_name)
        if job.result is not None:
            info = records.decode_result(job_id, job.result)
            return records.metadata(info, job_id, JobStatus.complete, info.queue_name)
        status = _status(job)
        return records.metadata(records.decode_job(job_id, job.job), job_id, status, job.queue_name)

    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        job = self._get(job_id, queue_name)
        if job.result is None:
            raise JobResultUnavailable(job_id)
        return records.result(records.decode_result(job_id, job.result), job_id)

    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float = ABORT_TIMEOUT_S
    ) -> AbortResult:
        job = self._get(job_id, queue_name)
        if job.result is not None:
            raise JobFinished(job_id)
        if job.started_ms is None:
            del self._jobs[job_id]
            return AbortResult.removed
        if not self.confirm_aborts:
            return AbortResult.requested
        self._finish(job_id, job, success=False, result=asyncio.CancelledError())
        return AbortResult.cancelled

    async def stats(self, queue_name: str | None = None) -> QueueStats:
        queue = self._queue(queue_name)
        now_ms = timestamp_ms()
        waiting = [
            job for job in self._jobs.values() if job.queue_name == queue and job.result is None
        ]
        due = [job for job in waiting if job.score <= now_ms]
        not_started = [job.score for job in due if job.started_ms is None]
        oldest_ready_age_s = max(0.0, (now_ms - min(not_started)) / 1000) if not_started else 0.0
        # No worker writes a health key here.
        return QueueStats(len(due), len(waiting) - len(due), oldest_ready_age_s, None)

    async def set_in_progress(self, job_id: str, queue_name: str | None = None) -> None:
        """Start a job as a worker would: only one that is queued (not deferred, not started)."""
        job = self._get(job_id, queue_name)
        status = JobStatus.complete if job.result is not None else _status(job)
        if status is not JobStatus.queued:
            raise ValueError(f"job {job_id} is {status.value}: a worker would not start it")
        job.started_ms = timestamp_ms()

    async def set_complete(
        self,
        job_id: str,
        *,
        result: Any = None,
        success: bool = True,
        queue_name: str | None = None,
    ) -> None:
        """Finish a started job as a worker would; for a failure pass the exception as `result`.

        The result is stored as the worker stores it: one it cannot serialize ends the job
        as failed with "unable to serialize result".
        """
        job = self._get(job_id, queue_name)
        if job.result is not None or job.started_ms is None:
            status = JobStatus.complete if job.result is not None else _status(job)
            raise ValueError(f"job {job_id} is {status.value}: only a started job can finish")
        self._finish(job_id, job, success=success, result=result)

    def _finish(self, job_id: str, job: _Job, *, success: bool, result: Any) -> None:
        now_ms = timestamp_ms()
        job.result = records.encode_result(
            records.decode_job(job_id, job.job),
            job_id,
            job.queue_name,
            success=success,
            result=result,
            start_ms=job.started_ms or now_ms,
            finished_ms=now_ms,
        )
        job.result_expires = time.time() + self.keep_result
        if job.result is None:  # not even the failure could be stored: arq keeps nothing
            del self._jobs[job_id]

    def _get(self, job_id: str, queue_name: str | None) -> _Job:
        job = self._live(job_id)
        # As in Redis: a waiting or running job is found in its own queue only; a result
        # is kept per job id, so a finished job is found whichever queue is asked.
        if job is None or (job.result is None and job.queue_name != self._queue(queue_name)):
            raise JobNotFound(job_id)
        return job

    def _live(self, job_id: str) -> _Job | None:
        """The job, dropped once its kept result expired."""
        job = self._jobs.get(job_id)
        if job is not None and job.result_expires is not None and job.result_expires <= time.time():
            del self._jobs[job_id]
            return None
        return job


def _status(job: _Job) -> JobStatus:
    if job.started_ms is not None:
        return JobStatus.in_progress
    return JobStatus.deferred if job.score > timestamp_ms() else JobStatus.queued
