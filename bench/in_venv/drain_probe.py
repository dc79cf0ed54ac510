"""Measure how fast one worker process drains a queue of no-op jobs.

Run with the generated project's venv python:

    drain_probe.py tuned-settings <module.WorkerSettings>
    drain_probe.py drain --redis-url URL --jobs N [--serializer module] [--log F] -- <worker argv>

`drain` empties the Redis database, enqueues N `ping` jobs, starts the worker
with the given argv, waits until every job has a result, stops the worker with
SIGTERM, and prints JSON. Throughput is N over the span between the first job's
start and the last job's finish, both stamped by the worker in arq's results,
so neither the worker's import time nor this probe's polling counts.
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
from arq.utils import import_string

ENQUEUE_BATCH = 200
READ_BATCH = 1000

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]


def tuned_settings(path: str) -> dict[str, Any]:
    """The throughput settings of a WorkerSettings class, as BareTuned reads them."""
    settings = import_string(path)
    names = ("poll_delay", "max_jobs", "queue_read_limit", "job_timeout", "keep_result")
    return {name: getattr(settings, name) for name in names}


def serializers(module: str | None) -> tuple[Serializer | None, Deserializer | None]:
    if module is None:
        return None, None  # arq's pickle
    loaded = importlib.import_module(module)
    return loaded.serialize, loaded.deserialize


async def enqueue(pool: ArqRedis, job_ids: list[str]) -> None:
    for start in range(0, len(job_ids), ENQUEUE_BATCH):
        batch = job_ids[start : start + ENQUEUE_BATCH]
        jobs = await asyncio.gather(*(pool.enqueue_job("ping", "drain", _job_id=i) for i in batch))
        if any(job is None for job in jobs):
            raise RuntimeError("a benchmark job was not enqueued: the database was not empty")


async def wait_for_results(
    pool: ArqRedis, keys: list[str], worker: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await pool.zcard(default_queue_name) == 0 and await pool.exists(*keys) == len(keys):
            return
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode} before draining")
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
        await enqueue(pool, job_ids)
        keys = [result_key_prefix + job_id for job_id in job_ids]
        log = Path(args.log)
        # Blocking calls are fine here: nothing else runs on this loop.
        with log.open("ab") as output:  # noqa: ASYNC230
            worker = subprocess.Popen(args.worker, stdout=output, stderr=subprocess.STDOUT)  # noqa: ASYNC220
            try:
                await wait_for_results(pool, keys, worker, timeout=60 + args.jobs / 20)
            except RuntimeError as error:
                tail = log.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError("\n".join([str(error), "worker log:", *tail])) from None
            finally:
                worker.terminate()
                worker.wait(timeout=60)
        results = await read_results(pool, keys, deserialize)
    finally:
        await pool.aclose()
    failed = [r for r in results if not r.success]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0].result!r}")
    span = (max(r.finish_time for r in results) - min(r.start_time for r in results)).total_seconds()
    span = max(span, 0.001)  # arq stamps in milliseconds
    return {"jobs": args.jobs, "seconds": span, "jobs_per_s": args.jobs / span}


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
    run.add_argument("worker", nargs="+")
    args = parser.parse_args()
    if args.command == "tuned-settings":
        print(json.dumps(tuned_settings(args.settings)))
    else:
        print(json.dumps(asyncio.run(drain(args))))


if __name__ == "__main__":
    main()
