"""API to worker and back, on real Redis (tox -e integration)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.worker import create_worker
from asgi_lifespan import LifespanManager
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.queue import JobNotQueued, RedisArqQueue
from {{ cookiecutter.package_name }}.redis_pool import connect_pool
from {{ cookiecutter.package_name }}.worker.main import WorkerSettings

from ..conftest import client_for

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_config(redis_config: Config) -> Config:
    return redis_config.model_copy(update={"arq_queue_name": f"test:{uuid.uuid4().hex}"})


@pytest.fixture
async def api(queue_config: Config) -> AsyncIterator[AsyncClient]:
    app = create_app(queue_config)
    async with LifespanManager(app), client_for(app) as client:
        yield client


async def run_worker(queue_name: str) -> None:
    worker = create_worker(
        WorkerSettings, queue_name=queue_name, burst=True, poll_delay=0.01, handle_signals=False
    )
    try:
        await asyncio.wait_for(worker.main(), timeout=30)
    finally:
        await worker.close()


async def test_enqueue_run_and_read_the_result(api: AsyncClient, queue_config: Config) -> None:
    response = await api.post("/jobs/ping", json={"message": "round trip"})
    assert response.status_code == 202
    location = response.headers["location"]
    assert (await api.get(location)).json()["status"] == "queued"
    assert (await api.get("/health/ready")).status_code == 200

    await run_worker(queue_config.arq_queue_name)

    body = (await api.get(location)).json()
    assert (body["status"], body["success"], body["result"]) == ("complete", True, "round trip")


async def test_duplicate_job_id_makes_no_second_job(api: AsyncClient, queue_config: Config) -> None:
    job_id = f"once-{uuid.uuid4().hex}"
    first = await api.post("/jobs/ping", json={"job_id": job_id, "message": "first"})
    second = await api.post("/jobs/ping", json={"job_id": job_id, "message": "second"})
    assert (first.status_code, second.status_code) == (202, 409)

    await run_worker(queue_config.arq_queue_name)

    body = (await api.get(f"/jobs/ping:{job_id}")).json()
    assert body["result"] == "first"
    assert (await api.post("/jobs/ping", json={"job_id": job_id})).status_code == 409


async def test_enqueue_is_one_redis_round_trip(
    queue_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = connect_pool(
        queue_config.arq_redis_settings, default_queue_name=queue_config.arq_queue_name
    )
    queue = RedisArqQueue(pool)
    try:
        await queue.enqueue("ping", "warm-up")  # loads the enqueue script into Redis once
        commands: list[object] = []
        execute_command: Callable[..., Awaitable[Any]] = pool.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            commands.append(args[0])
            return await execute_command(*args, **options)

        def no_pipeline(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("enqueue must not need a pipeline or transaction")

        monkeypatch.setattr(pool, "execute_command", counted)
        monkeypatch.setattr(pool, "pipeline", no_pipeline)
        for _ in range(5):
            await queue.enqueue("ping", "once")
        taken = f"one-trip-{uuid.uuid4().hex}"
        await queue.enqueue("ping", "first", _job_id=taken)
        with pytest.raises(JobNotQueued):  # refused in the same single round trip
            await queue.enqueue("ping", "again", _job_id=taken)
    finally:
        await queue.aclose()

    assert commands == ["EVALSHA"] * 7
