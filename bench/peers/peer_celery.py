"""Celery with the Redis broker: `celery -A peer_celery worker --pool solo`, one process.

Tuned for one process: the solo pool runs tasks in the worker's own process (the default
prefork pool would fork children), `--prefetch-multiplier 100` so it reserves up to 100
messages (as the generated worker's max_jobs), no result backend (`ignore_result`).
Producers: threads calling `apply_async` (Celery's client is synchronous).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery
from probe import STARTED_KEY, ThreadedSystem

PREFETCH = 100
app = Celery("peer_celery", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True
)
started = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@app.task(name="noop")
def noop() -> None:
    started.rpush(STARTED_KEY, repr(time.time()))


class System(ThreadedSystem):
    description = f"celery worker, solo pool (1 process), --prefetch-multiplier {PREFETCH}, no result backend"
    worker_argv = (
        "celery", "-A", "peer_celery", "worker", "--pool", "solo", "--concurrency", "1",
        "--prefetch-multiplier", str(PREFETCH), "--loglevel", "WARNING", "--without-heartbeat",
        "--without-gossip", "--without-mingle",
    )  # fmt: skip

    def enqueue_sync(self) -> str:
        return str(noop.apply_async().id)
