"""Measure how fast worker processes drain a queue of no-op (or `sync_invoice`) jobs.

Run with the generated project's venv python:

    drain_probe.py tuned-settings <module.WorkerSettings>
    drain_probe.py drain --redis-url URL --jobs N [--serializer module] [--log F]
        [--workers K] [--function ping|sync_invoice] [--wake-subscribers] -- <worker argv>

`drain` empties the Redis database, enqueues N jobs deferred far ahead, starts K
workers with the given argv, waits until each is connected to Redis (and, with
--wake-subscribers, subscribed to its wake-up channel), makes every job due at once
(and signals the wake-up channel), waits until every job has a result, stops the
workers with SIGTERM, and prints JSON. Throughput is N over the span between the first job's
start and the last job's finish, both stamped by the workers in arq's results,
so neither the workers' import time nor this probe's polling counts, and all K
workers take the jobs from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name, result_key_prefix
from arq.jobs import JobResult, deserialize_result
from arq.utils import import_string, timestamp_ms
from procstats import cpu_seconds

# Bare arq's tuned poll pace (see tuned_settings).
TUNED_POLL_DELAY_S = 0.05
ENQUEUE_BATCH = 200
READ_BATCH = 1000
# Jobs wait this far ahead until the workers are up; then they are all made due.
HELD_S = 3600
# After the last worker connected: time for its startup hook before the jobs are due.
START_MARGIN_S = 0.5
# The pub/sub channel the generated worker waits on when idle: its queue's name + ":wake"
# (`wake_channel` of the generated project's queue module). Spelled out, not imported:
# this probe also runs bare arq, and stays apart from the project's module layout.
WAKE_CHANNEL = default_queue_name + ":wake"

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]


def tuned_settings(path: str) -> dict[str, Any]:
    """The throughput settings of a WorkerSettings class, as BareTuned reads them, and
    what else of it changes arq's own work a job, as BareSame reads it.

    The generated worker's `poll_delay` is short (0.01 s): with its wake-up, a worker that
    finds nothing to start waits for a signal instead. Bare arq has no such wait and would
    poll at that pace, so it polls every TUNED_POLL_DELAY_S, the pace the generated worker
    polled at before its wake-up.
    """
    settings = import_string(path)  # imported as arq's CLI imports it: the loop policy too
    names = ("poll_delay", "max_jobs", "queue_read_limit", "job_timeout", "keep_result")
    tuned = {name: getattr(settings, name) for name in names}
    tuned["poll_delay"] = max(tuned["poll_delay"], TUNED_POLL_DELAY_S)
    tuned["allow_abort_jobs"] = bool(getattr(settings, "allow_abort_jobs", False))
    loop = asyncio.new_event_loop()
    tuned["event_loop"] = type(loop).__module__.partition(".")[0]
    loop.close()
    return tuned


def serializers(module: str | None) -> tuple[Serializer | None, Deserializer | None]:
    if module is None:
        return None, None  # arq's pickle
    loaded = importlib.import_module(module)
    return loaded.serialize, loaded.deserialize


def job_args(function: str, job_id: str) -> tuple[str, ...]:
    """`ping` returns a constant; `sync_invoice` fetches its invoice id from the upstream."""
    return ("drain",) if function == "ping" else (job_id,)


async def enqueue(pool: ArqRedis, job_ids: list[str], function: str) -> None:
    for start in range(0, len(job_ids), ENQUEUE_BATCH):
        batch = job_ids[start : start + ENQUEUE_BATCH]
        jobs = await asyncio.gather(
            *(pool.enqueue_job(function, *job_args(function, i), _job_id=i, _defer_by=HELD_S) for i in batch)
        )
        if any(job is None for job in jobs):
            raise RuntimeError("a benchmark job was not enqueued: the database was not empty")


async def client_ids(pool: ArqRedis) -> set[int]:
    return {int(client["id"]) for client in await pool.client_list()}


async def wake_subscribers(pool: ArqRedis) -> int:
    ((_, count),) = await pool.pubsub_numsub(WAKE_CHANNEL)
    return int(count)


async def wait_for_workers(
    pool: ArqRedis,
    before: set[int],
    workers: list[subprocess.Popen[bytes]],
    subscribed: bool,
    timeout: float,
) -> None:
    """Until every worker is up: connected and, with `subscribed`, waiting for wake-up signals.

    Counted from outside (CLIENT LIST names no process; the workers name no connection):
    a bare arq worker holds one connection from its start-up on, so K new connections
    mean K workers (this probe's own connection was open before `before`). The generated
    worker holds two once it has read its queue, its pool's and its subscriber's on
    WAKE_CHANNEL (opened at that first read): there K new connections may be K/2 workers.
    K subscribers to WAKE_CHANNEL are K workers that have read their queue, with 2K
    connections.
    """
    per_worker = 2 if subscribed else 1
    deadline = time.monotonic() + timeout
    while (
        len(await client_ids(pool) - before) < per_worker * len(workers)
        or subscribed
        and await wake_subscribers(pool) < len(workers)
    ):
        if any(worker.poll() is not None for worker in workers):
            raise RuntimeError("a worker exited before it connected")
        if time.monotonic() > deadline:
            what = "subscribed to " + WAKE_CHANNEL if subscribed else "connected"
            raise RuntimeError(f"{len(workers)} workers were not all {what} in {timeout:.0f} s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(START_MARGIN_S)


async def redis_cpu_seconds(pool: ArqRedis) -> float:
    info = await pool.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def make_due(pool: ArqRedis, job_ids: list[str]) -> None:
    """Move every held job to now in the queue (arq reads a job's run time from its score)."""
    now = timestamp_ms()
    await pool.zadd(default_queue_name, dict.fromkeys(job_ids, now), xx=True)
    # The generated worker, idle, reads its queue on a wake-up signal or every
    # idle_poll_interval (0.5 s): signal it, as its own enqueue does. No one listens
    # to this channel in bare arq, where PUBLISH costs a round trip and nothing else.
    await pool.publish(WAKE_CHANNEL, "drain")


async def wait_for_results(
    pool: ArqRedis, keys: list[str], workers: list[subprocess.Popen[bytes]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await pool.zcard(default_queue_name) == 0 and await pool.exists(*keys) == len(keys):
            return
        if exited := [worker.returncode for worker in workers if worker.poll() is not None]:
            raise RuntimeError(f"a worker exited with {exited[0]} before draining")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not drain {len(keys)} jobs in {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def read_results(pool: ArqRedis, keys: list[str], deserialize: Deserializer | None) -> list[JobResult]:
    results = []
    for start in range(0, len(keys), READ_BATCH):
        for raw in await pool.mget(keys[start : start + READ_BATCH]):
            results.append(deserialize_result(raw, deserializer=deserialize))
    return results


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    serialize, deserialize = serializers(args.serializer)
    pool = await create_pool(
        RedisSettings.from_dsn(args.redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    try:
        await pool.flushdb()
        job_ids = [f"drain-{i}" for i in range(args.jobs)]
        await enqueue(pool, job_ids, args.function)
        keys = [result_key_prefix + job_id for job_id in job_ids]
        log = Path(args.log)
        before = await client_ids(pool)
        # Blocking calls are fine here: nothing else runs on this loop.
        with log.open("ab") as output:  # noqa: ASYNC230
            workers = [
                subprocess.Popen(args.worker, stdout=output, stderr=subprocess.STDOUT)  # noqa: ASYNC220
                for _ in range(args.workers)
            ]
            try:
                await wait_for_workers(pool, before, workers, args.wake_subscribers, timeout=60)
                cpu = (sum(cpu_seconds(w.pid) for w in workers), await redis_cpu_seconds(pool))
                due = time.monotonic()
                await make_due(pool, job_ids)
                await wait_for_results(pool, keys, workers, timeout=60 + args.jobs / 20)
                wall = time.monotonic() - due
                workers_cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu[0]
                redis_cpu = await redis_cpu_seconds(pool) - cpu[1]
            except RuntimeError as error:
                tail = log.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError("\n".join([str(error), "worker log:", *tail])) from None
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(timeout=60)
        results = await read_results(pool, keys, deserialize)
    finally:
        await pool.aclose()
    failed = [r for r in results if not r.success]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0].result!r}")
    span = (max(r.finish_time for r in results) - min(r.start_time for r in results)).total_seconds()
    span = max(span, 0.001)  # arq stamps in milliseconds
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "function": args.function,
        "seconds": span,
        "jobs_per_s": args.jobs / span,
        # Cores busy from the jobs being made due until this probe saw the last result.
        "workers_cores": workers_cpu / wall,
        "redis_cores": redis_cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tuned = commands.add_parser("tuned-settings")
    tuned.add_argument("settings")
    run = commands.add_parser("drain")
    run.add_argument("--redis-url", required=True)
    run.add_argument("--jobs", type=int, required=True)
    run.add_argument("--serializer", help="module with serialize/deserialize; default pickle")
    run.add_argument("--log", required=True)
    run.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    run.add_argument("--function", choices=("ping", "sync_invoice"), default="ping")
    run.add_argument(
        "--wake-subscribers",
        action="store_true",
        help=f"the workers subscribe to {WAKE_CHANNEL} when they poll (the generated worker)",
    )
    run.add_argument("worker", nargs="+")
    args = parser.parse_args()
    if args.command == "tuned-settings":
        print(json.dumps(tuned_settings(args.settings)))
    else:
        print(json.dumps(asyncio.run(drain(args))))


if __name__ == "__main__":
    main()
