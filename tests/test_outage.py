"""Redis outages, end to end: redis-server (with an append-only file, so a restart keeps the
queue), uvicorn, and workers started with the Dockerfile's exact CMD. Redis is stopped and
started under them; the workers must stay up, say so in their log, and lose no job."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support import (
    DEFAULT_PACKAGE,
    Process,
    RedisServer,
    Upstream,
    app_env,
    running_api,
    running_redis,
    serve_upstream,
    wait_until,
    worker_starter,
)

PASSWORD = "outage-Secret-pa55word"
API_TOKEN = "outage-api-token-0123456789"
UNREACHABLE = "Redis is unreachable"
REACHABLE_AGAIN = "Redis is reachable again"
# Few job slots and some 2 s jobs, so a few hundred jobs take seconds to drain
# and the outage lands in the middle of it.
MAX_JOBS = 10
SHORT_OUTAGE_S = 3.0
LONG_OUTAGE_S = 30.0
EARLY_START_S = 60.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_upstream() as url:
        yield url


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    workdir = tmp_path_factory.mktemp("outage-redis")
    with running_redis(workdir, password=PASSWORD, appendonly=True) as server:
        yield server


@pytest.fixture(scope="module")
def env(project_venv: Path, redis: RedisServer, upstream: str) -> dict[str, str]:
    return app_env(
        project_venv,
        redis.url,
        API_TOKEN,
        INVOICE_API_URL=upstream,
        # Longer than any job plus an outage: a job waiting for Redis must not time out.
        WORKER_JOB_TIMEOUT="60",
        WORKER_MAX_JOBS=str(MAX_JOBS),
        WORKER_JOB_COMPLETION_WAIT="10",
        WORKER_HEALTH_CHECK_INTERVAL="1",
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outage-logs")


@pytest.fixture(scope="module")
def api(env: dict[str, str], logs: Path) -> Iterator[httpx.Client]:
    with running_api(env, logs) as (_, client):
        yield client


@pytest.fixture
def start_worker(default_project: Path, env: dict[str, str], logs: Path) -> Iterator[Callable[[], Process]]:
    """Start workers with the Dockerfile's CMD; kill whatever a failed test left running."""
    with worker_starter(default_project, env, logs) as start:
        yield start


@pytest.fixture
def check(default_project: Path, env: dict[str, str]) -> Callable[[], int]:
    """Run the Dockerfile's HEALTHCHECK command; its exit code."""
    dockerfile = (default_project / "Dockerfile").read_text()
    match = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (\[.*\])\s*$", dockerfile, re.MULTILINE)
    assert match, "the Dockerfile has no exec-form HEALTHCHECK"
    command: list[str] = json.loads(match.group(1))
    assert command == ["arq", "--check", f"{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]

    def run() -> int:
        return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode

    return run


def logged(process: Process, text: str) -> bool:
    return text in process.text()


def json_lines(process: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.text().splitlines() if line.startswith("{")]


def enqueue(api: httpx.Client, path: str, body: dict[str, Any]) -> str:
    response = api.post(path, json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_for_jobs(api: httpx.Client, job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll every job until all are complete; their final bodies."""
    pending, done = set(job_ids), {}
    deadline = time.monotonic() + timeout
    while pending:
        for job_id in list(pending):
            body = api.get(f"/jobs/{job_id}").json()
            if body["status"] == "complete":
                done[job_id] = body
                pending.discard(job_id)
        assert time.monotonic() < deadline, f"{len(pending)} jobs not complete after {timeout} s"
        if pending:
            time.sleep(0.2)
    return done


def finished(worker: Process) -> int:
    """How many jobs the worker has finished, from arq's `←` log lines."""
    return worker.text().count(" ← ")


def hits(invoices: list[str]) -> int:
    return sum(Upstream.hits[invoice] for invoice in invoices)


def stop_worker(worker: Process, timeout: float = 15) -> tuple[int, float]:
    """SIGTERM the worker; its exit code and how long it took to stop."""
    started = time.monotonic()
    code = worker.stop(signal.SIGTERM, timeout=timeout)
    return code, time.monotonic() - started


def test_short_outage_while_draining_loses_no_job(
    api: httpx.Client, redis: RedisServer, start_worker: Callable[[], Process]
) -> None:
    run = uuid.uuid4().hex[:8]
    invoices: list[str] = []
    job_ids: list[str] = []
    for i in range(300):
        if i % 5 == 0:
            job_ids.append(enqueue(api, "/jobs/ping", {"message": f"ping {i}"}))
            continue
        invoice = f"slow-a{run}-{i}" if i % 15 == 1 else f"a{run}-{i}"
        invoices.append(invoice)
        job_ids.append(enqueue(api, "/jobs/sync-invoice", {"invoice_id": invoice}))
    accepted = len(job_ids)

    worker = start_worker()
    wait_until(lambda: finished(worker) >= 40, 30, "the worker started draining", worker)
    redis.stop()
    finished_before = finished(worker)
    try:
        time.sleep(SHORT_OUTAGE_S)
        assert worker.popen.poll() is None, worker.text()
    finally:
        redis.start()
    restarted = time.monotonic()
    bodies = wait_for_jobs(api, job_ids, timeout=60)
    drained_after_s = time.monotonic() - restarted

    assert finished_before < accepted, "the queue was drained before the outage"
    assert worker.popen.poll() is None, worker.text()
    assert logged(worker, UNREACHABLE), worker.text()
    completed = sum(body["success"] is True for body in bodies.values())
    failed = [body for body in bodies.values() if body["success"] is not True]
    assert completed == accepted, f"{failed}\n{worker.text()[-3000:]}"
    assert all(Upstream.hits[invoice] >= 1 for invoice in invoices)
    code, stop_s = stop_worker(worker)
    assert code == 0, worker.text()
    print(
        f"\nshort outage: {accepted} accepted, {completed} completed, {accepted - completed} lost; "
        f"{len(invoices)} invoices, {hits(invoices)} upstream hits "
        f"({finished_before} jobs done before the outage); drained {drained_after_s:.1f} s after "
        f"Redis came back; SIGTERM exit {code} in {stop_s:.1f} s"
    )


def test_long_outage_with_an_idle_worker(
    api: httpx.Client,
    redis: RedisServer,
    start_worker: Callable[[], Process],
    check: Callable[[], int],
) -> None:
    worker, stopped_in_outage = start_worker(), start_worker()
    wait_until(lambda: check() == 0, 30, "arq --check passes", worker, stopped_in_outage)

    redis.stop()
    outage_started = time.monotonic()
    try:
        wait_until(
            lambda: logged(worker, UNREACHABLE) and logged(stopped_in_outage, UNREACHABLE),
            10,
            "the outage is logged",
            worker,
            stopped_in_outage,
        )
        warning = next(line for line in json_lines(worker) if line["message"].startswith(UNREACHABLE))
        assert warning["level"] == "warning"
        assert "retrying in" in warning["message"]

        # The API does not wait for Redis: it answers 503 at once.
        started = time.monotonic()
        assert api.post("/jobs/ping", json={}).status_code == 503
        api_503_s = time.monotonic() - started
        # The HEALTHCHECK fails (it does not wait either).
        started = time.monotonic()
        assert check() != 0
        check_fail_s = time.monotonic() - started
        # SIGTERM still stops a worker that is waiting for Redis.
        # (It exits 1: arq's Worker.close deletes the health key, and Redis is down.)
        term_code, term_s = stop_worker(stopped_in_outage, timeout=10)
        assert term_s < 5, stopped_in_outage.text()
        assert term_code in {0, 1}, stopped_in_outage.text()

        time.sleep(max(0.0, LONG_OUTAGE_S - (time.monotonic() - outage_started)))
        assert worker.popen.poll() is None, worker.text()
    finally:
        redis.start()

    wait_until(lambda: logged(worker, REACHABLE_AGAIN), 15, "the end of the outage is logged", worker)
    run = uuid.uuid4().hex[:8]
    job_ids = [
        enqueue(api, "/jobs/ping", {"message": "after the outage"}),
        enqueue(api, "/jobs/sync-invoice", {"invoice_id": f"b{run}"}),
    ]
    bodies = wait_for_jobs(api, job_ids, timeout=20)
    assert all(body["success"] is True for body in bodies.values())
    assert Upstream.hits[f"b{run}"] == 1
    wait_until(lambda: check() == 0, 15, "arq --check passes again", worker)
    warnings = [line for line in json_lines(worker) if line["level"] == "warning"]
    code, stop_s = stop_worker(worker)
    assert code == 0, worker.text()
    print(
        f"\nlong outage ({LONG_OUTAGE_S:.0f} s): {len(warnings)} warning line(s); API 503 in "
        f"{api_503_s:.2f} s; arq --check failed in {check_fail_s:.1f} s; SIGTERM during the "
        f"outage: exit {term_code} in {term_s:.1f} s; {len(bodies)} jobs after it completed; "
        f"final SIGTERM exit {code} in {stop_s:.1f} s"
    )


def test_worker_started_before_redis_waits_for_it(
    api: httpx.Client, redis: RedisServer, start_worker: Callable[[], Process]
) -> None:
    redis.stop()
    try:
        worker, stopped_early = start_worker(), start_worker()
        wait_until(
            lambda: logged(worker, UNREACHABLE) and logged(stopped_early, UNREACHABLE),
            10,
            "the wait for Redis is logged",
            worker,
            stopped_early,
        )
        early_code, early_s = stop_worker(stopped_early, timeout=10)
        assert (early_code, early_s < 5) == (0, True), stopped_early.text()
        deadline = time.monotonic() + EARLY_START_S
        while time.monotonic() < deadline:
            assert worker.popen.poll() is None, worker.text()
            time.sleep(0.5)
    finally:
        redis.start()

    run = uuid.uuid4().hex[:8]
    invoices = [f"c{run}-{i}" for i in range(5)]
    job_ids = [enqueue(api, "/jobs/ping", {"message": f"early {i}"}) for i in range(5)]
    job_ids += [enqueue(api, "/jobs/sync-invoice", {"invoice_id": invoice}) for invoice in invoices]
    bodies = wait_for_jobs(api, job_ids, timeout=30)
    assert all(body["success"] is True for body in bodies.values())
    assert all(Upstream.hits[invoice] == 1 for invoice in invoices)
    code, stop_s = stop_worker(worker)
    assert code == 0, worker.text()
    print(
        f"\nworker started {EARLY_START_S:.0f} s before Redis: {len(job_ids)} accepted, "
        f"{len(bodies)} completed; SIGTERM before Redis came: exit {early_code} in {early_s:.1f} s; "
        f"final SIGTERM exit {code} in {stop_s:.1f} s"
    )
