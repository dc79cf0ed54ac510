"""The `ArqRedis` pool of the API and the worker, built from arq's `RedisSettings`.

Apart from the queue client (queue/), so the worker builds its pool without
importing the API's metrics.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio.sentinel import Sentinel

from .serialization import deserialize, serialize

__all__ = ["connect_pool", "wake_channel"]

# Appended to a queue's name: the pub/sub channel its workers wait on (worker/wakeup.py).
WAKE_CHANNEL_SUFFIX = ":wake"


def wake_channel(queue_name: str) -> str:
    """The channel whose messages wake the idle workers of ``queue_name``."""
    return queue_name + WAKE_CHANNEL_SUFFIX


def connect_pool(settings: RedisSettings, *, default_queue_name: str) -> ArqRedis:
    """An `ArqRedis` pool built from every setting `arq.create_pool` uses, minus its
    start-up ping: it connects on first use and reconnects after Redis comes back, so the
    app can start (and recover) while Redis is down.

    With ``settings.sentinel`` it is arq's Sentinel pool (`Sentinel(...).master_for(...)`,
    which asks the sentinels for the master on every new connection), plus what arq drops
    there: the connect timeout, the retry settings (the worker's `WaitForRedis`), the pool
    size and the TLS options. tests/integration/test_arq_interop.py fails if arq would
    build its pool differently."""
    if settings.sentinel:
        pool = _sentinel_pool(settings)
    else:
        pool = ArqRedis(
            host=settings.host,
            port=settings.port,
            unix_socket_path=settings.unix_socket_path,
            socket_connect_timeout=settings.conn_timeout,
            ssl=settings.ssl,
            **_tls_options(settings),
            retry=settings.retry,
            retry_on_timeout=settings.retry_on_timeout,
            retry_on_error=settings.retry_on_error,
            max_connections=settings.max_connections,
            db=settings.database,
            username=settings.username,
            password=settings.password,
            encoding="utf8",
        )
    pool.job_serializer = serialize
    pool.job_deserializer = deserialize
    pool.default_queue_name = default_queue_name
    return pool


def _tls_options(settings: RedisSettings) -> dict[str, Any]:
    return {
        "ssl_keyfile": settings.ssl_keyfile,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_cert_reqs": settings.ssl_cert_reqs,
        "ssl_ca_certs": settings.ssl_ca_certs,
        "ssl_ca_data": settings.ssl_ca_data,
        "ssl_check_hostname": settings.ssl_check_hostname,
    }


def _sentinel_pool(settings: RedisSettings) -> ArqRedis:
    if isinstance(settings.host, str):
        raise ValueError("Redis Sentinel needs a list of (host, port) sentinels, not one host")
    # The sentinels themselves get only socket options (redis-py's `sentinel_kwargs`): no
    # password, no TLS, as with arq, and no retry, so a sentinel that is down is skipped
    # for the next one instead of being waited for; a read timeout too, so one that
    # accepts but never answers is skipped as well (the worker's calls have no other).
    timeouts = {"socket_connect_timeout": settings.conn_timeout}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        settings.host,
        sentinel_kwargs=timeouts | {"socket_timeout": settings.conn_timeout},
        ssl=settings.ssl,
        **timeouts,
        retry=settings.retry,
        retry_on_timeout=settings.retry_on_timeout,
        retry_on_error=list(settings.retry_on_error or ()),
        db=settings.database,
        username=settings.username,
        password=settings.password,
        encoding="utf8",
        # What redis-py's Redis() does: the TLS options only with ssl, since the plain
        # connection class takes none of them.
        **(_tls_options(settings) if settings.ssl else {}),
    )
    pool: ArqRedis = sentinel.master_for(
        settings.sentinel_master, redis_class=ArqRedis, max_connections=settings.max_connections
    )
    return pool
