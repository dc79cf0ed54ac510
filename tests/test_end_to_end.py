"""The default project as real processes: redis-server, uvicorn, and the worker started
with the Dockerfile's exact CMD. Faults are injected; no job may be lost."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .support import (
    DEFAULT_PACKAGE,
    RedisServer,
    Upstream,
    app_env,
    dockerfile_cmd,
    running_api,
    running_redis,
    serve_upstream,
    worker_starter,
)

PASSWORD = "e2e-Secret-pa55word"
API_TOKEN = "e2e-api-token-0123456789"
JOB_TIMEOUT_S = 3
# arq re-runs a job whose worker died once its in-progress key expires:
# job_timeout + 10 s.
RERUN_AFTER_S = JOB_TIMEOUT_S + 10


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve_upstream() as url:
        yield url


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("e2e-redis"), password=PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def env(project_venv: Path, redis: RedisServer, upstream: str) -> dict[str, str]:
    return app_env(
        project_venv,
        redis.url,
        API_TOKEN,
        INVOICE_API_URL=upstream,
        WORKER_JOB_TIMEOUT=str(JOB_TIMEOUT_S),
        WORKER_MAX_TRIES="3",
        WORKER_RETRY_BACKOFF="0.2",
        WORKER_JOB_COMPLETION_WAIT="10",
        WORKER_HEALTH_CHECK_INTERVAL="1",
    )


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="module")
def api(env: dict[str, str], logs: Path) -> Iterator[httpx.Client]:
    with running_api(env, logs) as (_, client):
        yield client


@pytest.fixture
def start_worker(default_project: Path, env: dict[str, str], logs: Path) -> Iterator[Any]:
    """Start workers with the Dockerfile's CMD; stop whatever is left at the end."""
    with worker_starter(default_project, env, logs) as start:
        yield start


def wait_for_job(api: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if body["status"] == "complete":
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not complete in {timeout} s: {body}")


def wait_until_started(invoice_id: str) -> None:
    assert Upstream.started.setdefault(invoice_id, threading.Event()).wait(20)


def test_worker_cmd_is_the_arq_cli(default_project: Path) -> None:
    assert dockerfile_cmd(default_project) == ["arq", f"{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]


def test_enqueue_poll_result_and_no_duplicate(api: httpx.Client, start_worker: Any) -> None:
    first = api.post("/jobs/ping", json={"job_id": "e2e-once", "message": "first"})
    second = api.post("/jobs/ping", json={"job_id": "e2e-once", "message": "second"})
    assert first.json()["id"] == "ping:e2e-once"
    assert (first.status_code, second.status_code) == (202, 409)
    assert second.headers["location"] == first.headers["location"]

    worker = start_worker()
    body = wait_for_job(api, "ping:e2e-once")
    assert (body["success"], body["result"]) == (True, "first")
    # The worker as the image starts it runs on uvloop (worker/event_loop.py).
    assert "(event loop: uvloop)" in worker.text()

    sync = api.post("/jobs/sync-invoice", json={"invoice_id": "INV-100"})
    assert sync.status_code == 202
    body = wait_for_job(api, sync.json()["id"])
    assert body["result"] == {"invoice_id": "INV-100", "synced": True}
    assert api.post("/jobs/ping", json={"job_id": "e2e-once"}).status_code == 409


def test_failing_job_retries_then_fails_with_its_error(api: httpx.Client, start_worker: Any) -> None:
    start_worker()
    job = api.post("/jobs/sync-invoice", json={"invoice_id": "down-1"}).json()

    body = wait_for_job(api, job["id"])

    assert body["success"] is False
    assert body["error"] == {"type": "UpstreamError", "message": "invoice API answered 503"}
    assert Upstream.hits["down-1"] == 3  # max_tries


def test_sigterm_lets_the_running_job_finish(api: httpx.Client, start_worker: Any) -> None:
    worker = start_worker()
    job = api.post("/jobs/sync-invoice", json={"invoice_id": "slow-term"}).json()
    wait_until_started("slow-term")

    assert worker.stop(signal.SIGTERM, timeout=20) == 0
    body = api.get(f"/jobs/{job['id']}").json()
    assert (body["status"], body["success"]) == ("complete", True), worker.text()
    assert Upstream.hits["slow-term"] == 1


def test_sigkill_mid_job_is_rerun_by_the_next_worker(api: httpx.Client, start_worker: Any) -> None:
    worker = start_worker()
    job = api.post("/jobs/sync-invoice", json={"invoice_id": "slow-kill"}).json()
    wait_until_started("slow-kill")
    worker.stop(signal.SIGKILL)
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "in_progress"

    start_worker()
    body = wait_for_job(api, job["id"], timeout=RERUN_AFTER_S + 20)

    assert body["success"] is True
    assert Upstream.hits["slow-kill"] == 2


def test_arq_check_follows_the_worker(default_project: Path, env: dict[str, str], start_worker: Any) -> None:
    check = ["arq", "--check", f"{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]
    # A worker SIGKILLed by an earlier test leaves its health key until it expires: without
    # waiting it out, the check below could pass on that key, before this worker's first.
    deadline = time.monotonic() + 20
    while subprocess.run(check, env=env, capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "an earlier worker's health key did not expire"
        time.sleep(0.2)
    worker = start_worker()
    deadline = time.monotonic() + 20
    while subprocess.run(check, env=env, capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline, worker.text()
        time.sleep(0.2)

    worker.stop(signal.SIGTERM)
    assert subprocess.run(check, env=env, capture_output=True, check=False).returncode == 1


def test_redis_outage_gives_503_and_recovers(api: httpx.Client, redis: RedisServer) -> None:
    assert api.get("/health/ready").status_code == 200
    redis.stop()
    try:
        ready = api.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        enqueue = api.post("/jobs/ping", json={})
        assert enqueue.status_code == 503
        assert "Traceback" not in enqueue.text
    finally:
        redis.start()
    deadline = time.monotonic() + 20
    while api.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.post("/jobs/ping", json={}).status_code == 202


def test_logs_are_json_with_job_ids_and_never_the_password(logs: Path) -> None:
    worker_lines = []
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        assert PASSWORD not in text, log.name
        if log.name.startswith("worker"):
            worker_lines += [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    job_lines = [line for line in worker_lines if "→" in line["message"]]
    assert job_lines
    assert all(line.get("job_id") and line.get("job_try") for line in job_lines)
