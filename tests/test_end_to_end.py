"""The default project as real processes: redis-server, uvicorn, and the worker started
with the Dockerfile's exact CMD. Faults are injected; no job may be lost."""

from __future__ import annotations

import json
import os
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
    DEFAULT_PREFIX,
    Process,
    RedisServer,
    Upstream,
    dockerfile_cmd,
    free_port,
    serve_upstream,
    wait_until_healthy,
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
    server = RedisServer(tmp_path_factory.mktemp("e2e-redis"), password=PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(project_venv: Path, redis: RedisServer, upstream: str) -> dict[str, str]:
    p = DEFAULT_PREFIX
    return {
        **os.environ,
        "PATH": f"{project_venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        f"{p}ARQ_MODE": "production",
        f"{p}ARQ_QUEUE_URL": redis.url,
        f"{p}API_TOKENS": API_TOKEN,
        f"{p}INVOICE_API_URL": upstream,
        f"{p}WORKER_JOB_TIMEOUT": str(JOB_TIMEOUT_S),
        f"{p}WORKER_MAX_TRIES": "3",
        f"{p}WORKER_RETRY_BACKOFF": "0.2",
        f"{p}WORKER_JOB_COMPLETION_WAIT": "10",
        f"{p}WORKER_HEALTH_CHECK_INTERVAL": "1",
        f"{p}LOG_FORMAT": "json",
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="module")
def api(env: dict[str, str], logs: Path) -> Iterator[httpx.Client]:
    port = free_port()
    args = ["uvicorn", "--factory", f"{DEFAULT_PACKAGE}.main:create_app", "--port", str(port)]
    process = Process("api", args, env, logs)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
    wait_until_healthy(client, process)
    yield client
    client.close()
    process.stop()


@pytest.fixture
def start_worker(default_project: Path, env: dict[str, str], logs: Path) -> Iterator[Any]:
    """Start workers with the Dockerfile's CMD; stop whatever is left at the end."""
    started: list[Process] = []

    def start() -> Process:
        process = Process("worker", dockerfile_cmd(default_project), env, logs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(signal.SIGKILL if process.popen.poll() is None else signal.SIGTERM)


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

    start_worker()
    body = wait_for_job(api, "ping:e2e-once")
    assert (body["success"], body["result"]) == (True, "first")

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
