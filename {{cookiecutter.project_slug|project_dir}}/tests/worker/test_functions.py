"""Job functions called directly with a test ctx: fake Redis, fake upstream API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from arq import Retry
from fakeredis import FakeAsyncRedis

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.worker.functions.cleanup import cleanup_synced_invoices
from {{ cookiecutter.package_name }}.worker.functions.ping import ping
from {{ cookiecutter.package_name }}.worker.functions.sync_invoice import (
    SYNCED_INDEX,
    InvoiceNotFound,
    UpstreamError,
    invoice_key,
    sync_invoice,
)
from {{ cookiecutter.package_name }}.worker.retries import backoff

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
async def redis() -> AsyncIterator[FakeAsyncRedis]:
    client = FakeAsyncRedis()
    yield client
    await client.aclose()


def make_ctx(redis: FakeAsyncRedis, handler: Handler, job_try: int = 1) -> dict[str, Any]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api")
    config = Config(worker_max_tries=3, worker_retry_backoff=2.0)
    return {"redis": redis, "http": http, "config": config, "job_try": job_try, "job_id": "j"}


def invoice_api(request: httpx.Request) -> httpx.Response:
    invoice_id = request.url.path.rsplit("/", 1)[-1]
    if invoice_id == "missing":
        return httpx.Response(404)
    return httpx.Response(200, json={"id": invoice_id, "total": 42})


async def test_ping_returns_its_message() -> None:
    assert await ping({}, "hi") == "hi"
    assert await ping({}) == "pong"


async def test_sync_invoice_stores_the_invoice_and_is_idempotent(redis: FakeAsyncRedis) -> None:
    ctx = make_ctx(redis, invoice_api)

    first = await sync_invoice(ctx, "INV-1")
    second = await sync_invoice(ctx, "INV-1")

    assert first == second == {"invoice_id": "INV-1", "synced": True}
    assert json.loads(await redis.get(invoice_key("INV-1"))) == {"id": "INV-1", "total": 42}
    assert await redis.zcard(SYNCED_INDEX) == 1


async def test_sync_invoice_fails_at_once_for_a_missing_invoice(redis: FakeAsyncRedis) -> None:
    with pytest.raises(InvoiceNotFound):
        await sync_invoice(make_ctx(redis, invoice_api), "missing")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_sync_invoice_retries_with_backoff_then_fails_with_the_cause(
    redis: FakeAsyncRedis, status: int
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status)

    with pytest.raises(Retry) as retry:
        await sync_invoice(make_ctx(redis, down, job_try=1), "INV-2")
    assert retry.value.defer_score == 2000
    with pytest.raises(Retry) as retry:
        await sync_invoice(make_ctx(redis, down, job_try=2), "INV-2")
    assert retry.value.defer_score == 4000
    with pytest.raises(UpstreamError, match=str(status)):
        await sync_invoice(make_ctx(redis, down, job_try=3), "INV-2")
    assert await redis.get(invoice_key("INV-2")) is None


async def test_sync_invoice_retries_when_the_api_is_unreachable(redis: FakeAsyncRedis) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Retry):
        await sync_invoice(make_ctx(redis, unreachable), "INV-3")
    with pytest.raises(UpstreamError, match="unreachable"):
        await sync_invoice(make_ctx(redis, unreachable, job_try=3), "INV-3")


async def test_sync_invoice_does_not_retry_client_errors(redis: FakeAsyncRedis) -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403)

    with pytest.raises(UpstreamError, match="403"):
        await sync_invoice(make_ctx(redis, forbidden), "INV-4")


def test_backoff_doubles() -> None:
    config = Config(worker_retry_backoff=1.5)
    assert [backoff(config, n) for n in (1, 2, 3)] == [1.5, 3.0, 6.0]


async def test_cleanup_removes_only_old_invoices(redis: FakeAsyncRedis) -> None:
    ctx = make_ctx(redis, invoice_api)
    now = time.time()
    old = now - 31 * 86400
    for invoice_id, synced_at in [("old-1", old), ("old-2", old - 5), ("new", now)]:
        await redis.set(invoice_key(invoice_id), "{}")
        await redis.zadd(SYNCED_INDEX, {invoice_id: synced_at})

    assert await cleanup_synced_invoices(ctx) == 2

    assert await redis.exists(invoice_key("old-1"), invoice_key("old-2")) == 0
    assert await redis.exists(invoice_key("new")) == 1
    assert await redis.zrange(SYNCED_INDEX, 0, -1) == [b"new"]
    assert await cleanup_synced_invoices(ctx) == 0
