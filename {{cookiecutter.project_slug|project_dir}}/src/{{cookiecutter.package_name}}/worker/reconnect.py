"""Keep the worker running through Redis outages.

arq's worker has no handling for Redis errors: one failed call ends the
process, and at start-up arq gives up after `RedisSettings.conn_retries`
tries. What arq does take is a redis-py `Retry` in `RedisSettings.retry`,
which its `create_pool` hands to the worker's `ArqRedis`. `worker_redis_settings`
returns the app's settings with `WaitForRedis`, a `Retry` that waits for
Redis for as long as it takes, with a capped, jittered backoff, logging the
outage once (and again every `REPEAT_WARNING_S`) and its end. Once arq's main
task is cancelled (SIGTERM), calls fail at once again, so the worker stops
promptly even while Redis is down.

The API keeps the settings without it: a request must get its 503 at once,
not wait for Redis.

The worker's pool is built from these settings by `connect_pool` (see
wakeup.py), which keeps the retry under Redis Sentinel too (arq's `create_pool`
drops it there): a failover is then an outage like any other, and each
reconnect asks the sentinels for the new master.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff, EqualJitterBackoff
from redis.exceptions import AuthenticationError, AuthorizationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "CappedBackoff",
    "RedisOutage",
    "WaitForRedis",
    "worker_redis_settings",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The first retry comes after 0.1-0.2 s; the wait doubles up to 2.5-5 s.
BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
# While Redis stays down, say so again this often.
REPEAT_WARNING_S = 30.0
# Errors that mean "Redis cannot be reached right now". BusyLoadingError (a
# restarted Redis loading its data) is a ConnectionError. OSError is what a
# refused or timed-out connect raises inside redis-py's Connection.connect,
# whose own retry loop must take it: the pool connects outside every other one.
RETRIED_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
# ConnectionErrors too, but waiting does not fix a wrong password: fail, and
# let arq's own start-up tries (conn_retries) end the process.
NEVER_RETRIED: tuple[type[Exception], ...] = (AuthenticationError, AuthorizationError)


class CappedBackoff(EqualJitterBackoff):
    """redis-py's equal-jitter backoff: half the capped exponential delay plus up to as much again.

    Its ``base * 2**failures`` overflows a float after 1,024 failures (about
    an hour at the cap), so the exponent stops growing long before that.
    """

    MAX_EXPONENT = 32

    def __init__(self, cap: float = BACKOFF_CAP_S, base: float = BACKOFF_BASE_S) -> None:
        super().__init__(cap=cap, base=base)
        self.cap = cap

    def compute(self, failures: int) -> float:
        return super().compute(min(failures, self.MAX_EXPONENT))


class RedisOutage:
    """What every connection of one pool knows about an outage, and who may wait for its end.

    redis-py deep-copies the `Retry` for each connection; this object is
    shared by the copies, so an outage is logged once, not once a connection.
    """

    def __init__(
        self,
        *,
        repeat_warning_s: float = REPEAT_WARNING_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repeat_warning_s = repeat_warning_s
        self._clock = clock
        self.down_since: float | None = None
        self.failures = 0
        self._warned_at = 0.0
        self._owner: asyncio.Task[Any] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> RedisOutage:
        return self

    def enter(self) -> None:
        """Note the task of the first Redis call in this event loop (arq's main loop)."""
        loop = asyncio.get_running_loop()
        if self._owner is None or self._owner.get_loop() is not loop:
            self._owner = asyncio.current_task()

    def may_wait(self) -> bool:
        """Wait for Redis while the first task runs; once it is cancelled or done
        (the worker is stopping), fail at once, so shutdown does not hang on a
        Redis that is down."""
        owner = self._owner
        return owner is not None and not owner.done() and not owner.cancelling()

    def failed(self, error: BaseException, delay: float) -> None:
        now = self._clock()
        self.failures += 1
        if self.down_since is None:
            self.down_since = self._warned_at = now
            logger.warning(
                "Redis is unreachable (%s: %s); retrying in %.1f s",
                type(error).__name__,
                error,
                delay,
            )
        elif now - self._warned_at >= self.repeat_warning_s:
            self._warned_at = now
            logger.warning(
                "Redis still unreachable after %.0f s (%d failed tries; %s: %s); "
                "retrying in %.1f s",
                now - self.down_since,
                self.failures,
                type(error).__name__,
                error,
                delay,
            )

    def reachable(self) -> None:
        if self.down_since is None:
            return
        logger.info(
            "Redis is reachable again after %.1f s (%d failed tries)",
            self._clock() - self.down_since,
            self.failures,
        )
        self.down_since = None
        self.failures = 0


class WaitForRedis(Retry):
    """A redis-py `Retry` that retries unreachable-Redis errors for as long as the worker runs.

    Unlike redis-py's, it does not call ``fail`` before a retry: on a
    connection that died while a pipeline WATCHed keys, redis-py's ``fail``
    raises WatchError, which arq's job claim (``Worker.start_jobs``) does not
    catch between WATCH and EXEC, so the worker would exit. The retried command
    reconnects and runs without the WATCH instead: a claim cut by the outage may
    then start a job another worker started too, which at-least-once delivery
    allows. redis-py has already closed the broken connection by then.

    Only the outermost call of a connection waits: redis-py calls the same
    `Retry` again inside (a command connects, and under Sentinel
    ``SentinelManagedConnection.connect`` wraps ``Connection.connect``), and a
    nested call tries once. Waiting there would keep dialling a dead master's
    address, where the outer call asks the sentinels for the new one each try.
    """

    __slots__ = ("_waiting", "outage")

    def __init__(
        self, outage: RedisOutage | None = None, backoff: CappedBackoff | None = None
    ) -> None:
        super().__init__(backoff or CappedBackoff(), retries=-1)
        self.update_supported_errors(list(RETRIED_ERRORS))
        self.outage = outage or RedisOutage()
        self._waiting = False

    @property
    def backoff(self) -> AbstractBackoff:
        return self._backoff

    @property
    def retried_errors(self) -> tuple[type[Exception], ...]:
        return tuple(self._supported_errors)

    async def call_with_retry(
        self, do: Callable[[], Awaitable[T]], fail: Callable[[RedisError], Any]
    ) -> T:
        if self._waiting:  # nested: the outer call retries
            try:
                return await do()
            except self._supported_errors as error:
                await fail(error)
                raise
        self.outage.enter()
        self._waiting = True
        try:
            try:
                # Every command of the worker comes here: the common case stays short.
                result = await do()
            except self._supported_errors as error:
                failed = error
            else:
                if self.outage.down_since is not None:
                    self.outage.reachable()
                return result
            # Outside the except block: the errors of a long outage are not chained.
            return await self._retry(do, fail, failed)
        finally:
            self._waiting = False

    async def _retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[[RedisError], Any],
        error: Exception,
    ) -> T:
        """After ``do`` failed with ``error``: wait and try again until Redis answers."""
        self._backoff.reset()  # type: ignore[no-untyped-call]
        failures = 0
        while True:
            if isinstance(error, NEVER_RETRIED) or not self.outage.may_wait():
                await fail(error)  # type: ignore[arg-type]
                raise error
            failures += 1
            delay = self._backoff.compute(failures)
            self.outage.failed(error, delay)
            await asyncio.sleep(delay)
            try:
                result = await do()
            except self._supported_errors as again:
                error = again
            else:
                self.outage.reachable()
                return result


def worker_redis_settings(
    settings: RedisSettings, *, argv: Sequence[str] | None = None
) -> RedisSettings:
    """The worker's settings: ``settings`` (unchanged) plus `WaitForRedis`.

    ``arq --check`` (the image's HEALTHCHECK) reads the same
    ``WorkerSettings.redis_settings``; it gets ``settings`` as they are, so it
    fails within arq's ``conn_retries`` while Redis is down instead of waiting.
    """
    if "--check" in (sys.argv if argv is None else argv)[1:]:
        return settings
    return dataclasses.replace(settings, retry=WaitForRedis(), retry_on_error=list(RETRIED_ERRORS))
