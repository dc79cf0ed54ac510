"""streaq (Redis streams, coredis client): `streaq run peer_streaq:worker`, one process.

Tuned: `concurrency` 100 (arq's max_jobs in the generated worker; streaq's default is 16),
default prefetch. Producers: asyncio tasks inside the worker object's client context.
"""

from __future__ import annotations

import os
import time

from probe import STARTED_KEY, ListSystem
from redis.asyncio import Redis
from streaq import Worker

CONCURRENCY = 100
worker = Worker(redis_url=os.environ["BENCH_REDIS_URL"], concurrency=CONCURRENCY)
started = Redis.from_url(os.environ["BENCH_REDIS_URL"])


@worker.task
async def noop() -> None:
    await started.rpush(STARTED_KEY, repr(time.time()))


class System(ListSystem):
    description = f"streaq worker, 1 process, concurrency {CONCURRENCY}"
    worker_argv = ("streaq", "run", "peer_streaq:worker")

    async def connect(self) -> None:
        await worker.__aenter__()

    async def close(self) -> None:
        await worker.__aexit__(None, None, None)

    async def enqueue(self) -> str:
        return str((await noop.enqueue()).id)
