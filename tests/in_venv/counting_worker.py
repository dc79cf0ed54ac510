"""The generated worker plus one job that counts its runs and records overlapping ones,
for tests/test_many_workers.py. Runs in the project's venv, with this directory on PYTHONPATH:

    arq counting_worker.CountingSettings      # a worker: the generated one, plus `count_run`
    python counting_worker.py enqueue JOBS HOLD_S KEYS  # JOBS `count_run` jobs, then exit

Job k (id `count-<k>`) counts key `k % KEYS`: with KEYS = JOBS every job has its own key.

Both read the generated `Config` from the <PREFIX>* variables, as the app's processes do.

`count_run(key, hold_s)` claims `running:<key>` with SET NX, counts the run (per key and per
worker process), holds the claim for `hold_s`, then releases it. A second run of a key that
starts while another holds the claim, in this process or any other, finds the key taken and
records the overlap: so the counts say "every key ran exactly once" and the overlap list says
"never two runs of one key at a time".
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from arq import func
from arq.connections import ArqRedis
from invoice_sync.config import get_config
from invoice_sync.queue import RedisArqQueue
from invoice_sync.worker.main import WorkerSettings
from invoice_sync.worker.metrics import instrumented

PREFIX = "many-workers:"
RUNNING = PREFIX + "running:"  # + key: held while a run of that key is in progress
RUNS = PREFIX + "runs"  # hash: key -> runs
BY_WORKER = PREFIX + "by-worker"  # hash: worker pid -> runs
OVERLAPS = PREFIX + "overlaps"  # list: one line per run that started while another held its key
# Enqueues in flight at once: 100 took 2.2 s for 20,000 jobs here, 500 took 2.9 s, and arq's
# own pool (`enqueue_job`, three round trips each) 3.7 s.
ENQUEUE_BATCH = 100


async def count_run(ctx: dict[str, Any], key: str, hold_s: float) -> None:
    redis: ArqRedis = ctx["redis"]
    worker = str(os.getpid())
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(RUNNING + key, f"job {ctx['job_id']} in worker {worker}", nx=True)
        pipe.hincrby(RUNS, key, 1)
        pipe.hincrby(BY_WORKER, worker, 1)
        claimed, _, _ = await pipe.execute()
    if not claimed:
        holder = await redis.get(RUNNING + key)  # None if it ended in between
        beside = holder.decode() if holder else "a run that has just ended"
        await redis.rpush(OVERLAPS, f"key {key}: job {ctx['job_id']} in worker {worker} ran beside {beside}")
    await asyncio.sleep(hold_s)
    if claimed:
        await redis.delete(RUNNING + key)


# arq reads only a settings class's own attributes (`__dict__`), and takes a dict as well:
# every setting of the generated worker, with `count_run` added to its functions.
CountingSettings: dict[str, Any] = {
    **vars(WorkerSettings),
    "functions": (*WorkerSettings.functions, *instrumented(func(count_run, name="count_run"))),
}


async def enqueue(jobs: int, hold_s: float, keys: int) -> None:
    """Enqueue `count_run` jobs through the project's own client, `ENQUEUE_BATCH` at a time."""
    config = get_config()
    queue = RedisArqQueue.from_settings(config.arq_redis_settings, default_queue_name=config.arq_queue_name)
    try:
        for start in range(0, jobs, ENQUEUE_BATCH):
            batch = range(start, min(start + ENQUEUE_BATCH, jobs))
            await asyncio.gather(
                *(queue.enqueue("count_run", str(k % keys), hold_s, _job_id=f"count-{k}") for k in batch)
            )
    finally:
        await queue.aclose()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "enqueue":
        sys.exit(f"usage: {sys.argv[0]} enqueue JOBS HOLD_S KEYS")
    asyncio.run(enqueue(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
