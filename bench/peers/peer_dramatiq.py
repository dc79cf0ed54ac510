"""Dramatiq with its Redis broker: `dramatiq peer_dramatiq --processes 1 --threads 8`.

Tuned for one process: one worker process (dramatiq's parent only supervises it) with 8
worker threads (dramatiq's default), default prefetch (2 x threads); the broker's
consumers poll Redis (dramatiq's Redis broker has no blocking read). Producers: threads
calling `send` (Dramatiq's client is synchronous).
"""

from __future__ import annotations

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from probe import STARTED_KEY, ThreadedSystem

THREADS = 8
dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))
started = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@dramatiq.actor(actor_name="noop")
def noop() -> None:
    started.rpush(STARTED_KEY, repr(time.time()))


class System(ThreadedSystem):
    description = f"dramatiq worker, 1 process, {THREADS} threads, Redis broker, default prefetch"
    worker_argv = ("dramatiq", "peer_dramatiq", "--processes", "1", "--threads", str(THREADS))

    def enqueue_sync(self) -> str:
        return str(noop.send().message_id)
