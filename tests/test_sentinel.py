"""Redis Sentinel failover, end to end: a private master, one replica and three sentinels
(`redis-server <conf> --sentinel`), uvicorn and a worker started with the Dockerfile's CMD, all
on a `redis+sentinel://` DSN. Jobs go in through the API while the master is SIGKILLed; the
sentinels promote the replica; the API and the worker carry on without a restart.

Replication is asynchronous: jobs the old master accepted but had not yet sent to its replica
are lost with it. The test prints how many; it asserts that the system recovers and that every
job accepted after the failover completes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import httpx
import pytest
import redis

from .support import (
    DEFAULT_PACKAGE,
    Process,
    app_env,
    free_port,
    running_api,
    wait_for_port,
    worker_starter,
)

PASSWORD = "sentinel-Secret-pa55word"
# The default queue's wake-up channel (redis_pool.wake_channel in the generated project).
WAKE_CHANNEL = "arq:queue:wake"
API_TOKEN = "sentinel-api-token-0123456789"
MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
LOAD_BEFORE_KILL_S = 2.0
LOAD_AFTER_FAILOVER_S = 3.0
# After the promotion is seen, requests may still meet a connection to the dead master
# (503) for a moment; past this, every request must be accepted.
SETTLE_S = 1.0
UNREACHABLE = "Redis is unreachable"
REACHABLE_AGAIN = "Redis is reachable again"


def redis_server(name: str, workdir: Path, port: int, *extra: str) -> Process:
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(workdir)]
    args += ["--requirepass", PASSWORD, "--masterauth", PASSWORD, *extra]
    process = Process(name, args, dict(os.environ), workdir)
    wait_for_port(port, process.popen, timeout=10)
    return process


def sentinel_server(number: int, workdir: Path, master_port: int) -> tuple[Process, int]:
    port = free_port()
    config = workdir / f"sentinel-{number}.conf"  # sentinels rewrite their config: one each
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
        f"sentinel auth-pass {MASTER_NAME} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
    )
    args = ["redis-server", str(config), "--sentinel"]
    process = Process(f"sentinel-{number}", args, dict(os.environ), workdir)
    wait_for_port(port, process.popen, timeout=10)
    return process, port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `condition`; the time it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not after {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


class Sentinels:
    """The Redis processes of the test and what the sentinels say about them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master_port, self.replica_port = free_port(), free_port()
        self.processes: list[Process] = []
        self.ports: list[int] = []

    def start(self) -> None:
        self.master = redis_server("master", self.workdir, self.master_port)
        self.processes.append(self.master)
        replica_of = ("--replicaof", "127.0.0.1", str(self.master_port))
        self.processes.append(redis_server("replica", self.workdir, self.replica_port, *replica_of))
        for number in (1, 2, 3):
            process, port = sentinel_server(number, self.workdir, self.master_port)
            self.processes.append(process)
            self.ports.append(port)

    def stop(self) -> None:
        for process in self.processes:
            process.stop(signal.SIGKILL)

    @property
    def dsn(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+sentinel://:{PASSWORD}@{hosts}/{MASTER_NAME}/0"

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, decode_responses=True)

    def master_port_seen(self) -> int | None:
        """The master's port as every sentinel reports it, if they agree."""
        ports = set()
        for port in self.ports:
            try:
                with self.sentinel(port) as sentinel:
                    _, master_port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                return None
            ports.add(int(master_port))
        return ports.pop() if len(ports) == 1 else None

    def ready(self, replica_port: int) -> bool:
        """Every sentinel knows one replica and the two other sentinels; the replica is in sync."""
        for port in self.ports:
            with self.sentinel(port) as sentinel:
                state = sentinel.sentinel_master(MASTER_NAME)
            if state["num-slaves"] != 1 or state["num-other-sentinels"] != 2:
                return False
        with self.client(replica_port) as replica:
            info = replica.info("replication")
        return info.get("master_link_status") == "up"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, decode_responses=True)


class Load:
    """Posts ping jobs through the API, one after another, recording each answer."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.answers: list[tuple[float, int, str | None]] = []  # (sent at, status, job id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            sent = time.monotonic()
            try:
                response = self.api.post("/jobs/ping", json={"message": f"m{number}"})
            except httpx.HTTPError:
                self.answers.append((sent, 0, None))
                continue
            job_id = response.json()["id"] if response.status_code == 202 else None
            self.answers.append((sent, response.status_code, job_id))

    def accepted(self, since: float = 0.0, until: float = float("inf")) -> list[str]:
        return [job for sent, status, job in self.answers if status == 202 and job and since <= sent < until]


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinels]:
    servers = Sentinels(tmp_path_factory.mktemp("sentinel"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def env(project_venv: Path, sentinels: Sentinels) -> dict[str, str]:
    return app_env(project_venv, sentinels.dsn, API_TOKEN, WORKER_HEALTH_CHECK_INTERVAL="1")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sentinel-logs")


def outcomes(master: redis.Redis, job_ids: list[str]) -> dict[str, str]:
    """Each job as the master holds it: done (a result), waiting (queued, or claimed by a
    worker whose claim outlived the failover: it runs again once the claim expires) or lost."""
    with master.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(f"arq:result:{job_id}")
            pipe.exists(f"arq:job:{job_id}")
        replies = pipe.execute()
    return {
        job_id: "done" if result else "waiting" if job else "lost"
        for job_id, result, job in zip(job_ids, replies[::2], replies[1::2], strict=True)
    }


def wait_for_results(master: redis.Redis, job_ids: list[str], timeout: float = 30) -> float:
    return wait_until(
        lambda: all(state == "done" for state in outcomes(master, job_ids).values()),
        timeout,
        f"the {len(job_ids)} jobs accepted after the failover have results",
    )


def count(states: dict[str, str], job_ids: list[str], state: str) -> int:
    return sum(states[job] == state for job in job_ids)


def test_failover_under_load(
    sentinels: Sentinels, env: dict[str, str], logs: Path, default_project: Path
) -> None:
    wait_until(
        lambda: sentinels.ready(sentinels.replica_port), 20, "the sentinels see the replica and each other"
    )
    assert sentinels.master_port_seen() == sentinels.master_port
    with running_api(env, logs) as (api_process, api), worker_starter(default_project, env, logs) as start:
        worker = start()
        with Load(api) as load:
            time.sleep(LOAD_BEFORE_KILL_S)
            sentinels.master.stop(signal.SIGKILL)
            killed = time.monotonic()
            failover_s = wait_until(
                lambda: sentinels.master_port_seen() == sentinels.replica_port,
                DOWN_AFTER_MS / 1000 + 15,
                "the sentinels promote the replica",
            )
            promoted = time.monotonic()
            time.sleep(LOAD_AFTER_FAILOVER_S)

        new_master = sentinels.client(sentinels.replica_port)
        # Accepted once the old master was dead, so by the new one: every one must run.
        after_kill = load.accepted(since=killed)
        results_s = wait_for_results(new_master, after_kill)
        assert worker.popen.poll() is None, worker.text()
        assert api_process.popen.poll() is None, api_process.text()
        before = load.accepted(until=killed)
        states = outcomes(new_master, before)
        refused = [(sent - killed, status) for sent, status, _ in load.answers if status != 202]
        late_refusals = [t for t, _ in refused if t >= promoted - killed + SETTLE_S]
        print(
            f"\nsentinel failover: promoted {failover_s:.1f} s after the SIGKILL;"
            f" {len(before)} jobs accepted before it: {count(states, before, 'lost')} lost,"
            f" {count(states, before, 'waiting')} waiting for a claim to expire;"
            f" {len(refused)} requests refused (status {sorted({s for _, s in refused})})"
            f" from {min((t for t, _ in refused), default=0):.2f} to"
            f" {max((t for t, _ in refused), default=0):.2f} s after the kill;"
            f" {len(after_kill)} accepted after the kill, all run"
            f" ({results_s:.1f} s after the load stopped)"
        )

        assert len(before) > 100, "too little load before the kill"
        assert len(load.accepted(since=promoted)) > 100, "the API did not recover after the failover"
        assert not late_refusals, (
            f"{len(late_refusals)} refused after the failover\n{api_process.text()[-3000:]}"
        )
        assert {status for _, status in refused} <= {503}, refused[:5]
        # The worker waited the failover out as an outage: it did not exit and said so.
        text = worker.text()
        assert UNREACHABLE in text and REACHABLE_AGAIN in text, text[-3000:]
        assert api.get("/health/ready").status_code == 200
        check = ["arq", "--check", f"{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]
        result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"redis\+sentinel://@?127\.0\.0\.1", text), (
            "the worker logs its DSN without the password"
        )
        assert PASSWORD not in text
        assert PASSWORD not in api_process.text()
        # The worker's wake-up subscription followed the master (else the worker would
        # silently fall back to reading every idle interval).
        wait_until(
            lambda: new_master.pubsub_numsub(WAKE_CHANNEL)[0][1] == 1,
            15,
            "the worker subscribes to its wake-up channel on the new master",
        )

        # A switchover with both servers up: the old master comes back as a replica, then
        # SENTINEL FAILOVER promotes it again. The demoted master keeps its clients, and takes
        # their writes, until the sentinels turn it into a replica (which drops those writes).
        replica_of = ("--replicaof", "127.0.0.1", str(sentinels.replica_port))
        sentinels.master = redis_server("old-master", sentinels.workdir, sentinels.master_port, *replica_of)
        sentinels.processes.append(sentinels.master)
        wait_until(lambda: sentinels.ready(sentinels.master_port), 20, "the old master is a replica in sync")
        demoted_master = sentinels.client(sentinels.replica_port)
        with Load(api) as load:
            time.sleep(LOAD_BEFORE_KILL_S)
            with sentinels.sentinel(sentinels.ports[0]) as sentinel:
                sentinel.sentinel_failover(MASTER_NAME)
            asked = time.monotonic()
            wait_until(
                lambda: sentinels.master_port_seen() == sentinels.master_port,
                15,
                "the sentinels promote the old master again",
            )
            switched = time.monotonic()
            wait_until(
                lambda: demoted_master.info("replication")["role"] == "slave",
                30,
                "the sentinels turn the demoted master into a replica",
            )
            demoted = time.monotonic()
            time.sleep(LOAD_AFTER_FAILOVER_S)
        master = sentinels.client(sentinels.master_port)
        wait_for_results(master, load.accepted(since=demoted + SETTLE_S))
        accepted = load.accepted()
        states = outcomes(master, accepted)
        lost_at = [
            sent - asked for sent, status, job in load.answers if status == 202 and states[job] == "lost"
        ]
        refused_at = [sent - asked for sent, status, _ in load.answers if status != 202]
        print(
            f"sentinel switchover: promoted {switched - asked:.1f} s after SENTINEL FAILOVER, the old"
            f" master demoted {demoted - asked:.1f} s after it; {len(accepted)} jobs accepted,"
            f" {len(lost_at)} lost (sent {min(lost_at, default=0):.2f} to {max(lost_at, default=0):.2f} s"
            f" after the FAILOVER), {count(states, accepted, 'waiting')} waiting for a claim to expire;"
            f" {len(refused_at)} refused"
        )
        late = [t for t in lost_at + refused_at if t >= demoted - asked + SETTLE_S]
        assert not late, f"{len(late)} lost or refused after the demotion\n{api_process.text()[-3000:]}"
        assert worker.popen.poll() is None, worker.text()
