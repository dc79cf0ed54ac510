"""arq, in the generated project's venv: the generated worker and bare arq workers.

Variants (the names of bench/drain.py): `template` enqueues with the project's own
client, `RedisArqQueue` (one Lua call a job, JSON), and runs the Dockerfile's CMD;
`bare_tuned` and `bare_defaults` enqueue with arq's `ArqRedis.enqueue_job` (pickle) and
run bench/in_venv/bare_worker.py. The harness passes the worker's argv in
BENCH_ARQ_WORKER (JSON), its serializer module in BENCH_ARQ_SERIALIZER ("" for pickle)
and the project's package in BENCH_PACKAGE.

The job is arq's `ping`. For drain, a job's start is the `start_time` the worker stores
in its result (milliseconds: enough over thousands of jobs). For pickup latency, whose
figures are a few milliseconds, it is the moment the probe hears (keyspace notification)
of the INCR of the job's `arq:retry:<id>` counter, which arq's `run_job` sends in the
pipeline that fetches the job right before calling it: microsecond precision, no Redis
polling beside the worker, and the notification's delivery counts against arq.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import time
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name, result_key_prefix, retry_key_prefix
from drain_probe import read_results, serializers, wait_for_results
from probe import ListSystem
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

DESCRIPTIONS = {
    "template": (
        "the generated worker as its Dockerfile runs it (its WorkerSettings: max_jobs 100, an idle"
        " worker waits for the enqueue's wake-up signal, reading at least every 0.5 s), jobs"
        " enqueued with the project's RedisArqQueue, which sends the signal"
    ),
    "bare_tuned": (
        "bare arq WorkerSettings with the generated worker's concurrency settings, polling every"
        " 0.05 s (the generated worker's poll_delay without its wake-up)"
    ),
    "bare_defaults": "bare arq WorkerSettings with arq's defaults (poll_delay 0.5 s, max_jobs 10)",
}


class System(ListSystem):
    producers = "asyncio tasks"

    def __init__(self, redis_url: str, variant: str | None) -> None:
        super().__init__(redis_url, variant)
        if variant not in DESCRIPTIONS:
            raise ValueError(f"peer_arq variant must be one of {', '.join(DESCRIPTIONS)}, got {variant!r}")
        self.description = DESCRIPTIONS[variant]
        self.worker_argv = tuple(json.loads(os.environ["BENCH_ARQ_WORKER"]))
        self.serialize, self.deserialize = serializers(os.environ.get("BENCH_ARQ_SERIALIZER") or None)
        self.job_ids: list[str] = []
        self.pool: ArqRedis | None = None
        self.queue: Any = None
        self.notifications: PubSub | None = None
        # The server's notify-keyspace-events before start_latency set it, restored by
        # close(): the systems measured after this one on the same Redis would pay for
        # the notifications otherwise.
        self.keyspace_events: str | None = None

    async def connect(self) -> None:
        settings = RedisSettings.from_dsn(self.redis_url)
        self.pool = await create_pool(
            settings, job_serializer=self.serialize, job_deserializer=self.deserialize
        )
        if self.variant == "template":
            package = os.environ["BENCH_PACKAGE"]
            config = importlib.import_module(f"{package}.config").get_config()
            client = importlib.import_module(f"{package}.queue").RedisArqQueue
            self.queue = client.from_settings(
                config.arq_redis_settings, default_queue_name=config.arq_queue_name
            )

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.aclose()
        if self.notifications is not None:
            await self.notifications.aclose()
        if self.pool is not None:
            try:
                if self.keyspace_events is not None:
                    await self.pool.config_set("notify-keyspace-events", self.keyspace_events)
            finally:
                await self.pool.aclose()

    async def enqueue(self) -> str:
        if self.queue is not None:
            job_id: str = (await self.queue.enqueue("ping", "bench")).id
        else:
            assert self.pool is not None
            job = await self.pool.enqueue_job("ping", "bench")
            if job is None:
                raise RuntimeError("arq refused a job with a fresh id")
            job_id = job.job_id
        self.job_ids.append(job_id)
        return job_id

    async def started_times(
        self, redis: Redis, count: int, worker: subprocess.Popen[bytes], timeout: float
    ) -> tuple[float, float]:
        """The first job's start and the last one's finish, as the worker stamped them."""
        assert self.pool is not None and self.pool.default_queue_name == default_queue_name
        keys = [result_key_prefix + job_id for job_id in self.job_ids]
        await wait_for_results(self.pool, keys, [worker], timeout)
        results = await read_results(self.pool, keys, self.deserialize)
        if failed := [result for result in results if not result.success]:
            raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0].result!r}")
        first = min(result.start_time for result in results).timestamp()
        return first, max(result.finish_time for result in results).timestamp()

    async def start_latency(self, redis: Redis) -> float:
        db = redis.connection_pool.connection_kwargs.get("db", 0)
        if self.notifications is None:
            assert self.pool is not None
            config = await self.pool.config_get("notify-keyspace-events")
            self.keyspace_events = config["notify-keyspace-events"]
            await self.pool.config_set("notify-keyspace-events", "K$")
            self.notifications = redis.pubsub()
            await self.notifications.psubscribe(f"__keyspace@{db}__:{retry_key_prefix}*")
        before = time.time()
        job_id = await self.enqueue()
        channel = f"__keyspace@{db}__:{retry_key_prefix}{job_id}".encode()
        deadline = time.monotonic() + 30
        while True:
            message = await self.notifications.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["channel"] == channel and message["data"] == b"incrby":
                return time.time() - before
            if time.monotonic() > deadline:
                raise RuntimeError("a job did not start within 30 s of its enqueue")
