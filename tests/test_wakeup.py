"""Idle workers woken by the enqueue, as real processes: redis-server, uvicorn, and the worker
started with the Dockerfile's exact CMD. Measures the pickup latency of an idle worker
(HTTP enqueue -> job start, 50 jobs) and what an idle worker costs Redis and the CPU, beside
the same worker polling (WORKER_IDLE_POLL_INTERVAL=0, i.e. arq's poll every poll_delay).

Asserted only what proves the mechanism, on statistics a stall or two of a shared machine
does not move: with a 0.9 s idle poll interval (the longest the settings allow beside a
0.05 s poll_delay: the two stay under 1 s, so arq's health key never lapses), the median
job starts within 0.1 s and nine in ten within half the interval; an idle worker
reads Redis at its interval, not every poll_delay. The figures are printed (`pytest -s`)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bench.in_venv.procstats import calls_between, command_calls, cpu_seconds, percentile

from .support import (
    DEFAULT_PREFIX,
    Process,
    RedisServer,
    app_env,
    running_api,
    running_redis,
    worker_starter,
)

API_TOKEN = "wakeup-api-token-0123456789"
QUEUE = "arq:queue"
JOBS = 50
IDLE_S = 5.0
POLL_DELAY = "0.05"
LONG_INTERVAL = "0.9"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("wakeup-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def env(project_venv: Path, redis_server: RedisServer) -> dict[str, str]:
    return app_env(
        project_venv,
        redis_server.url,
        API_TOKEN,
        WORKER_HEALTH_CHECK_INTERVAL="30",
        WORKER_POLL_DELAY=POLL_DELAY,
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wakeup-logs")


@pytest.fixture(scope="module")
def api(env: dict[str, str], logs: Path) -> Iterator[httpx.Client]:
    with running_api(env, logs) as (_, client):
        yield client


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis(port=redis_server.port)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def start_worker(
    default_project: Path, env: dict[str, str], logs: Path, client: redis.Redis
) -> Iterator[Callable[[str], Process]]:
    """Start a worker with the Dockerfile's CMD and a given idle poll interval; return it
    once it reads its queue (and, when it waits for signals, has subscribed)."""
    with ExitStack() as stack:

        def start(interval: str) -> Process:
            worker_env = {**env, f"{DEFAULT_PREFIX}WORKER_IDLE_POLL_INTERVAL": interval}
            worker: Process = stack.enter_context(worker_starter(default_project, worker_env, logs))()
            deadline = time.monotonic() + 30
            while not ready(client, interval):
                assert worker.popen.poll() is None, worker.text()
                assert time.monotonic() < deadline, worker.text()
                time.sleep(0.05)
            time.sleep(0.5)  # past its first reads
            return worker

        yield start


def ready(client: redis.Redis, interval: str) -> bool:
    if not client.exists(QUEUE + ":health-check"):
        return False
    if float(interval) == 0:
        return True
    ((_, subscribers),) = client.pubsub_numsub(QUEUE + ":wake")
    return bool(subscribers == 1)


def pickup_latencies(api: httpx.Client) -> tuple[list[float], list[float]]:
    """For each of JOBS jobs sent one at a time to an idle worker: seconds from the job's
    enqueue (as stored) to its start, and from before the HTTP request to its start."""
    queued, requested = [], []
    for _ in range(JOBS):
        time.sleep(random.uniform(0.05, 0.25))  # idle, at a random point of its wait
        before = time.time()
        response = api.post("/jobs/ping", json={})
        assert response.status_code == 202, response.text
        job = complete(api, response.headers["location"])
        start = datetime.fromisoformat(job["start_time"]).timestamp()
        queued.append(start - datetime.fromisoformat(job["enqueue_time"]).timestamp())
        requested.append(start - before)
    return queued, requested


def complete(api: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        body: dict[str, Any] = api.get(location).json()
        if body["status"] == "complete":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.01)


def idle_cost(client: redis.Redis, worker: Process) -> tuple[float, float, dict[str, int]]:
    """Redis commands a second (INFO excluded), CPU % of one core, and the commands, of a
    worker left idle for IDLE_S seconds; nothing else uses this Redis meanwhile."""
    pid = worker.popen.pid
    calls_before = command_calls(client.info("commandstats"))
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(IDLE_S)
    calls_after = command_calls(client.info("commandstats"))
    cpu_after, took = cpu_seconds(pid), time.monotonic() - started
    commands = calls_between(calls_before, calls_after)
    return sum(commands.values()) / took, 100 * (cpu_after - cpu_before) / took, commands


def summary(name: str, latencies: list[float]) -> str:
    ms = [1000 * value for value in latencies]
    p50, p90, p99 = (percentile(ms, share) for share in (0.5, 0.9, 0.99))
    return f"{name}: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {max(ms):.1f} ms"


def measure(
    interval: str, api: httpx.Client, client: redis.Redis, start_worker: Callable[[str], Process]
) -> tuple[list[float], float]:
    worker = start_worker(interval)
    try:
        commands_per_s, cpu_percent, commands = idle_cost(client, worker)
        queued, requested = pickup_latencies(api)
    finally:
        assert worker.stop() == 0, worker.text()
    print(f"\nWORKER_IDLE_POLL_INTERVAL={interval}, {JOBS} jobs, one at a time, idle worker")
    print("  " + summary("enqueue -> start", queued))
    print("  " + summary("HTTP request -> start", requested))
    print(f"  idle {IDLE_S:g} s: {commands_per_s:.1f} Redis commands/s, CPU {cpu_percent:.2f}% of a core")
    print(f"  commands: {dict(sorted(commands.items()))}")
    return queued, commands_per_s


def test_an_idle_worker_is_woken_by_the_enqueue_and_costs_little(
    api: httpx.Client, client: redis.Redis, start_worker: Callable[[str], Process]
) -> None:
    # A long interval: only a wake-up signal starts jobs quickly. Each job comes 0.05-0.25 s
    # after the last one ended, when the worker has just begun waiting, so a worker reading
    # only at its interval would start it about 0.6-0.85 s later.
    woken, _ = measure(LONG_INTERVAL, api, client, start_worker)
    assert statistics.median(woken) < 0.1, woken
    assert percentile(woken, 0.9) < 0.45, woken
    # The default: an idle worker reads Redis every 0.5 s, about 10 commands a second.
    default, commands_per_s = measure("0.5", api, client, start_worker)
    assert commands_per_s < 15
    assert statistics.median(default) < 0.1, default
    # For comparison, polling every poll_delay (0.05 s), as before: nothing asserted.
    measure("0", api, client, start_worker)
