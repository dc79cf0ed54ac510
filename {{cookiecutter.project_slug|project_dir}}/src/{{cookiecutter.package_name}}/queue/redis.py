"""`ArqQueue` on a real Redis, through arq's `ArqRedis` pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import (
    DeserializationError,
    JobDef,
    JobStatus,
    deserialize_job,
    deserialize_result,
    serialize_job,
)
from arq.jobs import JobResult as ArqJobResult
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from redis.exceptions import RedisError, ResponseError, WatchError

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

# A Redis call that gets no answer in this many seconds fails (and the API
# answers 503) instead of hanging the request. It is one asyncio timeout per
# call, not redis-py's socket_timeout, which on Python 3.11 starts a task for
# every command sent: about 15% of the enqueue endpoint's CPU (bench/).
TIMEOUT_S = 5.0

# arq's enqueue_job in one round trip instead of three (WATCH, EXISTS,
# MULTI/EXEC): the same keys and values, as atomic as arq's transaction. A job
# id is refused while the job or its kept result exists.
ENQUEUE_SCRIPT = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


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
        retry_on_timeout=settings.retry_on_timeout,
        max_connections=settings.max_connections,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=default_queue_name,
    )


class RedisArqQueue(ArqQueue):
    """Jobs in Redis, read and written the way arq's worker does."""

    def __init__(self, pool: ArqRedis, *, timeout: float = TIMEOUT_S) -> None:
        super().__init__(default_queue_name=pool.default_queue_name)
        self._pool = pool
        self._timeout = timeout
        self._enqueue_script = pool.register_script(ENQUEUE_SCRIPT)

    @classmethod
    def from_settings(cls, settings: RedisSettings, *, default_queue_name: str) -> RedisArqQueue:
        return cls(connect_pool(settings, default_queue_name=default_queue_name))

    async def ping(self) -> None:
        """Raise `QueueUnavailable` unless Redis answers."""
        async with self._redis():
            await self._pool.ping()

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
        if _defer_until is not None and _defer_by is not None:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        queue_name = self._queue(_queue_name)
        job_id = _job_id or uuid4().hex
        now_ms = timestamp_ms()
        if _defer_until is not None:
            score = to_unix_ms(_defer_until)
        else:
            score = now_ms + (to_ms(_defer_by) or 0)
        # arq's default expiry: a job not started within a day of its run time is dropped.
        expires_ms = score - now_ms + self._pool.expires_extra_ms
        job = serialize_job(name, args, kwargs, None, now_ms, serializer=serialize)
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue_name]
        async with self._redis():
            added = await self._enqueue_script(keys=keys, args=[expires_ms, job, score, job_id])
        if not added:
            raise JobNotQueued(job_id)
        # What was stored, without another round trip to read it back.
        return JobMetadata.model_construct(
            id=job_id,
            name=name,
            args=args,
            kwargs=kwargs,
            enqueue_time=datetime.fromtimestamp(now_ms / 1000, UTC),
            status=JobStatus.deferred if score > now_ms else JobStatus.queued,
            queue_name=queue_name,
        )

    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        queue = self._queue(queue_name)
        result, job, score, in_progress = await self._read(job_id, queue)
        if result is not None:
            return _metadata(_result(job_id, result), job_id, JobStatus.complete)
        if job is None or (score is None and not in_progress):
            # Like arq's Job.status(): a job that is not in this queue is not found.
            raise JobNotFound(job_id)
        status = _status(score, in_progress=bool(in_progress))
        try:
            info = deserialize_job(job, deserializer=deserialize)
        except DeserializationError:
            raise JobNotFound(job_id) from None  # not a job this app wrote
        return _metadata(info, job_id, status, queue)

    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        queue = self._queue(queue_name)
        result, job, _, _ = await self._read(job_id, queue)
        if result is None:
            raise JobNotFound(job_id) if job is None else JobResultUnavailable(job_id)
        info = _result(job_id, result)
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
        if await self._remove_waiting(job_id, queue):
            return True
        result, job, _, in_progress = await self._read(job_id, queue)
        if result is not None:
            return False
        if job is None and not in_progress:
            raise JobNotFound(job_id)
        # Running: ask the worker (allow_abort_jobs=True) to cancel it, and
        # wait for its result as arq's Job.abort does.
        async with self._redis():
            await self._pool.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            async with self._redis():
                result = await self._pool.get(result_key_prefix + job_id)
            if result is not None:
                info = _result(job_id, result)
                return not info.success and isinstance(info.result, asyncio.CancelledError)
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        await self._pool.aclose(close_connection_pool=True)

    @asynccontextmanager
    async def _redis(self) -> AsyncIterator[None]:
        """Bound Redis calls by the timeout; their failures become `QueueUnavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except TimeoutError as error:
            timeout = TimeoutError(f"Redis did not answer in {self._timeout:g} s")
            raise QueueUnavailable(timeout) from error
        except (RedisError, OSError) as error:
            raise QueueUnavailable(error) from error

    async def _read(self, job_id: str, queue: str) -> list[Any]:
        async with self._redis(), self._pool.pipeline(transaction=False) as pipe:
            pipe.get(result_key_prefix + job_id)
            pipe.get(job_key_prefix + job_id)
            pipe.zscore(queue, job_id)
            pipe.exists(in_progress_key_prefix + job_id)
            replies = await pipe.execute(raise_on_error=False)
        if any(isinstance(reply, ResponseError) for reply in replies):
            raise JobNotFound(job_id)  # a key of another type (WRONGTYPE): not a job of ours
        return replies

    async def _remove_waiting(self, job_id: str, queue: str) -> bool:
        """Take a job that no worker has started out of the queue, atomically."""
        in_progress_key = in_progress_key_prefix + job_id
        async with self._redis(), self._pool.pipeline(transaction=True) as pipe:
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


def _result(job_id: str, raw: bytes) -> ArqJobResult:
    try:
        return deserialize_result(raw, deserializer=deserialize)
    except DeserializationError:
        raise JobNotFound(job_id) from None  # not a result this app's worker wrote


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
