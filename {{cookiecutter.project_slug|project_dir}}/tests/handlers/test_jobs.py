"""Job routes in mock mode: jobs are moved along with set_in_progress/set_complete."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.dependencies.arq import arq_dependency
from {{ cookiecutter.package_name }}.queue import JobResult, JobResultUnavailable, MockArqQueue

from ..conftest import client_for


async def test_enqueue_ping_then_follow_it_to_completion(
    client: AsyncClient, mock_queue: MockArqQueue
) -> None:
    response = await client.post("/jobs/ping", json={"message": "hello"})

    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued"
    assert job["name"] == "ping"
    assert response.headers["location"] == f"/jobs/{job['id']}"

    await mock_queue.set_in_progress(job["id"])
    response = await client.get(f"/jobs/{job['id']}")
    assert response.json()["status"] == "in_progress"
    assert response.json()["result"] is None

    await mock_queue.set_complete(job["id"], result="hello")
    response = await client.get(f"/jobs/{job['id']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["success"], body["result"]) == ("complete", True, "hello")
    assert body["start_time"] is not None
    assert body["finish_time"] is not None


async def test_location_is_below_the_root_path_behind_a_proxy(app: FastAPI) -> None:
    async with client_for(app, root_path="/api") as client:
        first = await client.post("/api/jobs/ping", json={"job_id": "behind-proxy"})
        second = await client.post("/api/jobs/ping", json={"job_id": "behind-proxy"})
        followed = await client.get(first.headers["location"])

    assert first.headers["location"] == second.headers["location"] == "/api/jobs/ping:behind-proxy"
    assert followed.json()["id"] == "ping:behind-proxy"


async def test_a_failed_job_shows_its_error(client: AsyncClient, mock_queue: MockArqQueue) -> None:
    job = (await client.post("/jobs/sync-invoice", json={"invoice_id": "INV-1"})).json()
    await mock_queue.set_in_progress(job["id"])
    await mock_queue.set_complete(job["id"], result=RuntimeError("upstream 503"), success=False)

    body = (await client.get(f"/jobs/{job['id']}")).json()

    assert body["success"] is False
    assert body["error"] == {"type": "RuntimeError", "message": "upstream 503"}


async def test_duplicate_job_id_answers_409_with_the_existing_job(
    client: AsyncClient, mock_queue: MockArqQueue
) -> None:
    first = await client.post("/jobs/ping", json={"job_id": "nightly-1"})
    second = await client.post("/jobs/ping", json={"job_id": "nightly-1", "message": "other"})

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.headers["location"] == "/jobs/ping:nightly-1"
    assert second.json()["job_id"] == "ping:nightly-1"
    stored = await mock_queue.get_job_metadata("ping:nightly-1")
    assert stored.args == ("pong",)  # no second job replaced the first


async def test_sync_invoice_is_idempotent_per_invoice(client: AsyncClient) -> None:
    first = await client.post("/jobs/sync-invoice", json={"invoice_id": "INV-7"})
    again = await client.post("/jobs/sync-invoice", json={"invoice_id": "INV-7"})
    other = await client.post("/jobs/sync-invoice", json={"invoice_id": "INV-8"})

    assert (first.status_code, again.status_code, other.status_code) == (202, 409, 202)
    assert first.json()["id"] == "sync-invoice-INV-7"
    assert again.headers["location"].endswith("/jobs/sync-invoice-INV-7")


async def test_deferred_ping_reports_deferred(client: AsyncClient) -> None:
    job = (await client.post("/jobs/ping", json={"defer_by": 60})).json()
    assert job["status"] == "deferred"
    assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "deferred"


async def test_invalid_bodies_are_422(client: AsyncClient) -> None:
    for path, body in [
        ("/jobs/ping", {"message": "x" * 1001}),
        ("/jobs/ping", {"job_id": "has spaces"}),
        ("/jobs/ping", {"defer_by": -1}),
        ("/jobs/sync-invoice", {}),
        ("/jobs/sync-invoice", {"invoice_id": "../etc/passwd"}),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == 422, (path, body)


async def test_unknown_job_is_404(client: AsyncClient) -> None:
    assert (await client.get("/jobs/nope")).status_code == 404
    assert (await client.delete("/jobs/nope")).status_code == 404


async def test_abort_removes_a_queued_job(client: AsyncClient) -> None:
    job = (await client.post("/jobs/ping", json={})).json()

    assert (await client.delete(f"/jobs/{job['id']}")).status_code == 204
    assert (await client.get(f"/jobs/{job['id']}")).status_code == 404


async def test_abort_cancels_a_running_job(client: AsyncClient, mock_queue: MockArqQueue) -> None:
    job = (await client.post("/jobs/ping", json={})).json()
    await mock_queue.set_in_progress(job["id"])

    assert (await client.delete(f"/jobs/{job['id']}")).status_code == 204
    body = (await client.get(f"/jobs/{job['id']}")).json()
    assert (body["status"], body["success"]) == ("complete", False)
    assert body["error"]["type"] == "CancelledError"


async def test_abort_of_a_finished_job_is_409(
    client: AsyncClient, mock_queue: MockArqQueue
) -> None:
    job = (await client.post("/jobs/ping", json={})).json()
    await mock_queue.set_in_progress(job["id"])
    await mock_queue.set_complete(job["id"], result="pong")

    response = await client.delete(f"/jobs/{job['id']}")
    assert response.status_code == 409
    assert response.json() == {"detail": f"job {job['id']} already finished"}


async def test_abort_unconfirmed_by_the_worker_is_202(app: FastAPI) -> None:
    queue = await arq_dependency()
    assert isinstance(queue, MockArqQueue)
    queue.confirm_aborts = False  # a worker that does not see the request in time
    async with client_for(app) as client:
        job = (await client.post("/jobs/ping", json={})).json()
        await queue.set_in_progress(job["id"])

        response = await client.delete(f"/jobs/{job['id']}")
        assert response.status_code == 202
        assert response.json() == {"detail": "abort requested: the worker has not confirmed it yet"}
        assert (await client.get(f"/jobs/{job['id']}")).json()["status"] == "in_progress"


async def test_routes_are_documented(client: AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/jobs/ping",
        "/jobs/sync-invoice",
        "/jobs/{job_id}",
        "/health",
        "/health/ready",
    } <= set(paths)
    assert "409" in paths["/jobs/ping"]["post"]["responses"]


async def test_a_job_that_finishes_between_the_reads_shows_its_result(
    client: AsyncClient, mock_queue: MockArqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = (await client.post("/jobs/ping", json={})).json()
    await mock_queue.set_in_progress(job["id"])
    read_result = mock_queue.get_job_result

    async def finishes_meanwhile(job_id: str, queue_name: str | None = None) -> JobResult:
        monkeypatch.setattr(mock_queue, "get_job_result", read_result)
        await mock_queue.set_complete(job_id, result="pong")
        raise JobResultUnavailable(job_id)

    monkeypatch.setattr(mock_queue, "get_job_result", finishes_meanwhile)
    body = (await client.get(f"/jobs/{job['id']}")).json()
    assert (body["status"], body["success"], body["result"]) == ("complete", True, "pong")
