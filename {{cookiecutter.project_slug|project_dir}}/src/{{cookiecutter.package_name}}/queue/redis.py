"""`ArqQueue` on a real Redis, through arq's `ArqRedis` pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    abort_jobs_ss,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import JobStatus
from arq.utils import timestamp_ms
from redis.exceptions import RedisError, ResponseError, WatchError

from ..redis_pool import connect_pool, wake_channel
from . import records
from .base import ABORT_TIMEOUT_S, ArqQueue
from .errors import JobFinished, JobNotFound, JobNotQueued, JobResultUnavailable, QueueUnavailable
from .models import AbortResult, JobMetadata, JobResult, QueueStats

__all__ = ["RedisArqQueue"]

# A Redis call that gets no answer in this many seconds fails (and the API
# answers 503) instead of hanging the request. It is one asyncio timeout per
# call, not redis-py's socket_timeout, which on Python 3.11 starts a task for
# every command sent: about 15% of the enqueue endpoint's CPU (bench/).
TIMEOUT_S = 5.0
# How many of the oldest due jobs a scrape looks at to find one not yet started.
OLDEST_SCAN = 20
# How often an abort looks for the worker's confirmation.
ABORT_POLL_S = 0.05

# arq's enqueue_job in one round trip instead of three (WATCH, EXISTS,
# MULTI/EXEC): the same keys and values, as atomic as arq's transaction. A job
# id is refused while the job or its kept result exists. A job due now also
# wakes the idle workers of its queue (ARGV[5], the channel; empty for a
# deferred job, which they read within their idle poll interval); with pcall, a
# publish that Redis refuses (an ACL without the channel) leaves the job stored
# and the enqueue answered: the workers then read it within that interval.
ENQUEUE_SCRIPT = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then
  redis.pcall('publish', ARGV[5], ARGV[4])
end
return 1
"""


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

    async def _store(
        self, job_id: str, job: bytes, *, queue_name: str, now_ms: int, score: int
    ) -> None:
        # arq's expiry: a job not started within a day of its run time is dropped.
        expires_ms = score - now_ms + self._pool.expires_extra_ms
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, queue_name]
        channel = wake_channel(queue_name) if score <= now_ms else ""
        async with self._redis():
            added = await self._enqueue_script(
                keys=keys, args=[expires_ms, job, score, job_id, channel]
            )
        if not added:
            raise JobNotQueued(job_id)

    async def get_job_metadata(self, job_id: str, queue_name: str | None = None) -> JobMetadata:
        queue = self._queue(queue_name)
        result, job, score, in_progress = await self._read(job_id, queue)
        if result is not None:
            info = records.decode_result(job_id, result)
            return records.metadata(info, job_id, JobStatus.complete, info.queue_name)
        if job is None or score is None:
            # A job stays in its queue until it finishes: not in this one, not found.
            raise JobNotFound(job_id)
        status = _status(score, in_progress=bool(in_progress))
        return records.metadata(records.decode_job(job_id, job), job_id, status, queue)

    async def get_job_result(self, job_id: str, queue_name: str | None = None) -> JobResult:
        result, job, score, _ = await self._read(job_id, self._queue(queue_name))
        if result is not None:
            return records.result(records.decode_result(job_id, result), job_id)
        if job is None or score is None:
            raise JobNotFound(job_id)
        records.decode_job(job_id, job)  # a job this app wrote, or not found
        raise JobResultUnavailable(job_id)

    async def abort_job(
        self, job_id: str, queue_name: str | None = None, *, timeout: float = ABORT_TIMEOUT_S
    ) -> AbortResult:
        queue = self._queue(queue_name)
        if await self._remove_waiting(job_id, queue):
            return AbortResult.removed
        result, job, score, _ = await self._read(job_id, queue)
        if result is not None:
            records.decode_result(job_id, result)  # a result of ours, or not found
            raise JobFinished(job_id)
        if job is None or score is None:
            raise JobNotFound(job_id)
        records.decode_job(job_id, job)  # a job of ours, or not found
        # Running: ask the worker (allow_abort_jobs=True) to cancel it, wake it so it
        # reads the request now, and wait for its result as arq's Job.abort does.
        async with self._redis(), self._pool.pipeline(transaction=False) as pipe:
            pipe.zadd(abort_jobs_ss, {job_id: timestamp_ms()})
            pipe.publish(wake_channel(queue), job_id)
            # A refused publish (ACL) only costs the wake-up: the request is stored.
            replies = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise QueueUnavailable(replies[0])
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with self._redis():
                raw = await self._pool.get(result_key_prefix + job_id)
            if raw is not None:
                info = records.decode_result(job_id, raw)
                if not info.success and isinstance(info.result, asyncio.CancelledError):
                    return AbortResult.cancelled
                # It ended before the worker saw the request: drop the request, or it
                # would cancel the next job that takes this id.
                async with self._redis():
                    await self._pool.zrem(abort_jobs_ss, job_id)
                raise JobFinished(job_id)
            if asyncio.get_running_loop().time() >= deadline:
                return AbortResult.requested
            await asyncio.sleep(ABORT_POLL_S)

    async def stats(self, queue_name: str | None = None) -> QueueStats:
        queue = self._queue(queue_name)
        now_ms = timestamp_ms()
        async with self._redis(), self._pool.pipeline(transaction=False) as pipe:
            pipe.zcount(queue, "-inf", now_ms)
            pipe.zcount(queue, f"({now_ms}", "+inf")
            pipe.zrangebyscore(queue, "-inf", now_ms, start=0, num=OLDEST_SCAN, withscores=True)
            pipe.pttl(queue + health_check_key_suffix)
            ready, deferred, oldest, ttl_ms = await pipe.execute()
        oldest_ready_age_s = 0.0
        if oldest:
            # Running jobs stay in the queue: the oldest waiting one is the first not started.
            async with self._redis(), self._pool.pipeline(transaction=False) as pipe:
                for job_id, _ in oldest:
                    pipe.exists(in_progress_key_prefix + job_id.decode())
                started = await pipe.execute()
            waiting = [
                score for (_, score), running in zip(oldest, started, strict=True) if not running
            ]
            if waiting:
                oldest_ready_age_s = max(0.0, (now_ms - waiting[0]) / 1000)
        ttl_s = ttl_ms / 1000 if ttl_ms >= 0 else None
        return QueueStats(ready, deferred, oldest_ready_age_s, ttl_s)

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
            raw = await pipe.get(job_key_prefix + job_id)
            if raw is not None:
                records.decode_job(job_id, raw)  # leaves a job this app did not write alone
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.zrem(queue, job_id)
            pipe.delete(job_key_prefix + job_id, retry_key_prefix + job_id)
            # A worker claims a job in a transaction that WATCHes this key: writing it
            # makes a worker that read the queue before us back off. Deleted in the same
            # transaction, so nothing is left to block the next job with this id.
            pipe.set(in_progress_key, b"aborted")
            pipe.delete(in_progress_key)
            try:
                await pipe.execute()
            except WatchError:
                return False
        return True


def _status(score: float, *, in_progress: bool) -> JobStatus:
    if in_progress:
        return JobStatus.in_progress
    return JobStatus.deferred if score > timestamp_ms() else JobStatus.queued
