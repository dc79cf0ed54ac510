"""The queue client interface that endpoints depend on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from arq.constants import default_queue_name

from .models import JobMetadata, JobResult

__all__ = ["ArqQueue"]


class ArqQueue(ABC):
    """Enqueue jobs and read their state, on Redis or in memory."""

    def __init__(self, *, default_queue_name: str = default_queue_name) -> None:
        self.default_queue_name = default_queue_name

    @abstractmethod
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
        """Enqueue a job; raise `JobNotQueued` if `_job_id` is taken."""

    @abstractmethod
    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        """The job's metadata and status; raise `JobNotFound`."""

    @abstractmethod
    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        """The finished job; raise `JobNotFound` or `JobResultUnavailable`."""

    @abstractmethod
    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float | None = None
    ) -> bool:
        """Remove a waiting job, or cancel a running one; False if it already ended."""

    async def ping(self) -> None:  # noqa: B027 (the mock is always up)
        """Raise `QueueUnavailable` unless the backend answers."""

    async def aclose(self) -> None:  # noqa: B027 (the mock holds no connections)
        """Release connections."""

    def _queue(self, queue_name: str | None) -> str:
        return queue_name or self.default_queue_name
