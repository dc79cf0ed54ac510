"""Data in the same Redis that this app did not write reads as 404, never 500 or 503."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix
from asgi_lifespan import LifespanManager
from httpx import AsyncClient

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.main import create_app

from ..conftest import client_for, sync_client

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(redis_config: Config) -> AsyncIterator[AsyncClient]:
    app = create_app(redis_config)
    async with LifespanManager(app), client_for(app) as client:
        yield client


async def test_a_pickled_arq_job_is_not_found(api: AsyncClient, redis_config: Config) -> None:
    pickling = await create_pool(redis_config.arq_redis_settings)  # arq's default serializer
    job_id = f"pickled-{uuid.uuid4().hex}"
    try:
        assert await pickling.enqueue_job("ping", "x", _job_id=job_id) is not None
        assert (await api.get(f"/jobs/{job_id}")).status_code == 404
        assert (await api.delete(f"/jobs/{job_id}")).status_code == 404
        assert await pickling.zscore(redis_config.arq_queue_name, job_id) is not None  # untouched
    finally:
        await pickling.delete(job_key_prefix + job_id, result_key_prefix + job_id)
        await pickling.zrem(redis_config.arq_queue_name, job_id)
        await pickling.aclose()


async def test_keys_of_another_type_are_not_found(api: AsyncClient, redis_config: Config) -> None:
    job_id = f"hash-{uuid.uuid4().hex}"
    client = sync_client(redis_config)
    try:
        client.hset(job_key_prefix + job_id, "field", "value")
        for method in ("GET", "DELETE"):
            response = await api.request(method, f"/jobs/{job_id}")
            assert response.status_code == 404, (method, response.text)
    finally:
        client.delete(job_key_prefix + job_id)
        client.close()


async def test_records_of_another_shape_are_not_found(
    api: AsyncClient, redis_config: Config
) -> None:
    """Valid JSON in arq's keys, but not what arq writes: neither read nor acted on."""
    client = sync_client(redis_config)
    job_ids = []
    try:
        for field, value in [("a", 5), ("k", []), ("f", 5), ("q", 7), ("s", "yes")]:
            job_id = f"shaped-{field}-{uuid.uuid4().hex}"
            job_ids.append(job_id)
            record = {"t": 1, "f": "ping", "a": [], "k": {}, "et": 1, "s": True, "r": None}
            record.update({"st": 1, "ft": 2, "q": "arq:queue", "id": job_id, field: value})
            client.set(result_key_prefix + job_id, json.dumps(record))
            for method in ("GET", "DELETE"):
                response = await api.request(method, f"/jobs/{job_id}")
                assert response.status_code == 404, (field, method, response.text)
    finally:
        client.delete(*(result_key_prefix + job_id for job_id in job_ids))
        client.close()


async def test_a_foreign_running_job_is_not_asked_to_abort(
    api: AsyncClient, redis_config: Config
) -> None:
    pickling = await create_pool(redis_config.arq_redis_settings)
    job_id = f"pickled-running-{uuid.uuid4().hex}"
    try:
        await pickling.enqueue_job("ping", "x", _job_id=job_id)
        await pickling.set(in_progress_key_prefix + job_id, b"1")  # as a worker's claim
        assert (await api.delete(f"/jobs/{job_id}")).status_code == 404
        assert await pickling.zscore(abort_jobs_ss, job_id) is None
    finally:
        await pickling.delete(job_key_prefix + job_id, in_progress_key_prefix + job_id)
        await pickling.zrem(redis_config.arq_queue_name, job_id)
        await pickling.aclose()
