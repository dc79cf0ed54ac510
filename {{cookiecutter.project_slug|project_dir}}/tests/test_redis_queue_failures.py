"""RedisArqQueue when Redis fails: every call ends in `QueueUnavailable`, never hangs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from arq.connections import RedisSettings

from {{ cookiecutter.package_name }}.queue import QueueUnavailable, RedisArqQueue
from {{ cookiecutter.package_name }}.redis_pool import connect_pool


@pytest.fixture
async def silent_redis() -> AsyncIterator[int]:
    """A port that accepts connections and reads commands but never answers."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def queue_on(port: int, timeout: float = 5.0) -> RedisArqQueue:
    pool = connect_pool(RedisSettings(port=port), default_queue_name="arq:queue")
    return RedisArqQueue(pool, timeout=timeout)


async def test_a_redis_that_never_answers_times_out(silent_redis: int) -> None:
    queue = queue_on(silent_redis, timeout=0.2)
    try:
        for call in (
            queue.enqueue("ping"),
            queue.get_job_metadata("some-job"),
            queue.abort_job("some-job"),
            queue.ping(),
        ):
            with pytest.raises(QueueUnavailable, match=r"did not answer in 0\.2 s"):
                await asyncio.wait_for(call, timeout=5)
    finally:
        await queue.aclose()


async def test_a_redis_that_is_down_is_unavailable() -> None:
    queue = queue_on(closed_port())
    try:
        with pytest.raises(QueueUnavailable, match="ConnectionError"):
            await queue.enqueue("ping")
    finally:
        await queue.aclose()
