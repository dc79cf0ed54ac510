"""taskiq with taskiq-redis's RedisStreamBroker (at-least-once, XREADGROUP with acks).

`taskiq worker peer_taskiq:broker --workers 1 --max-async-tasks 100`: one worker child
process (taskiq's parent process only supervises it), 100 jobs at a time (arq's max_jobs
in the generated worker), no result backend. Producers: asyncio tasks on one broker.
"""

from __future__ import annotations

import os
import time

from probe import STARTED_KEY, ListSystem
from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

MAX_ASYNC_TASKS = 100
broker = RedisStreamBroker(os.environ["BENCH_REDIS_URL"])
started = Redis.from_url(os.environ["BENCH_REDIS_URL"])


@broker.task(task_name="noop")
async def noop() -> None:
    await started.rpush(STARTED_KEY, repr(time.time()))


class System(ListSystem):
    description = (
        f"taskiq worker with taskiq-redis RedisStreamBroker, 1 worker process,"
        f" --max-async-tasks {MAX_ASYNC_TASKS}, no result backend"
    )
    worker_argv = (
        "taskiq", "worker", "peer_taskiq:broker", "--workers", "1",
        "--max-async-tasks", str(MAX_ASYNC_TASKS), "--log-level", "WARNING",
    )  # fmt: skip

    async def connect(self) -> None:
        await broker.startup()

    async def close(self) -> None:
        await broker.shutdown()

    async def enqueue(self) -> str:
        return str((await noop.kiq()).task_id)
