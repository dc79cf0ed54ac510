"""saq with its Redis queue: `saq peer_saq.settings`, one worker process.

Tuned: `concurrency` 100 (arq's max_jobs in the generated worker; saq's default is 10):
each of the 100 slots waits on its own blocking BLMOVE, so a job starts as soon as it is
queued. Producers: asyncio tasks sharing one `Queue` (one connection pool).
"""

from __future__ import annotations

import os
import time
from typing import Any

from probe import STARTED_KEY, ListSystem
from redis.asyncio import Redis
from saq import Queue

CONCURRENCY = 100
started = Redis.from_url(os.environ["BENCH_REDIS_URL"])


async def noop(ctx: dict[str, Any]) -> None:
    await started.rpush(STARTED_KEY, repr(time.time()))


settings = {
    "queue": Queue.from_url(os.environ["BENCH_REDIS_URL"]),
    "functions": [noop],
    "concurrency": CONCURRENCY,
}


class System(ListSystem):
    description = f"saq worker, 1 process, concurrency {CONCURRENCY} (blocking BLMOVE per slot)"
    worker_argv = ("saq", "peer_saq.settings", "--workers", "1")

    async def connect(self) -> None:
        self.queue = Queue.from_url(self.redis_url)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self) -> str:
        job = await self.queue.enqueue("noop")
        assert job is not None
        return str(job.key)
