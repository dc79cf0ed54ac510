"""The wake-up pool, without Redis: how the worker gets it, and fences around the arq
internals it relies on (tests/integration/test_wakeup.py runs it with real workers)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import arq.utils
import pytest
from arq.worker import Worker
from pydantic import ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from {{ cookiecutter.package_name }}.config import HEALTH_KEY_MARGIN_S
from {{ cookiecutter.package_name }}.queue.redis import ENQUEUE_SCRIPT
from {{ cookiecutter.package_name }}.redis_dsn import parse_redis_dsn
from {{ cookiecutter.package_name }}.redis_pool import wake_channel
from {{ cookiecutter.package_name }}.worker.main import WorkerSettings, config
from {{ cookiecutter.package_name }}.worker.reconnect import WaitForRedis
from {{ cookiecutter.package_name }}.worker.wakeup import (
    SUBSCRIBER_PING_S,
    WakeUpRedis,
    _messages,
    _new_pool,
    wake_up_pool,
)

from ..conftest import make_config


def test_the_worker_gets_the_wake_up_pool_and_arq_check_the_settings() -> None:
    pool = WorkerSettings.redis_pool
    assert isinstance(pool, WakeUpRedis)
    assert pool.default_queue_name == WorkerSettings.queue_name == config.arq_queue_name
    assert pool.idle_poll_interval == config.worker_idle_poll_interval
    assert (pool.job_serializer, pool.job_deserializer) == (
        WorkerSettings.job_serializer,
        WorkerSettings.job_deserializer,
    )
    # The pool keeps the worker's wait through Redis outages; `arq --check` reads
    # redis_settings, which stay.
    kwargs = pool.connection_pool.connection_kwargs
    assert isinstance(kwargs["retry"], WaitForRedis)
    assert kwargs["host"] == WorkerSettings.redis_settings.host
    # arq's pause after a loop stays short, so a job enqueued just after another starts
    # at once; a worker that finds nothing to start waits for a signal instead.
    assert WorkerSettings.poll_delay == config.worker_poll_delay <= 0.01


def test_arq_reads_its_queue_the_way_the_wait_recognises() -> None:
    """WakeUpRedis waits in the read of `Worker._poll_iteration`: ZRANGEBYSCORE of the
    worker's queue from -inf to now, with a limit. If arq reads its queue another way,
    the worker silently goes back to polling every poll_delay: fail here instead."""
    source = inspect.getsource(Worker._poll_iteration)
    call = re.search(r"self\.pool\.zrangebyscore\((.*?)\)\n", source, re.DOTALL)
    assert call, "arq's poll no longer calls self.pool.zrangebyscore"
    arguments = " ".join(call.group(1).split())
    assert arguments.startswith("self.queue_name,"), arguments
    assert "min=float('-inf')" in arguments, arguments
    assert "num=count" in arguments, arguments
    assert "max=now" in arguments, arguments
    assert "withscores" not in arguments, arguments
    # The pool is used as given (Worker(redis_pool=...)), and its read is awaited
    # once an iteration, before the abort check, health key and cron.
    assert "self._pool = redis_pool" in inspect.getsource(Worker.__init__)
    assert "if self._pool is None:" in inspect.getsource(Worker.main)
    assert source.index("zrangebyscore") < source.index("_cancel_aborted_jobs")
    assert source.index("_cancel_aborted_jobs") < source.index("heart_beat")
    # A pool that is falsy until the first read makes close() skip its clean-up, as for
    # a worker that never connected (stopped while waiting for Redis at start-up).
    assert "if not self._pool:\n            return" in inspect.getsource(Worker.close)
    assert not wake_up_pool(WorkerSettings.redis_settings, queue_name="q", idle_poll_interval=1)


def test_arqs_poll_counts_the_wait_into_its_delay() -> None:
    """arq sleeps poll_delay minus the iteration's time: after a wait, it reads at once."""
    source = inspect.getsource(arq.utils.poll)
    assert "wait = max([0, step - after + before])" in source


def test_the_enqueue_script_publishes_only_when_asked() -> None:
    assert "redis.pcall('publish', ARGV[5], ARGV[4])" in ENQUEUE_SCRIPT
    assert wake_channel("arq:queue") == "arq:queue:wake"


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="idle_poll_interval must be 0 or more"):
        wake_up_pool(WorkerSettings.redis_settings, queue_name="q", idle_poll_interval=-1)


async def test_under_sentinel_the_subscriber_asks_the_same_sentinels() -> None:
    """The subscriber's own one-connection pool finds the master as the worker's pool
    does (so it follows a failover), without the pool's retry."""
    settings = parse_redis_dsn("redis+sentinel://s1,s2/mymaster")
    pool = wake_up_pool(settings, queue_name="q", idle_poll_interval=0.5)
    subscriber = _new_pool(pool.connection_pool, subscriber=True)
    try:
        assert isinstance(pool.connection_pool, SentinelConnectionPool)
        assert isinstance(subscriber, SentinelConnectionPool)
        assert subscriber.service_name == "mymaster"
        assert subscriber.sentinel_manager is pool.connection_pool.sentinel_manager
        assert subscriber.is_master
        assert subscriber.max_connections == 1
        assert subscriber.connection_kwargs["connection_pool"] == subscriber
        assert "retry" not in subscriber.connection_kwargs
    finally:
        await subscriber.aclose()
        await pool.aclose()


def test_idle_reads_come_often_enough_to_keep_arqs_health_key() -> None:
    """arq writes its health key in a read's iteration, at most every
    health_check_interval, and lets it expire HEALTH_KEY_MARGIN_S after that: the
    longest gap between reads (the idle interval plus poll_delay) must stay below it."""
    source = inspect.getsource(Worker.record_health)
    assert "int((self.health_check_interval + 1) * 1000)" in source
    assert HEALTH_KEY_MARGIN_S == 1
    make_config(worker_idle_poll_interval=0.9, worker_poll_delay=0.05)
    make_config(worker_idle_poll_interval=0, worker_poll_delay=0.95)
    with pytest.raises(ValidationError, match="must be below 1 s"):
        make_config(worker_idle_poll_interval=0.95, worker_poll_delay=0.05)
    with pytest.raises(ValidationError, match="must be below 1 s"):
        make_config(worker_idle_poll_interval=0, worker_poll_delay=1)
    with pytest.raises(ValidationError, match="busy loop"):
        make_config(worker_poll_delay=0)
    with pytest.raises(ValidationError, match="busy loop"):
        make_config(worker_idle_poll_interval=0, worker_poll_delay=0.001)
    with pytest.raises(ValidationError, match="busy loop"):
        make_config(worker_idle_poll_interval=0.001)


class QuietPubSub:
    """A subscription that hears what `replies` holds, then nothing; pings are counted."""

    def __init__(self, *replies: dict[str, Any] | None) -> None:
        self.replies = list(replies)
        self.pings = 0

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        assert timeout == SUBSCRIBER_PING_S
        return self.replies.pop(0) if self.replies else None

    async def ping(self) -> None:
        self.pings += 1


async def test_a_silent_subscription_is_pinged_then_given_up() -> None:
    pubsub = QuietPubSub({"type": "subscribe"}, None, {"type": "pong"}, {"type": "message"})
    kinds = []

    async def listen() -> None:
        async for kind in _messages(pubsub):  # type: ignore[arg-type]
            kinds.append(kind)

    with pytest.raises(RedisConnectionError, match="no answer to a ping"):
        await listen()
    # Quiet once: pinged, answered; quiet again: pinged, no answer: given up.
    assert kinds == ["subscribe", "pong", "message"]
    assert pubsub.pings == 2
