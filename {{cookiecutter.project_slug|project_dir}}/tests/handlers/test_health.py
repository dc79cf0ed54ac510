from __future__ import annotations

from asgi_lifespan import LifespanManager
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.config import ArqMode
from {{ cookiecutter.package_name }}.main import create_app

from ..conftest import client_for, make_config


async def test_liveness_and_readiness_in_mock_mode(client: AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok", "reason": None}
    assert (await client.get("/health/ready")).status_code == 200


async def test_health_answers_head_too(client: AsyncClient) -> None:
    assert (await client.head("/health")).status_code == 200
    assert (await client.head("/health/ready")).status_code == 200


async def test_redis_down_gives_503_not_500_and_the_app_still_starts() -> None:
    # Nothing listens on port 1: the app must start, and say 503 with a reason.
    config = make_config(arq_mode=ArqMode.production, arq_queue_url="redis://127.0.0.1:1/0")
    app = create_app(config)
    async with LifespanManager(app), client_for(app) as client:
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["reason"] == "the job queue (Redis) is unavailable"  # no host
        enqueue = await client.post("/jobs/ping", json={})
        assert enqueue.status_code == 503
        assert enqueue.json() == {"detail": "the job queue is unavailable, try again later"}
        assert enqueue.headers["retry-after"] == "5"
        assert (await client.get("/jobs/anything")).status_code == 503
