"""GET /metrics in mock mode: requests by route template, enqueues by outcome, the queue."""

from __future__ import annotations

from asgi_lifespan import LifespanManager
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.config import ArqMode
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.queue import MockArqQueue

from ..conftest import client_for, make_config
from ..metrics_text import sample


async def metrics(client: AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def count(text: str, name: str, **labels: str) -> float:
    return sample(text, name, **labels) or 0.0


async def test_enqueues_are_counted_by_function_and_outcome(client: AsyncClient) -> None:
    before = await metrics(client)
    await client.post("/jobs/ping", json={"job_id": "counted"})
    await client.post("/jobs/ping", json={"job_id": "counted"})  # 409
    await client.post("/jobs/sync-invoice", json={"invoice_id": "INV-9"})
    after = await metrics(client)

    def delta(function: str, outcome: str) -> float:
        labels = {"function": function, "outcome": outcome}
        name = "arq_jobs_enqueued_total"
        return count(after, name, **labels) - count(before, name, **labels)

    assert (delta("ping", "accepted"), delta("ping", "duplicate")) == (1, 1)
    assert delta("sync_invoice", "accepted") == 1


async def test_requests_are_counted_by_route_template(client: AsyncClient) -> None:
    before = await metrics(client)
    await client.get("/jobs/one")
    await client.get("/jobs/two")
    await client.get("/no/such/route")
    await client.request("BREW", "/health")
    after = await metrics(client)

    def delta(**labels: str) -> float:
        name = "http_requests_total"
        return count(after, name, **labels) - count(before, name, **labels)

    assert delta(method="GET", route="/jobs/{job_id}", status="404") == 2
    assert delta(method="GET", route="unmatched", status="404") == 1
    assert delta(method="other", route="/health", status="405") == 1
    assert count(after, "http_request_duration_seconds_count", route="/jobs/{job_id}") >= 2


async def test_the_queue_is_read_at_each_scrape(
    client: AsyncClient, mock_queue: MockArqQueue
) -> None:
    await client.post("/jobs/ping", json={})
    await client.post("/jobs/ping", json={"defer_by": 600})
    text = await metrics(client)
    queue = mock_queue.default_queue_name
    assert sample(text, "arq_queue_jobs", queue=queue, state="ready") == 1
    assert sample(text, "arq_queue_jobs", queue=queue, state="deferred") == 1
    assert (sample(text, "arq_queue_oldest_ready_job_age_seconds", queue=queue) or 0) >= 0
    assert sample(text, "arq_queue_worker_alive", queue=queue) == 0  # no worker in mock mode
    assert sample(text, "arq_redis_up") == 1


async def test_a_redis_outage_shows_in_the_metrics() -> None:
    config = make_config(arq_mode=ArqMode.production, arq_queue_url="redis://127.0.0.1:1/0")
    app = create_app(config)
    async with LifespanManager(app), client_for(app) as client:
        before = await metrics(client)
        assert (await client.post("/jobs/ping", json={})).status_code == 503
        after = await metrics(client)
    labels = {"function": "ping", "outcome": "unavailable"}
    name = "arq_jobs_enqueued_total"
    assert count(after, name, **labels) - count(before, name, **labels) == 1
    assert sample(after, "arq_redis_up") == 0
