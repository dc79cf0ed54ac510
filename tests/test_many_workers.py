"""Three worker processes on one queue, started as the Dockerfile starts one, drain 20,000 jobs:
every job runs exactly once, never two runs of one job at a time, every worker takes part, and
nothing is left in the queue or in progress.

The workers run the generated `WorkerSettings` plus a `count_run` job (tests/in_venv/
counting_worker.py) that holds a per-key claim (SET NX) while it runs and records any run that
finds its key claimed: the first test shows that record fills when two runs do overlap.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .support import (
    DEFAULT_PACKAGE,
    Process,
    RedisServer,
    app_env,
    dockerfile_cmd,
    running_redis,
    wait_until,
)

IN_VENV = Path(__file__).resolve().parent / "in_venv"
API_TOKEN = "many-workers-token-0123456789"
WORKERS = 3
JOBS = 20_000
HOLD_S = 0.01  # how long each run holds its claim: the window in which an overlap is seen
QUEUE = "arq:queue"
# counting_worker.py's keys.
RUNNING = "many-workers:running:"
RUNS = "many-workers:runs"
BY_WORKER = "many-workers:by-worker"
OVERLAPS = "many-workers:overlaps"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("many-workers-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def env(project_venv: Path, redis_server: RedisServer) -> dict[str, str]:
    return {**app_env(project_venv, redis_server.url, API_TOKEN), "PYTHONPATH": str(IN_VENV)}


@pytest.fixture(scope="module")
def workers(
    default_project: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Process]]:
    """Three workers started as the Dockerfile's CMD starts one, on settings that add `count_run`."""
    command = dockerfile_cmd(default_project)
    assert command == ["arq", f"{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]
    logs = tmp_path_factory.mktemp("many-workers-logs")
    started = [
        Process(f"worker{i}", [*command[:-1], "counting_worker.CountingSettings"], env, logs)
        for i in range(WORKERS)
    ]
    try:
        for worker in started:
            wait_until(lambda w=worker: "worker started on queue" in w.text(), 60, "worker start", *started)
        yield started
    finally:
        for worker in started:
            worker.stop(signal.SIGTERM)


def enqueue(env: dict[str, str], jobs: int, hold_s: float, keys: int) -> None:
    """`count_run` jobs `count-0`... through the project's RedisArqQueue, with its venv's python
    (first on the PATH of `env`)."""
    args = ["python", str(IN_VENV / "counting_worker.py"), "enqueue", str(jobs), str(hold_s), str(keys)]
    subprocess.run(args, env=env, check=True, timeout=120)


def keys(db: redis.Redis, pattern: str) -> list[str]:
    return list(db.scan_iter(match=pattern, count=1000))


def error_lines(worker: Process) -> list[str]:
    lines = [json.loads(line) for line in worker.text().splitlines() if line.startswith("{")]
    return [line["message"] for line in lines if line["level"] in {"error", "critical"}]


def test_two_runs_of_one_key_at_once_are_detected(
    db: redis.Redis, env: dict[str, str], workers: list[Process]
) -> None:
    """The detector works: two jobs that count the same key, each holding it 0.5 s, overlap."""
    db.flushdb()
    enqueue(env, jobs=2, hold_s=0.5, keys=1)
    wait_until(lambda: db.zcard(QUEUE) == 0 and db.hget(RUNS, "0") == "2", 30, "2 runs", *workers)

    (overlap,) = db.lrange(OVERLAPS, 0, -1)
    assert overlap.startswith("key 0: job count-"), overlap
    assert "ran beside job count-" in overlap
    assert not keys(db, RUNNING + "*")


def test_many_workers_run_every_job_once_and_one_at_a_time(
    db: redis.Redis, env: dict[str, str], workers: list[Process]
) -> None:
    db.flushdb()
    started = time.monotonic()
    enqueue(env, JOBS, HOLD_S, keys=JOBS)
    enqueued = time.monotonic()
    wait_until(lambda: db.zcard(QUEUE) == 0 and db.hlen(RUNS) == JOBS, 120, f"{JOBS} jobs", *workers)
    drained = time.monotonic()
    print(
        f"{WORKERS} workers: {JOBS:,} jobs enqueued in {enqueued - started:.1f} s,"
        f" all run {drained - started:.1f} s after the first enqueue ({JOBS / (drained - started):,.0f} jobs/s)",
        file=sys.stderr,
    )

    runs = db.hgetall(RUNS)
    assert len(runs) == JOBS
    assert {count for count in runs.values()} == {"1"}, "a job ran more than once"
    assert db.lrange(OVERLAPS, 0, -1) == []
    by_worker = {int(pid): int(count) for pid, count in db.hgetall(BY_WORKER).items()}
    assert set(by_worker) == {worker.popen.pid for worker in workers}, by_worker
    assert all(count > 0 for count in by_worker.values()), by_worker
    assert sum(by_worker.values()) == JOBS
    print(f"jobs per worker: {sorted(by_worker.values())}", file=sys.stderr)

    assert db.zcard(QUEUE) == 0
    assert keys(db, "arq:in-progress:*") == []
    assert keys(db, "arq:job:*") == []
    assert keys(db, "arq:retry:*") == []
    assert keys(db, RUNNING + "*") == []
    assert len(keys(db, "arq:result:*")) == JOBS
    for worker in workers:
        assert worker.popen.poll() is None
        assert error_lines(worker) == []
