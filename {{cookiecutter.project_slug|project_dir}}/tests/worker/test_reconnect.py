"""The worker's Redis settings wait out outages; the API's and `arq --check`'s do not."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import socket
import uuid
from collections.abc import Callable

import pytest
from arq.connections import create_pool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    RedisError,
    ResponseError,
    WatchError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.redis_dsn import RedactedRedisSettings, parse_redis_dsn
from {{ cookiecutter.package_name }}.worker import reconnect
from {{ cookiecutter.package_name }}.worker.main import WorkerSettings, config
from {{ cookiecutter.package_name }}.worker.reconnect import (
    BACKOFF_CAP_S,
    CappedBackoff,
    RedisOutage,
    WaitForRedis,
    worker_redis_settings,
)
from {{ cookiecutter.package_name }}.worker.wakeup import wake_up_pool

from ..conftest import sync_client

WORKER_ARGV = ["arq", "{{ cookiecutter.package_name }}.worker.main.WorkerSettings"]
CHECK_ARGV = ["arq", "--check", "{{ cookiecutter.package_name }}.worker.main.WorkerSettings"]


class Flaky:
    """A Redis call that fails `failures` times with `error`, then answers "ok"."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0
        self.failed: list[BaseException] = []
        self.retried = asyncio.Event()

    async def do(self) -> str:
        self.calls += 1
        if self.calls > 1:
            self.retried.set()
        if self.calls <= self.failures:
            raise self.error
        return "ok"

    async def fail(self, error: RedisError) -> None:
        self.failed.append(error)


def instant(outage: RedisOutage | None = None) -> WaitForRedis:
    """A `WaitForRedis` that does not sleep between tries."""
    return WaitForRedis(outage, backoff=CappedBackoff(cap=0, base=0))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- The settings ---------------------------------------------------------


def test_worker_settings_keep_every_field_and_add_the_retry() -> None:
    settings = parse_redis_dsn(
        "rediss://app:s3cret@redis.example:6380/3?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem"
    )

    worker = worker_redis_settings(settings, argv=WORKER_ARGV)

    assert type(worker) is RedactedRedisSettings
    changed = {"retry", "retry_on_error"}
    for field in dataclasses.fields(settings):
        if field.name not in changed:
            assert getattr(worker, field.name) == getattr(settings, field.name), field.name
    assert (worker.host, worker.port, worker.database) == ("redis.example", 6380, 3)
    assert isinstance(worker.retry, WaitForRedis)
    assert worker.retry_on_error is not None
    assert {RedisConnectionError, RedisTimeoutError} <= set(worker.retry_on_error)
    assert "s3cret" not in repr(worker)
    # The API's settings (the same object in Config) are left as they were.
    assert (settings.retry, settings.retry_on_error) == (None, None)


def test_arq_check_gets_the_settings_as_they_are() -> None:
    """The HEALTHCHECK must fail while Redis is down, not wait for it."""
    settings = parse_redis_dsn("redis://localhost:6379/0")
    assert worker_redis_settings(settings, argv=CHECK_ARGV) is settings


def test_the_worker_waits_and_the_api_does_not() -> None:
    assert isinstance(WorkerSettings.redis_settings.retry, WaitForRedis)
    assert config.arq_redis_settings.retry is None
    worker_fields = dataclasses.asdict(WorkerSettings.redis_settings)
    api_fields = dataclasses.asdict(config.arq_redis_settings)
    assert {k for k in worker_fields if worker_fields[k] != api_fields[k]} == {
        "retry",
        "retry_on_error",
    }


async def test_under_sentinel_the_worker_gets_a_pool_that_waits() -> None:
    """arq's create_pool drops `retry` for Sentinel; the worker's own pool keeps it."""
    settings = parse_redis_dsn("redis+sentinel://s1,s2/mymaster")
    pool = wake_up_pool(
        worker_redis_settings(settings, argv=WORKER_ARGV), queue_name="q", idle_poll_interval=0.5
    )
    try:
        kwargs = pool.connection_pool.connection_kwargs
        assert isinstance(kwargs["retry"], WaitForRedis)
        assert RedisConnectionError in kwargs["retry_on_error"]
        assert pool.default_queue_name == "q"
        # The sentinels get no retry: one that is down is skipped, not waited for.
        assert isinstance(pool.connection_pool, SentinelConnectionPool)
        for sentinel in pool.connection_pool.sentinel_manager.sentinels:
            assert sentinel.connection_pool.connection_kwargs["retry"] is None
    finally:
        await pool.aclose()


def test_each_settings_object_has_its_own_outage() -> None:
    settings = parse_redis_dsn("redis://localhost:6379/0")
    first = worker_redis_settings(settings, argv=WORKER_ARGV).retry
    second = worker_redis_settings(settings, argv=WORKER_ARGV).retry
    assert isinstance(first, WaitForRedis)
    assert isinstance(second, WaitForRedis)
    assert first.outage is not second.outage


# --- What is retried ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("Connection closed by server."),
        RedisTimeoutError("Timeout connecting to server"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        ConnectionRefusedError(111, "Connect call failed"),  # inside Connection.connect
        socket.gaierror(-2, "Name or service not known"),  # the redis host is gone from DNS
    ],
    ids=lambda error: type(error).__name__,
)
async def test_unreachable_redis_is_retried_until_it_answers(error: Exception) -> None:
    call = Flaky(error, failures=200)

    assert await instant().call_with_retry(call.do, call.fail) == "ok"

    assert call.calls == 201
    # redis-py's fail() would turn an error inside WATCH into WatchError, which
    # arq's job claim does not catch: it is not called before a retry.
    assert call.failed == []


async def test_a_nested_call_tries_once_and_the_outer_call_waits() -> None:
    """As under Sentinel: the outer call asks for the master's address on each try; the
    connect nested in it, with the same retry, must not keep dialling a dead address."""
    retry = instant()
    connect = Flaky(RedisConnectionError("refused"), failures=2)
    addresses_asked = 0

    async def connect_to_master() -> str:
        nonlocal addresses_asked
        addresses_asked += 1
        return await retry.call_with_retry(connect.do, connect.fail)

    assert await retry.call_with_retry(connect_to_master, connect.fail) == "ok"
    assert (connect.calls, addresses_asked) == (3, 3)
    assert len(connect.failed) == 2  # each nested failure is handed to redis-py's cleanup
    assert await retry.call_with_retry(connect.do, connect.fail) == "ok"  # not nested any more


def test_busy_loading_is_a_connection_error() -> None:
    assert issubclass(BusyLoadingError, RedisConnectionError)


async def test_a_wrong_password_is_not_waited_for() -> None:
    call = Flaky(AuthenticationError("WRONGPASS invalid username-password pair"), failures=1)

    with pytest.raises(AuthenticationError):
        await instant().call_with_retry(call.do, call.fail)

    assert call.calls == 1
    assert len(call.failed) == 1


@pytest.mark.parametrize("error", [ResponseError("WRONGTYPE"), WatchError("changed")])
async def test_command_errors_are_not_retried(error: RedisError) -> None:
    call = Flaky(error, failures=1)

    with pytest.raises(type(error)):
        await instant().call_with_retry(call.do, call.fail)

    assert call.calls == 1


def test_the_retry_forgets_nothing_when_redis_py_copies_it() -> None:
    """redis-py deep-copies the Retry for each connection: the copies share one outage."""
    retry = worker_redis_settings(parse_redis_dsn("redis://localhost"), argv=WORKER_ARGV).retry
    assert isinstance(retry, WaitForRedis)
    first, second = copy.deepcopy(retry), copy.deepcopy(retry)
    assert first.outage is second.outage is retry.outage
    assert isinstance(first.backoff, CappedBackoff)
    assert set(first.retried_errors) == set(retry.retried_errors)


# --- Stopping -------------------------------------------------------------


async def test_once_the_first_task_is_cancelled_calls_fail_at_once() -> None:
    """arq cancels its main task on SIGTERM, then deletes its health key: that must
    not wait for a Redis that is down."""
    retry = WaitForRedis(backoff=CappedBackoff(cap=0.01, base=0.01))
    forever = Flaky(RedisConnectionError("down"), failures=10**9)
    main = asyncio.create_task(retry.call_with_retry(forever.do, forever.fail))
    async with asyncio.timeout(5):
        await forever.retried.wait()
    await asyncio.sleep(0.05)
    assert not main.done()

    main.cancel()
    with pytest.raises(asyncio.CancelledError):
        await main

    close = Flaky(RedisConnectionError("down"), failures=1)
    async with asyncio.timeout(1):
        with pytest.raises(RedisConnectionError):
            await retry.call_with_retry(close.do, close.fail)
    assert close.calls == 1
    assert len(close.failed) == 1


async def test_a_new_event_loop_has_a_new_first_task() -> None:
    retry = instant()
    outage = retry.outage

    def in_new_loop() -> bool:
        async def first_call() -> bool:
            call = Flaky(RedisConnectionError("down"), failures=3)
            await retry.call_with_retry(call.do, call.fail)
            return outage.may_wait()

        return asyncio.run(first_call())

    # The first loop's first task has ended; a worker run in a new loop still waits.
    assert await asyncio.to_thread(in_new_loop)
    assert await asyncio.to_thread(in_new_loop)


# --- The backoff ----------------------------------------------------------


def test_the_backoff_grows_from_a_tenth_of_a_second_to_the_cap() -> None:
    backoff = CappedBackoff()
    first = [backoff.compute(1) for _ in range(100)]
    assert all(0.1 <= delay <= 0.2 for delay in first)
    later = [backoff.compute(failures) for failures in range(10, 3000)]
    assert all(BACKOFF_CAP_S / 2 <= delay <= BACKOFF_CAP_S for delay in later)
    assert BACKOFF_CAP_S == 5.0
    assert len({round(delay, 6) for delay in later}) > 100  # jittered


def test_the_backoff_never_overflows() -> None:
    """redis-py's own exponential backoffs raise OverflowError after 1,024 failures."""
    assert CappedBackoff().compute(10**6) <= BACKOFF_CAP_S


# --- The log --------------------------------------------------------------


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[tuple[int, str]]]:
    caplog.set_level(logging.INFO, logger=reconnect.__name__)

    def records() -> list[tuple[int, str]]:
        found = [
            (r.levelno, r.getMessage()) for r in caplog.records if r.name == reconnect.__name__
        ]
        caplog.clear()
        return found

    return records


async def test_an_outage_is_logged_once_and_its_end_too(
    log: Callable[[], list[tuple[int, str]]],
) -> None:
    outage = RedisOutage(clock=Clock())
    call = Flaky(RedisConnectionError("Error 111 connecting to redis:6379."), failures=50)

    await instant(outage).call_with_retry(call.do, call.fail)

    (warning, info) = log()
    assert warning[0] == logging.WARNING
    assert warning[1] == (
        "Redis is unreachable (ConnectionError: Error 111 connecting to redis:6379.); "
        "retrying in 0.0 s"
    )
    assert info == (logging.INFO, "Redis is reachable again after 0.0 s (50 failed tries)")
    assert outage.down_since is None


def test_a_long_outage_is_logged_again_every_interval(
    log: Callable[[], list[tuple[int, str]]],
) -> None:
    clock = Clock()
    outage = RedisOutage(clock=clock, repeat_warning_s=30)
    error = RedisConnectionError("down")
    for _ in range(10):
        outage.failed(error, 4.2)
        clock.now += 5  # 50 s in all
    outage.reachable()

    messages = log()
    assert [level for level, _ in messages] == [logging.WARNING, logging.WARNING, logging.INFO]
    assert messages[1][1] == (
        "Redis still unreachable after 30 s (7 failed tries; ConnectionError: down); "
        "retrying in 4.2 s"
    )
    assert messages[2][1] == "Redis is reachable again after 50.0 s (10 failed tries)"


async def test_copies_log_one_outage(log: Callable[[], list[tuple[int, str]]]) -> None:
    retry = instant(RedisOutage(clock=Clock()))
    connections = [copy.deepcopy(retry) for _ in range(20)]
    calls = [Flaky(RedisConnectionError("down"), failures=5) for _ in connections]

    await asyncio.gather(
        *(conn.call_with_retry(c.do, c.fail) for conn, c in zip(connections, calls, strict=True))
    )

    levels = [level for level, _ in log()]
    assert levels.count(logging.WARNING) == 1
    assert levels.count(logging.INFO) == 1


async def test_nothing_is_logged_while_redis_answers(
    log: Callable[[], list[tuple[int, str]]],
) -> None:
    call = Flaky(RedisConnectionError("down"), failures=0)
    for _ in range(10):
        await instant().call_with_retry(call.do, call.fail)
    assert log() == []


# --- On a real Redis --------------------------------------------------------


@pytest.mark.integration
async def test_a_connection_killed_inside_watch_reconnects(redis_config: Config) -> None:
    """The job claim's WATCH phase: redis-py would raise WatchError (arq does not catch
    it there); WaitForRedis reconnects and answers."""
    key = f"test:reconnect:{uuid.uuid4().hex}"
    killer = sync_client(redis_config)
    plain = dataclasses.replace(
        redis_config.arq_redis_settings,
        retry=Retry(NoBackoff(), 3),
        retry_on_error=[RedisConnectionError],
    )
    waiting = worker_redis_settings(redis_config.arq_redis_settings, argv=WORKER_ARGV)
    try:
        for settings, survives in ((plain, False), (waiting, True)):
            pool = await create_pool(settings)
            try:
                async with pool.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    connection_id = str(await pipe.execute_command("CLIENT", "ID"))
                    killer.client_kill_filter(_id=connection_id)
                    if survives:
                        assert await pipe.exists(key) == 0
                    else:
                        with pytest.raises(WatchError):
                            await pipe.exists(key)
            finally:
                await pool.aclose()
    finally:
        killer.close()
