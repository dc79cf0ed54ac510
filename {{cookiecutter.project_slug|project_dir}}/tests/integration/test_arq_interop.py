"""Fences around what the queue client relies on in arq: arq's own readers read our jobs,
ours read the jobs arq enqueues, and our pool is built like `arq.create_pool`'s.

An arq upgrade that changes its keys, records or pool settings fails here."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.queue import RedisArqQueue
from {{ cookiecutter.package_name }}.redis_dsn import parse_redis_dsn
from {{ cookiecutter.package_name }}.redis_pool import connect_pool
from {{ cookiecutter.package_name }}.serialization import deserialize, serialize

from ..conftest import Harness

pytestmark = pytest.mark.integration


@pytest.fixture
async def pools(redis_config: Config) -> AsyncIterator[tuple[RedisArqQueue, ArqRedis, Harness]]:
    """Our client and arq's own pool (with our serializer) on one fresh queue."""
    queue_name = f"test:{uuid.uuid4().hex}"
    settings = redis_config.arq_redis_settings
    ours = RedisArqQueue.from_settings(settings, default_queue_name=queue_name)
    arqs = await create_pool(
        settings,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )
    harness = Harness(ours, settings)
    try:
        yield ours, arqs, harness
    finally:
        await harness.aclose()
        await arqs.aclose()


async def test_arq_reads_the_jobs_we_write(
    pools: tuple[RedisArqQueue, ArqRedis, Harness],
) -> None:
    ours, arqs, harness = pools
    queued = await ours.enqueue("succeed", 21, factor=3)
    deferred = await ours.enqueue("succeed", 1, _defer_by=300)

    job = Job(queued.id, arqs, _queue_name=ours.default_queue_name, _deserializer=deserialize)
    assert await job.status() == JobStatus.queued
    info = await job.info()
    assert info is not None
    assert (info.function, tuple(info.args), info.kwargs) == ("succeed", (21,), {"factor": 3})
    later = Job(deferred.id, arqs, _queue_name=ours.default_queue_name, _deserializer=deserialize)
    assert await later.status() == JobStatus.deferred
    assert {j.job_id for j in await arqs.queued_jobs()} == {queued.id, deferred.id}

    # arq's own abort of our deferred job: the worker cancels it; we read the cancellation.
    aborted, _ = await asyncio.gather(later.abort(timeout=10, poll_delay=0.05), harness.run_all())
    assert aborted is True
    assert await job.result(timeout=5) == 63
    assert {queued.id, deferred.id} <= {r.job_id for r in await arqs.all_job_results()}
    cancelled = await ours.get_job_result(deferred.id)
    assert cancelled.error is not None
    assert cancelled.error.type == "CancelledError"


async def test_we_read_the_jobs_arq_writes(pools: tuple[RedisArqQueue, ArqRedis, Harness]) -> None:
    ours, arqs, harness = pools
    job_id = f"arq-{uuid.uuid4().hex}"
    try:
        assert await arqs.enqueue_job("succeed", 4, _job_id=job_id, factor=5) is not None
        metadata = await ours.get_job_metadata(job_id)
        assert (metadata.status, metadata.name) == (JobStatus.queued, "succeed")
        assert (metadata.args, metadata.kwargs) == ((4,), {"factor": 5})
        assert await arqs.enqueue_job("succeed", 4, _job_id=job_id) is None  # both refuse it
        await harness.run_all()
        result = await ours.get_job_result(job_id)
        assert (result.success, result.result) == (True, 20)
    finally:  # arq's pool wrote these keys, so the cleanup fixture does not know them
        await arqs.delete(job_key_prefix + job_id, result_key_prefix + job_id)


async def test_our_pool_is_built_like_arqs(redis_config: Config) -> None:
    settings = dataclasses.replace(  # a copy: the fixture's settings serve other tests
        redis_config.arq_redis_settings,
        retry=Retry(ConstantBackoff(0.1), 2),
        retry_on_error=[RedisConnectionError],
        max_connections=7,
        conn_timeout=3,
    )
    ours = connect_pool(settings, default_queue_name="q")
    arqs = await create_pool(settings, default_queue_name="q")
    try:
        ours_kwargs = ours.connection_pool.connection_kwargs
        arqs_kwargs = arqs.connection_pool.connection_kwargs
        assert ours_kwargs.keys() == arqs_kwargs.keys()
        for key, value in arqs_kwargs.items():
            if key == "retry":
                assert ours_kwargs[key]._retries == value._retries
            else:
                assert ours_kwargs[key] == value, key
        assert ours.connection_pool.connection_class is arqs.connection_pool.connection_class
        assert ours.connection_pool.max_connections == arqs.connection_pool.max_connections
        assert ours.expires_extra_ms == arqs.expires_extra_ms
    finally:
        await ours.aclose()
        await arqs.aclose()


# What connect_pool passes to a Sentinel pool beyond arq's create_pool, which drops them
# there: without the retry the worker would exit at a failover, and a TLS option in the
# DSN would be ignored.
SENTINEL_EXTRAS = {"socket_connect_timeout", "retry", "retry_on_timeout", "retry_on_error"}
SENTINEL_TLS_EXTRAS = {
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
}


@pytest.mark.parametrize(
    "dsn",
    [
        "redis+sentinel://app:pw@127.0.0.1:26379,[::1]:26380/cache/2",
        "rediss+sentinel://127.0.0.1/mymaster?ssl_cert_reqs=optional&ssl_ca_certs=/ca.pem",
    ],
)
async def test_our_sentinel_pool_is_built_like_arqs(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything arq's Sentinel pool sets, ours sets alike; ours adds only SENTINEL_EXTRAS.

    No sentinel runs here: create_pool's start-up ping is all that would need one.
    """

    async def no_ping(self: ArqRedis) -> bool:
        return True

    settings = dataclasses.replace(
        parse_redis_dsn(dsn),
        retry=Retry(ConstantBackoff(0.1), 2),
        retry_on_error=[RedisConnectionError],
        max_connections=7,
        conn_timeout=3,
    )
    ours = connect_pool(settings, default_queue_name="q")
    monkeypatch.setattr(ArqRedis, "ping", no_ping)
    arqs = await create_pool(settings, default_queue_name="q")
    try:
        ours_pool, arqs_pool = ours.connection_pool, arqs.connection_pool
        assert isinstance(ours_pool, SentinelConnectionPool)
        assert isinstance(arqs_pool, SentinelConnectionPool)
        assert ours_pool.connection_class is arqs_pool.connection_class
        assert (ours_pool.service_name, ours_pool.is_master) == (
            arqs_pool.service_name,
            arqs_pool.is_master,
        )
        ours_kwargs, arqs_kwargs = ours_pool.connection_kwargs, arqs_pool.connection_kwargs
        extras = SENTINEL_EXTRAS | (SENTINEL_TLS_EXTRAS if settings.ssl else set())
        assert ours_kwargs.keys() - arqs_kwargs.keys() == extras
        for key, value in arqs_kwargs.items():
            if key != "connection_pool":  # each pool's own
                assert ours_kwargs[key] == value, key
        assert ours_kwargs["retry"] is settings.retry
        assert ours_kwargs["retry_on_error"] == [RedisConnectionError]
        assert ours_kwargs["socket_connect_timeout"] == 3
        for key in extras & SENTINEL_TLS_EXTRAS:
            assert ours_kwargs[key] == getattr(settings, key), key
        assert ours_pool.max_connections == 7  # arq's: redis-py's default
        ours_sentinels = ours_pool.sentinel_manager.sentinels
        arqs_sentinels = arqs_pool.sentinel_manager.sentinels
        for mine, theirs in zip(ours_sentinels, arqs_sentinels, strict=True):
            theirs_kwargs = theirs.connection_pool.connection_kwargs
            mine_kwargs = mine.connection_pool.connection_kwargs
            # The sentinels: the same addresses and settings but our connect and read
            # timeouts (a sentinel that never answers is skipped).
            assert mine_kwargs.keys() == theirs_kwargs.keys()
            differ = {k for k, v in theirs_kwargs.items() if mine_kwargs[k] != v}
            assert differ == {"socket_connect_timeout", "socket_timeout"}
            assert mine_kwargs["socket_connect_timeout"] == 3
            assert mine_kwargs["socket_timeout"] == 3
        assert ours.expires_extra_ms == arqs.expires_extra_ms
    finally:
        await ours.aclose()
        await arqs.aclose()
