"""The queue client interface that endpoints depend on."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from arq.constants import default_queue_name
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from opentelemetry.trace import SpanKind
from prometheus_client import Counter

from .. import tracing
from ..metrics import ENQUEUED
from . import records
from .errors import JobNotQueued, QueueUnavailable
from .models import AbortResult, JobMetadata, JobResult, JobStatus, QueueStats

__all__ = ["ABORT_TIMEOUT_S", "ArqQueue"]

# How long an abort of a running job waits for the worker to confirm it.
ABORT_TIMEOUT_S = 5.0


class ArqQueue(ABC):
    """Enqueue jobs and read their state, on Redis or in memory.

    Both implementations store jobs as arq does and agree on every answer; the
    contract tests (tests/test_queue_contract.py) hold them to it.
    """

    def __init__(self, *, default_queue_name: str = default_queue_name) -> None:
        self.default_queue_name = default_queue_name

    async def enqueue(
        self,
        function: str,
        /,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_by: timedelta | float | None = None,
        _defer_until: datetime | None = None,
        **kwargs: Any,
    ) -> JobMetadata:
        """Enqueue a job and return it as stored (arguments as the worker will read them).

        Raise `JobNotQueued` if `_job_id` is taken (by a job or its kept result, in any
        queue), `JobNotSerializable` if an argument cannot be carried. A deferral into the
        past runs the job at once. Outcomes are counted in `arq_jobs_enqueued_total`.
        """
        job_id = _job_id or uuid4().hex
        queue_name = self._queue(_queue_name)
        now_ms, score = schedule(_defer_by, _defer_until)

        async def store() -> bytes:
            # Encoded here, so a traced job record carries the enqueue span's traceparent.
            job = records.encode_job(function, args, kwargs, now_ms)
            await self._store(job_id, job, queue_name=queue_name, now_ms=now_ms, score=score)
            return job

        try:
            if tracing.enabled():
                with tracing.tracer.start_as_current_span(
                    f"enqueue {function}", kind=SpanKind.PRODUCER
                ):
                    job = await store()
            else:
                job = await store()
        except JobNotQueued:
            _enqueued(function, "duplicate").inc()
            raise
        except QueueUnavailable:
            _enqueued(function, "unavailable").inc()
            raise
        _enqueued(function, "accepted").inc()
        status = JobStatus.deferred if score > now_ms else JobStatus.queued
        # What was stored, read back from the bytes sent, without another round trip.
        return records.metadata(records.decode_job(job_id, job), job_id, status, queue_name)

    @abstractmethod
    async def _store(
        self, job_id: str, job: bytes, *, queue_name: str, now_ms: int, score: int
    ) -> None:
        """Store an encoded job to run at `score` (ms since the epoch) unless its id is
        taken by a job or a kept result: then raise `JobNotQueued`."""

    @abstractmethod
    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        """The job's metadata and status; raise `JobNotFound` (also for a job in another queue)."""

    @abstractmethod
    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        """The finished job; raise `JobNotFound` or `JobResultUnavailable`."""

    @abstractmethod
    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float = ABORT_TIMEOUT_S
    ) -> AbortResult:
        """Remove a waiting job, or cancel a running one (waiting up to `timeout` seconds for
        the worker to confirm); raise `JobFinished` if it already ended, `JobNotFound`."""

    @abstractmethod
    async def stats(self, queue_name: str | None = None) -> QueueStats:
        """Counts of ready and deferred jobs, the oldest waiting one, the worker's health key."""

    async def ping(self) -> None:  # noqa: B027 (the mock is always up)
        """Raise `QueueUnavailable` unless the backend answers."""

    async def aclose(self) -> None:  # noqa: B027 (the mock holds no connections)
        """Release connections."""

    def _queue(self, queue_name: str | None) -> str:
        return queue_name or self.default_queue_name


@functools.cache
def _enqueued(function: str, outcome: str) -> Counter:
    """The counter of one function and outcome, looked up once (labels() takes a lock)."""
    return ENQUEUED.labels(function, outcome)


def schedule(defer_by: timedelta | float | None, defer_until: datetime | None) -> tuple[int, int]:
    """(now, run time) in ms since the epoch; a run time in the past is now."""
    if defer_by is not None and defer_until is not None:
        raise ValueError("use either _defer_by or _defer_until, not both")
    now_ms = timestamp_ms()
    if defer_until is not None:
        return now_ms, max(now_ms, to_unix_ms(defer_until))
    return now_ms, now_ms + max(0, to_ms(defer_by) or 0)
