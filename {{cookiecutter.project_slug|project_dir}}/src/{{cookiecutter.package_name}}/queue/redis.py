"""`ArqQueue` on a real Redis, through arq's `ArqRedis` pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import Job, JobDef, JobStatus, deserialize_job, deserialize_result
from arq.utils import timestamp_ms, to_ms
from redis.exceptions import RedisError, WatchError

from ..serialization import deserialize, serialize
from .base import ArqQueue
from .models import (
    JobError,
    JobMetadata,
    JobNotFound,
    JobNotQueued,
    JobResult,
    JobResultUnavailable,
    QueueUnavailable,
)

__all__ = ["RedisArqQueue", "connect_pool"]

# A command that gets no answer in this many seconds fails (and the API
# answers 503) instead of hanging the request.
SOCKET_TIMEOUT_S = 5.0


def connect_pool(settings: RedisSettings, *, default_queue_name: str) -> ArqRedis:
    """An `ArqRedis` pool like `arq.create_pool`'s, minus its start-up ping.

    The pool connects on first use and reconnects after Redis comes back, so
    the app can start (and recover) while Redis is down.
    """
    return ArqRedis(
        host=settings.host,
        port=settings.port,
        unix_socket_path=settings.unix_socket_path,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        ssl_keyfile=settings.ssl_keyfile,
        ssl_certfile=settings.ssl_certfile,
        ssl_cert_reqs=settings.ssl_cert_reqs,
        ssl_ca_certs=settings.ssl_ca_certs,
        ssl_ca_data=settings.ssl_ca_data,
        ssl_check_hostname=settings.ssl_check_hostname,
        socket_connect_timeout=settings.conn_timeout,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry_on_timeout=settings.retry_on_timeout,
        max_connections=settings.max_connections,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=default_queue_name,
    )


class RedisArqQueue(ArqQueue):
    """Jobs in Redis, read and written the way arq's worker does."""

    def __init__(self, pool: ArqRedis) -> None:
        super().__init__(default_queue_name=pool.default_queue_name)
        self._pool = pool

    @classmethod
    def from_settings(cls, settings: RedisSettings, *, default_queue_name: str) -> RedisArqQueue:
        return cls(connect_pool(settings, default_queue_name=default_queue_name))

    async def ping(self) -> None:
        """Raise `QueueUnavailable` unless Redis answers."""
        try:
            await self._pool.ping()
        except (RedisError, OSError) as error:
            raise QueueUnavailable(error) from error

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
        queue_name = self._queue(_queue_name)
        before_ms = timestamp_ms()
        try:
            job = await self._pool.enqueue_job(
                name,
                *args,
                _job_id=_job_id,
                _queue_name=queue_name,
                _defer_by=_defer_by,
                _defer_until=_defer_until,
                **kwargs,
            )
        except (RedisError, OSError) as error:
            raise QueueUnavailable(error) from error
        if job is None:
            raise JobNotQueued(_job_id or "")
        # What arq stored, without another round trip to read it back.
        score = _score(before_ms, _defer_by, _defer_until)
        return JobMetadata(
            id=job.job_id,
            name=name,
            args=args,
            kwargs=kwargs,
            enqueue_time=datetime.fromtimestamp(before_ms / 1000, UTC),
            status=JobStatus.deferred if score > timestamp_ms() else JobStatus.queued,
            queue_name=queue_name,
        )

    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        queue = self._queue(queue_name)
        result, job, score, in_progress = await self._read(job_id, queue)
        if result is not None:
            return _metadata(
                deserialize_result(result, deserializer=deserialize), job_id, JobStatus.complete
            )
        if job is None or (score is None and not in_progress):
            # Like arq's Job.status(): a job that is not in this queue is not found.
            raise JobNotFound(job_id)
        status = _status(score, in_progress=bool(in_progress))
        return _metadata(deserialize_job(job, deserializer=deserialize), job_id, status, queue)

    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        queue = self._queue(queue_name)
        result, job, _, _ = await self._read(job_id, queue)
        if result is None:
            raise JobNotFound(job_id) if job is None else JobResultUnavailable(job_id)
        info = deserialize_result(result, deserializer=deserialize)
        return JobResult(
            **_metadata(info, job_id, JobStatus.complete).model_dump(),
            start_time=info.start_time,
            finish_time=info.finish_time,
            success=info.success,
            result=info.result if info.success else None,
            error=None if info.success else JobError.from_failure(info.result),
        )

    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float | None = 5.0
    ) -> bool:
        queue = self._queue(queue_name)
        try:
            if await self._remove_waiting(job_id, queue):
                return True
            result, job, _, in_progress = await self._read(job_id, queue)
            if result is not None:
                return False
            if job is None and not in_progress:
                raise JobNotFound(job_id)
            # Running: ask the worker (allow_abort_jobs=True) to cancel it.
            arq_job = Job(job_id, self._pool, _queue_name=queue, _deserializer=deserialize)
            try:
                return await arq_job.abort(timeout=timeout, poll_delay=0.1)
            except TimeoutError:
                return False
        except (RedisError, OSError) as error:
            raise QueueUnavailable(error) from error

    async def aclose(self) -> None:
        await self._pool.aclose(close_connection_pool=True)

    async def _read(self, job_id: str, queue: str) -> list[Any]:
        try:
            async with self._pool.pipeline(transaction=False) as pipe:
                pipe.get(result_key_prefix + job_id)
                pipe.get(job_key_prefix + job_id)
                pipe.zscore(queue, job_id)
                pipe.exists(in_progress_key_prefix + job_id)
                return await pipe.execute()
        except (RedisError, OSError) as error:
            raise QueueUnavailable(error) from error

    async def _remove_waiting(self, job_id: str, queue: str) -> bool:
        """Take a job that no worker has started out of the queue, atomically."""
        in_progress_key = in_progress_key_prefix + job_id
        async with self._pool.pipeline(transaction=True) as pipe:
            await pipe.watch(in_progress_key)
            if await pipe.exists(in_progress_key) or await pipe.zscore(queue, job_id) is None:
                await pipe.reset()  # type: ignore[no-untyped-call]
                return False
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.zrem(queue, job_id)
            pipe.delete(job_key_prefix + job_id, retry_key_prefix + job_id)
            # Touch the key a worker WATCHes while it claims the job, so a
            # worker that read the queue before this transaction backs off.
            pipe.psetex(in_progress_key, 1, b"aborted")
            try:
                await pipe.execute()
            except WatchError:
                return False
        return True


def _score(now_ms: int, defer_by: timedelta | float | None, defer_until: datetime | None) -> int:
    if defer_until is not None:
        return int(defer_until.timestamp() * 1000)
    return now_ms + (to_ms(defer_by) or 0)


def _status(score: float | None, *, in_progress: bool) -> JobStatus:
    if in_progress or score is None:
        return JobStatus.in_progress
    return JobStatus.deferred if score > timestamp_ms() else JobStatus.queued


def _metadata(
    info: JobDef, job_id: str, status: JobStatus, queue: str | None = None
) -> JobMetadata:
    queue_name = getattr(info, "queue_name", None) or queue or ""
    return JobMetadata(
        id=job_id,
        name=info.function,
        args=tuple(info.args),
        kwargs=info.kwargs,
        enqueue_time=info.enqueue_time,
        status=status,
        queue_name=queue_name,
    )
