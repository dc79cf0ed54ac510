"""Idle workers woken by the enqueue, on real Redis with real arq workers (tox -e integration).

The workers wait up to a long idle poll interval, so a job that starts well before it
was started by a wake-up signal; a job from a client that sends none must still start
within the interval."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from arq import func
from arq.connections import create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.jobs import JobStatus
from arq.worker import Worker

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.queue import AbortResult, RedisArqQueue
from {{ cookiecutter.package_name }}.redis_pool import wake_channel
from {{ cookiecutter.package_name }}.serialization import deserialize, serialize
from {{ cookiecutter.package_name }}.worker.wakeup import WakeUpRedis, wake_up_pool

from ..conftest import sync_client

pytestmark = pytest.mark.integration

LONG_INTERVAL_S = 5.0
# A woken worker starts a job in milliseconds; this bound only has to be far below
# the interval on a busy test machine.
WOKEN_WITHIN_S = 1.0


class Runs:
    """What the test jobs saw: each start (job id, worker, time) and any overlap."""

    def __init__(self) -> None:
        self.started: dict[str, list[tuple[int, float]]] = {}
        self.running: set[str] = set()
        self.overlaps: list[str] = []
        self.arrived = asyncio.Event()

    async def record(self, ctx: dict[str, Any], seconds: float = 0.0) -> None:
        job_id: str = ctx["job_id"]
        self.started.setdefault(job_id, []).append((ctx["worker"], time.monotonic()))
        if job_id in self.running:
            self.overlaps.append(job_id)
        self.running.add(job_id)
        self.arrived.set()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.running.discard(job_id)

    async def started_at(self, job_id: str, timeout: float) -> float:
        async with asyncio.timeout(timeout):
            while job_id not in self.started:
                self.arrived.clear()
                await self.arrived.wait()
        return self.started[job_id][0][1]


@pytest.fixture
def queue_name() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.fixture
async def queue(redis_config: Config, queue_name: str) -> AsyncIterator[RedisArqQueue]:
    settings = redis_config.arq_redis_settings
    client = RedisArqQueue.from_settings(settings, default_queue_name=queue_name)
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running_workers(
    config: Config, queue_name: str, runs: Runs, *, count: int = 1, interval: float
) -> AsyncIterator[list[Worker]]:
    """``count`` arq workers on ``queue_name``, each on its own wake-up pool, subscribed."""
    workers = [
        Worker(
            functions=[func(runs.record, name="record")],
            redis_pool=wake_up_pool(
                config.arq_redis_settings, queue_name=queue_name, idle_poll_interval=interval
            ),
            queue_name=queue_name,
            ctx={"worker": number},
            handle_signals=False,
            poll_delay=0.01,  # as WorkerSettings has it
            allow_abort_jobs=True,
            keep_result=5,
            job_serializer=serialize,
            job_deserializer=deserialize,
        )
        for number in range(count)
    ]
    tasks = [asyncio.create_task(worker.async_run()) for worker in workers]
    client = redis.asyncio.Redis.from_pool(
        wake_up_pool(
            config.arq_redis_settings, queue_name=queue_name, idle_poll_interval=0
        ).connection_pool
    )
    try:
        for _ in range(1000):
            if (await client.pubsub_numsub(wake_channel(queue_name)))[0][1] == count:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"{count} workers did not subscribe in 10 s")
        await asyncio.sleep(0.2)  # each has read its queue once more, on subscribing
        yield workers
    finally:
        # arq counts a job complete before it has stored its result: let every job task
        # end before the workers close, or close() catches one mid-write.
        jobs = [job for worker in workers for job in worker.tasks.values()]
        await asyncio.wait(jobs, timeout=10) if jobs else None
        for worker in workers:
            await worker.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()


async def test_an_enqueue_wakes_an_idle_worker(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    runs = Runs()
    async with running_workers(redis_config, queue_name, runs, interval=LONG_INTERVAL_S):
        latencies = []
        for _ in range(10):
            await asyncio.sleep(0.05)  # idle again: the last job's end was read
            enqueued = time.monotonic()
            job = await queue.enqueue("record")
            latencies.append(await runs.started_at(job.id, LONG_INTERVAL_S * 2) - enqueued)
    assert max(latencies) < WOKEN_WITHIN_S, latencies
    assert statistics.median(latencies) < 0.1, latencies


async def test_a_job_enqueued_without_a_signal_starts_within_the_interval(
    redis_config: Config, queue_name: str
) -> None:
    """arq's own enqueue_job publishes nothing: the worker reads it at its next poll."""
    interval = 1.0
    runs = Runs()
    arq_client = await create_pool(
        redis_config.arq_redis_settings,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )
    job_ids = [f"plain-{uuid.uuid4().hex}" for _ in range(3)]
    try:
        async with running_workers(redis_config, queue_name, runs, interval=interval):
            for job_id in job_ids:
                enqueued = time.monotonic()
                assert await arq_client.enqueue_job("record", _job_id=job_id) is not None
                started = await runs.started_at(job_id, interval * 3)
                assert started - enqueued < interval + 0.5
    finally:
        keys = [prefix + i for i in job_ids for prefix in (job_key_prefix, result_key_prefix)]
        await arq_client.delete(queue_name, *keys)
        await arq_client.aclose()


async def test_a_deferred_job_starts_within_the_interval_of_its_time(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    interval = 0.5
    runs = Runs()
    async with running_workers(redis_config, queue_name, runs, interval=interval):
        enqueued = time.monotonic()
        job = await queue.enqueue("record", _defer_by=0.3)
        started = await runs.started_at(job.id, 5)
    assert 0.3 <= started - enqueued < 0.3 + interval + 0.5


async def test_one_signal_wakes_every_idle_worker_and_one_runs_the_job(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    runs = Runs()
    async with running_workers(
        redis_config, queue_name, runs, count=3, interval=LONG_INTERVAL_S
    ) as workers:
        pools = [worker.pool for worker in workers if isinstance(worker.pool, WakeUpRedis)]
        assert len(pools) == 3
        woken_before = [pool.wakeups for pool in pools]
        jobs = []
        for _ in range(10):
            enqueued = time.monotonic()
            job = await queue.enqueue("record", 0.02)
            jobs.append(job.id)
            assert await runs.started_at(job.id, LONG_INTERVAL_S * 2) - enqueued < WOKEN_WITHIN_S
            await asyncio.sleep(0.2)  # every worker idle again
        woken = [pool.wakeups - before for pool, before in zip(pools, woken_before, strict=True)]
    assert sorted(runs.started) == sorted(jobs)
    assert all(len(starts) == 1 for starts in runs.started.values()), runs.started
    # pub/sub reaches every worker; arq's claim gives the job to one.
    assert all(count >= len(jobs) for count in woken), woken


async def test_jobs_enqueued_at_once_run_once_each_on_several_workers(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    runs = Runs()
    async with running_workers(
        redis_config, queue_name, runs, count=3, interval=LONG_INTERVAL_S
    ) as workers:
        jobs = await asyncio.gather(*(queue.enqueue("record", 0.05) for _ in range(60)))
        for job in jobs:
            await runs.started_at(job.id, WOKEN_WITHIN_S * 3)
        for _ in range(400):  # arq has recorded every result (20 s on a slow machine)
            if sum(worker.jobs_complete for worker in workers) == len(jobs):
                break
            await asyncio.sleep(0.05)
    assert sorted(runs.started) == sorted(job.id for job in jobs)
    assert all(len(starts) == 1 for starts in runs.started.values()), runs.started
    assert runs.overlaps == []
    assert len({worker for starts in runs.started.values() for worker, _ in starts}) > 1


async def test_an_abort_wakes_the_worker_running_the_job(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    runs = Runs()
    async with running_workers(redis_config, queue_name, runs, interval=LONG_INTERVAL_S):
        job = await queue.enqueue("record", 60)
        await runs.started_at(job.id, WOKEN_WITHIN_S * 2)
        await asyncio.sleep(0.2)  # idle: its queue holds only the running job
        asked = time.monotonic()
        result = await queue.abort_job(job.id, timeout=LONG_INTERVAL_S - 1)
        took = time.monotonic() - asked
    assert result is AbortResult.cancelled
    assert took < WOKEN_WITHIN_S


async def test_an_idle_worker_reads_its_queue_once_an_interval(
    redis_config: Config, queue_name: str
) -> None:
    """The wait happens: without it arq would read every poll_delay (0.01 s here)."""
    runs = Runs()
    async with running_workers(redis_config, queue_name, runs, interval=0.5) as workers:
        (worker,) = workers
        polls = 0
        abort_check = worker._cancel_aborted_jobs

        async def counted() -> None:  # arq runs it once each poll iteration
            nonlocal polls
            polls += 1
            await abort_check()

        worker._cancel_aborted_jobs = counted  # type: ignore[method-assign]
        await asyncio.sleep(2.0)
    assert 2 <= polls <= 6, polls


async def test_running_jobs_are_not_claimed_again_while_the_worker_waits(
    redis_config: Config, queue_name: str, queue: RedisArqQueue
) -> None:
    """Running jobs stay in the queue: a worker that reads only those waits, and does not
    hand them to arq's claim (a WATCH and three more commands a job) every interval."""
    runs = Runs()
    admin = sync_client(redis_config)
    async with running_workers(redis_config, queue_name, runs, interval=0.2):
        # Five: below max_jobs (arq's 10 here), or arq would not read at all.
        jobs = await asyncio.gather(*(queue.enqueue("record", 3.0) for _ in range(5)))
        for job in jobs:
            await runs.started_at(job.id, WOKEN_WITHIN_S * 3)
        await asyncio.sleep(0.1)
        before = _watch_calls(admin)
        await asyncio.sleep(1.0)  # five intervals with five jobs running
        watches = _watch_calls(admin) - before
    admin.close()
    assert watches == 0


def _watch_calls(client: Any) -> int:
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    return stats.get("cmdstat_watch", {}).get("calls", 0)


async def test_a_refused_publish_costs_only_the_wake_up(
    redis_config: Config, queue_name: str
) -> None:
    """Redis 7 gives a new ACL user no pub/sub channels: the enqueue and the abort
    request must still be stored and answered (the workers then read within their
    interval), not fail after writing the job."""
    user, password = f"nochannels-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = sync_client(redis_config)
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", user, "reset", "on", f">{password}", "~*", "resetchannels", "+@all"
    )
    settings = dataclasses.replace(
        redis_config.arq_redis_settings, username=user, password=password
    )
    queue = RedisArqQueue.from_settings(settings, default_queue_name=queue_name)
    job_id = f"refused-{uuid.uuid4().hex}"
    try:
        job = await queue.enqueue("record", _job_id=job_id)
        assert (await queue.get_job_metadata(job.id)).status == JobStatus.queued
        # As if a worker had started it: the abort asks it to stop, and publishes.
        admin.set(in_progress_key_prefix + job.id, b"1", px=5000)
        assert await queue.abort_job(job.id, timeout=0.1) == AbortResult.requested
        assert admin.zscore(abort_jobs_ss, job.id) is not None
    finally:
        await queue.aclose()
        admin.delete(in_progress_key_prefix + job_id)
        admin.zrem(abort_jobs_ss, job_id)
        admin.execute_command("ACL", "DELUSER", user)  # type: ignore[no-untyped-call]
        admin.close()
