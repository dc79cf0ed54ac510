"""What a hostile or careless client may send: each gets a 4xx with a short body, never a 500,
and no client input names a Redis key or takes another function's job id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.config import Config

from ..conftest import make_config

MAX_BODY = 2048


@pytest.fixture
def config() -> Config:
    return make_config(api_max_body_bytes=MAX_BODY)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "false", '"5"'])
async def test_defer_by_must_be_a_finite_number(client: AsyncClient, value: str) -> None:
    body = '{"defer_by": ' + value + "}"
    headers = {"Content-Type": "application/json"}
    response = await client.post("/jobs/ping", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "defer_by"]


async def test_lone_surrogates_are_refused_and_the_answer_still_encodes(
    client: AsyncClient,
) -> None:
    body = '{"message": "\\ud800", "job_id": "\\udfff"}'
    headers = {"Content-Type": "application/json"}
    response = await client.post("/jobs/ping", content=body, headers=headers)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {tuple(error["loc"]) for error in errors} == {("body", "message"), ("body", "job_id")}


async def test_inputs_are_cut_short_in_422_answers(client: AsyncClient) -> None:
    response = await client.post("/jobs/sync-invoice", json={"invoice_id": "x" * 1500})
    assert response.status_code == 422
    assert len(response.content) < 600
    (error,) = response.json()["detail"]
    assert error["input"] == "x" * 100 + "..."


async def test_bodies_over_the_limit_are_413(client: AsyncClient) -> None:
    big = json.dumps({"invoice_id": "x" * MAX_BODY})
    response = await client.post("/jobs/sync-invoice", content=big)
    assert response.status_code == 413
    assert response.json() == {"detail": f"the request body is larger than {MAX_BODY} bytes"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 1024  # no Content-Length: the limit counts what arrives

    response = await client.post(
        "/jobs/ping", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_405_names_every_method_of_the_path(client: AsyncClient) -> None:
    response = await client.options("/jobs/some-job")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


async def test_client_job_ids_cannot_take_another_functions_ids(client: AsyncClient) -> None:
    squat = await client.post(
        "/jobs/ping", json={"job_id": "sync-invoice-inv42", "defer_by": 86400}
    )
    assert squat.status_code == 202
    assert squat.json()["id"] == "ping:sync-invoice-inv42"
    sync = await client.post("/jobs/sync-invoice", json={"invoice_id": "inv42"})
    assert sync.status_code == 202
    cron_like = await client.post("/jobs/ping", json={"job_id": "cron:cleanup_synced_invoices:1"})
    assert cron_like.status_code == 422  # ":" is not allowed in a client's id


async def test_queue_names_are_not_for_clients(client: AsyncClient) -> None:
    job = (await client.post("/jobs/ping", json={})).json()
    for query in ("?queue_name={{ cookiecutter.package_name }}:invoices:synced", "?queue_name=x"):
        found = await client.get(f"/jobs/{job['id']}{query}")
        assert (found.status_code, found.json()["queue_name"]) == (200, "arq:queue")
    assert (await client.delete(f"/jobs/{job['id']}?queue_name=x")).status_code == 204
