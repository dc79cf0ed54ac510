"""Measure one queue system with one worker process; runs in that system's own venv.

    python -m probe MODULE[:VARIANT] --redis-url URL --jobs N --producers P
        --latency-jobs L --idle-seconds S --log FILE

MODULE (peer_saq, peer_arq:project, ...) defines `System`, a subclass of `ListSystem`
(below). In order, on an emptied Redis database, and printing JSON:

1. enqueue: P producers (asyncio tasks, or threads for a sync client) enqueue N no-op
   jobs, no worker running; jobs/s over the whole batch (skipped when N is 0);
2. drain: one worker process starts and runs those N jobs; jobs/s from the first job's
   start to the last one's, as the jobs stamped them;
3. idle: with the worker idle for S seconds, the Redis commands/s it caused (the delta of
   `INFO commandstats`, this probe's INFO calls left out) and the CPU of its process tree
   as a share of one core;
4. latency: L jobs, one at a time, each after a random 10-50 ms gap with the worker idle:
   the time from just before the enqueue call to the job's own start stamp.

A peer's no-op job stamps its start with `time.time()` and RPUSHes it to `bench:started`
(one Redis write a job, as arq's stored result is); arq's jobs are arq's own `ping`,
whose start the worker stamps (in milliseconds) in the result it stores, and whose
pickup the probe times by the keyspace notification of the job's try counter (see
peer_arq.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procstats import command_calls, percentile, process_tree_cpu_seconds
from redis.asyncio import Redis

STARTED_KEY = "bench:started"
GAP_S = (0.010, 0.050)


class ListSystem:
    """A queue whose no-op job RPUSHes its start time to STARTED_KEY."""

    description = ""
    producers = "asyncio tasks"
    worker_argv: tuple[str, ...] = ()

    def __init__(self, redis_url: str, variant: str | None) -> None:
        self.redis_url = redis_url
        self.variant = variant
        self.stale_starts = 0  # see start_latency

    async def connect(self) -> None:
        """Open the producer's client."""

    async def close(self) -> None:
        """Close it."""

    async def enqueue(self) -> str:
        """Enqueue one no-op job; its id."""
        raise NotImplementedError

    async def enqueue_many(self, count: int, producers: int) -> None:
        """`count` jobs from `producers` asyncio tasks."""

        async def produce(share: int) -> None:
            for _ in range(share):
                await self.enqueue()

        await asyncio.gather(*(produce(share) for share in shares(count, producers)))

    async def started_times(
        self, redis: Redis, count: int, worker: subprocess.Popen[bytes], timeout: float
    ) -> tuple[float, float]:
        """Wait until `count` jobs started; the first and last start (s)."""
        await wait_until(lambda: redis.llen(STARTED_KEY), count, worker, timeout)
        stamps = [float(stamp) for stamp in await redis.lrange(STARTED_KEY, 0, -1)]
        await redis.delete(STARTED_KEY)
        return min(stamps), max(stamps)

    async def start_latency(self, redis: Redis) -> float:
        """Enqueue one job and wait for its start: seconds from just before the enqueue.

        A start stamped before the enqueue is an earlier job's (one run again, late) and is
        counted in `stale_starts`, not read as this job's."""
        before = time.time()
        await self.enqueue()
        while True:
            reply = await redis.blpop([STARTED_KEY], timeout=30)
            if reply is None:
                raise RuntimeError("a job did not start within 30 s of its enqueue")
            started = float(reply[1])
            if started >= before:
                return started - before
            self.stale_starts += 1


class ThreadedSystem(ListSystem):
    """A system with a blocking client: producers are threads."""

    producers = "threads"

    def enqueue_sync(self) -> str:
        raise NotImplementedError

    async def enqueue(self) -> str:
        # One job at a time (latency): called directly, nothing else runs meanwhile.
        return self.enqueue_sync()

    async def enqueue_many(self, count: int, producers: int) -> None:
        errors: list[BaseException] = []

        def produce(share: int) -> None:
            try:
                for _ in range(share):
                    self.enqueue_sync()
            except BaseException as error:  # noqa: BLE001 - re-raised below
                errors.append(error)

        threads = [threading.Thread(target=produce, args=(share,)) for share in shares(count, producers)]
        for thread in threads:
            thread.start()
        await asyncio.to_thread(lambda: [thread.join() for thread in threads])
        if errors:
            raise errors[0]


def shares(count: int, producers: int) -> list[int]:
    """`count` split between `producers` as evenly as possible."""
    return [count // producers + (1 if i < count % producers else 0) for i in range(producers)]


async def wait_until(
    measure: Callable[[], Any], count: int, worker: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while await measure() < count:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} jobs ran within {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def command_count(redis: Redis) -> int:
    """Redis commands run so far, INFO left out (the probe's own)."""
    return sum(command_calls(await redis.info("commandstats")).values())


async def idle_cost(redis: Redis, worker: subprocess.Popen[bytes], seconds: float) -> dict[str, float]:
    calls, cpu, started = await command_count(redis), process_tree_cpu_seconds(worker.pid), time.monotonic()
    await asyncio.sleep(seconds)
    calls_after, cpu_after = await command_count(redis), process_tree_cpu_seconds(worker.pid)
    elapsed = time.monotonic() - started
    if worker.poll() is not None:
        raise RuntimeError(f"the worker exited with {worker.returncode} while idle")
    return {
        "idle_redis_commands_per_s": (calls_after - calls) / elapsed,
        "idle_cpu": (cpu_after - cpu) / elapsed,
    }


def load_system(spec: str, redis_url: str) -> ListSystem:
    module, _, variant = spec.partition(":")
    system: ListSystem = importlib.import_module(module).System(redis_url, variant or None)
    return system


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    system = load_system(args.system, args.redis_url)
    redis = Redis.from_url(args.redis_url)
    results: dict[str, Any] = {"description": system.description, "producers": system.producers}
    await redis.flushdb()
    await redis.config_resetstat()
    await system.connect()
    try:
        if args.jobs:
            started = time.monotonic()
            await system.enqueue_many(args.jobs, args.producers)
            results["enqueue_jobs_per_s"] = args.jobs / (time.monotonic() - started)
        with Path(args.log).open("ab") as log:  # noqa: ASYNC230 - nothing else runs yet
            worker = subprocess.Popen(list(system.worker_argv), stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        try:
            if args.jobs:
                first, last = await system.started_times(redis, args.jobs, worker, 60 + args.jobs / 20)
                results["drain_jobs_per_s"] = args.jobs / max(last - first, 0.001)
            else:  # a first job, so the worker is up before it is measured idle
                await system.start_latency(redis)
            await asyncio.sleep(1)  # let the drain's last work settle
            results |= await idle_cost(redis, worker, args.idle_seconds)
            # Starts stamped after the drain's count was reached: jobs run twice (or a
            # worker's own late work). Left in the list, the latency part would read them
            # as its own jobs' starts (seen for saq: a p50 of -81 ms, and of -23 ms from
            # stamps that came later still, which start_latency now sets aside too).
            results["starts_beyond_jobs"] = await redis.llen(STARTED_KEY)
            await redis.delete(STARTED_KEY)
            latencies = []
            for _ in range(args.latency_jobs):
                await asyncio.sleep(random.uniform(*GAP_S))
                latencies.append(await system.start_latency(redis))
            results["starts_beyond_jobs"] += system.stale_starts
        except RuntimeError as error:
            tail = Path(args.log).read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError("\n".join([str(error), "worker log:", *tail])) from None
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    finally:
        await system.close()
        await redis.aclose()
    if latencies:
        milliseconds = [latency * 1000 for latency in latencies]
        results |= {
            "latency_p50_ms": statistics.median(milliseconds),
            "latency_p99_ms": percentile(milliseconds, 0.99),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", help="module[:variant] defining System")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--jobs", type=int, default=0, help="enqueued, then drained; 0 for neither")
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    if args.producers < 1 or args.jobs < 0 or args.latency_jobs < 1 or args.idle_seconds <= 0:
        parser.error("--producers and --latency-jobs must be at least 1, --idle-seconds above 0")
    os.environ["BENCH_REDIS_URL"] = args.redis_url  # read by the worker modules
    print(json.dumps(asyncio.run(measure(args))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
