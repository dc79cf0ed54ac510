"""Start jobs in milliseconds: an idle worker waits for a wake-up signal instead of polling.

arq's worker reads its queue every ``poll_delay`` (``Worker._poll_iteration``:
``ZRANGEBYSCORE <queue> -inf <now>``), so a job waits for the next read.
`WakeUpRedis` is the `ArqRedis` the worker gets as its ``redis_pool``. When
that read finds nothing to start (no due job, or only jobs that have started,
here or in another worker: a job stays in the queue until it ends, and its
in-progress key says it started), it waits until a wake-up signal comes or
``idle_poll_interval`` passes, reads again on a signal, and returns the jobs
it can start (none, rather than started ones that arq's claim would check one
by one and skip); arq then goes on as usual (abort requests, health key, cron).
A read that finds a job to start returns at once, so draining a queue is not
slowed.

The signal is a Redis pub/sub message on `wake_channel` (``<queue>:wake``),
which the enqueue script of `RedisArqQueue` publishes in the same round trip
as the job (and an abort of a running job, after its request). Every
subscribed worker wakes; arq's claim (a transaction watching the job's
in-progress key) gives the job to one of them. Jobs that come without a
signal (plain arq clients, retries, deferred jobs, cron) are read within
``idle_poll_interval``, as they would be by polling at that interval.

One subscriber task per worker keeps the subscription on its own connection,
outside the pool's `WaitForRedis` retry: it resubscribes with a backoff after
Redis comes back, and the worker polls at ``idle_poll_interval`` meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from ..redis_pool import connect_pool, wake_channel
from .reconnect import CappedBackoff

__all__ = ["WakeUpRedis", "wake_up_pool"]

logger = logging.getLogger(__name__)

# Connection settings the subscriber does not take from the pool.
_POOL_RETRY_SETTINGS = ("retry", "retry_on_error", "retry_on_timeout")
# A subscription quiet this long is pinged; one that does not answer within as long
# again is dropped and renewed (a connection cut without a word, e.g. by a NAT).
SUBSCRIBER_PING_S = 30.0


class WakeUpRedis(ArqRedis):
    """`ArqRedis` whose queue read, as arq's worker polls it, waits for a wake-up signal.

    Only the read arq's worker loop makes waits: ``ZRANGEBYSCORE`` of
    ``default_queue_name`` from ``-inf`` with a limit, by the task that made
    the first such read. Every other call (and jobs using ``ctx["redis"]``)
    runs as on `ArqRedis`.
    """

    def __init__(self, *args: Any, idle_poll_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if idle_poll_interval < 0:
            raise ValueError(f"idle_poll_interval must be 0 or more, not {idle_poll_interval}")
        self.idle_poll_interval = idle_poll_interval
        self._poller: asyncio.Task[Any] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._answered = False
        self.wakeups = 0  # reads made because a signal came (for tests and debugging)

    def __bool__(self) -> bool:
        """False until Redis has answered a command (arq's first is its start-up INFO,
        before on_startup). arq's `Worker.close` skips its clean-up (health key,
        on_shutdown, closing the pool) for a falsy pool, as for a worker whose own pool
        never connected: so a worker stopped while it still waits for Redis at start-up
        exits at once and cleanly, as it did before; once started, it shuts down fully."""
        return self._answered

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        answer = await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        self._answered = True
        return answer

    async def zrangebyscore(
        self,
        name: Any,
        min: Any,  # redis-py's parameter names
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
    ) -> Any:
        read = super().zrangebyscore
        if not self._is_worker_poll(name, min, num, withscores) or not self.idle_poll_interval:
            return await read(name, min, max, start, num, withscores, score_cast_func)
        # Cleared before the read: a signal that comes between the read and the
        # wait is not lost, the wait then ends at once.
        self._wake.clear()
        job_ids: list[bytes] = await read(name, min, max, start, num)
        if job_ids and not await self._all_running(job_ids):
            return job_ids
        try:
            async with asyncio.timeout(self.idle_poll_interval):
                await self._wake.wait()
        except TimeoutError:
            # Nothing to start (arq's claim skips a job whose in-progress key exists, after
            # four commands each): arq goes on (aborts, health key, cron) and reads again.
            return []
        self.wakeups += 1
        job_ids = await read(name, min, timestamp_ms(), start, num)
        if job_ids and await self._all_running(job_ids):
            return []
        return job_ids

    async def _all_running(self, job_ids: list[bytes]) -> bool:
        """Whether every job read has started (here or in another worker): a job stays
        in the queue until it ends, and arq's claim writes its in-progress key."""
        keys = [in_progress_key_prefix + job_id.decode() for job_id in job_ids]
        return bool(await self.exists(*keys) == len(keys))

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await self.stop_listening()
        await super().aclose(close_connection_pool)
        if close_connection_pool:
            # arq's worker closes its pool when it stops. The pool's lock belongs to
            # the event loop that used it: a next worker run on this object (tests run
            # one per event loop) gets a new pool with the same settings.
            self.connection_pool = _new_pool(self.connection_pool)

    async def stop_listening(self) -> None:
        """Stop the subscriber task (arq's shutdown closes the pool, which calls this)."""
        subscriber, self._subscriber, self._poller = self._subscriber, None, None
        self._answered = False
        if subscriber is not None:
            _cancel(subscriber)
            await asyncio.gather(subscriber, return_exceptions=True)

    def _is_worker_poll(self, name: Any, min: Any, num: int | None, withscores: bool) -> bool:
        if withscores or num is None or min != float("-inf") or name != self.default_queue_name:
            return False
        task = asyncio.current_task()
        if task is None:
            return False
        if self._poller is None or self._poller.done():
            self._poller = task
            if self.idle_poll_interval > 0:
                self._start_listening(task)
        return task is self._poller

    def _start_listening(self, poller: asyncio.Task[Any]) -> None:
        """The first poll of a worker run: subscribe, for as long as ``poller`` runs."""
        if self._subscriber is not None:
            _cancel(self._subscriber)
        self._poller = poller
        self._wake = asyncio.Event()
        subscriber = asyncio.create_task(
            self._listen(wake_channel(self.default_queue_name)), name="wake-up subscriber"
        )
        self._subscriber = subscriber
        # The worker's main task ends (SIGTERM, or its end in tests): stop at once,
        # so no task is left pending whatever happens to the pool afterwards.
        poller.add_done_callback(lambda _: _cancel(subscriber))

    async def _listen(self, channel: str) -> None:
        client = Redis(connection_pool=_new_pool(self.connection_pool, subscriber=True))
        backoff = CappedBackoff()
        failures = 0
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(channel)
                        async for kind in _messages(pubsub):
                            if kind == "subscribe" and failures:
                                logger.info("wake-up signals are back on %s", channel)
                                failures = 0
                            if kind in ("subscribe", "message"):
                                # Subscribed (nothing sent before counted) or a signal: read now.
                                self._wake.set()
                except Exception as error:  # lost, for whatever reason: subscribe again
                    failures += 1
                    delay = backoff.compute(failures)
                    if failures == 1:
                        logger.warning(
                            "wake-up signals lost (%s: %s); reading the queue every %g s"
                            " until they are back",
                            type(error).__name__,
                            error,
                            self.idle_poll_interval,
                        )
                    await asyncio.sleep(delay)
        finally:
            await client.aclose(close_connection_pool=True)


async def _messages(pubsub: PubSub) -> AsyncIterator[str]:
    """The kinds of the messages ``pubsub`` receives ("subscribe", "message", "pong");
    a quiet subscription is pinged, and ConnectionError raised if the ping gets no
    answer: `PubSub.listen` alone would wait forever on a connection cut silently."""
    pinged = False
    while True:
        message = await pubsub.get_message(timeout=SUBSCRIBER_PING_S)
        if message is not None:
            pinged = False
            yield str(message["type"])
        elif pinged:
            raise RedisConnectionError(f"no answer to a ping in {SUBSCRIBER_PING_S:g} s")
        else:
            await pubsub.ping()
            pinged = True


def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` once: a second cancel would cut short its closing of its connection."""
    if not task.done() and not task.cancelling():
        task.cancel()


def _new_pool(pool: ConnectionPool, *, subscriber: bool = False) -> ConnectionPool:
    """A new pool with ``pool``'s settings; for the subscriber, one connection without
    the pool's retry settings (it handles its own errors, so a lost subscription is
    noticed and renewed, not retried forever on a dead connection)."""
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("connection_pool", None)  # a Sentinel pool's reference to itself
    if subscriber:
        for name in _POOL_RETRY_SETTINGS:
            kwargs.pop(name, None)
        kwargs["socket_keepalive"] = True
    kwargs["connection_class"] = pool.connection_class
    kwargs["max_connections"] = 1 if subscriber else pool.max_connections
    if isinstance(pool, SentinelConnectionPool):
        # Asks the same sentinels for the master on each connect, as `pool` does.
        return SentinelConnectionPool(  # type: ignore[no-untyped-call]
            pool.service_name,
            pool.sentinel_manager,
            is_master=pool.is_master,
            check_connection=pool.check_connection,
            **kwargs,
        )
    return type(pool)(**kwargs)


def wake_up_pool(
    settings: RedisSettings, *, queue_name: str, idle_poll_interval: float
) -> WakeUpRedis:
    """The worker's pool: `connect_pool`'s (every setting, the worker's retry included),
    as a `WakeUpRedis` that waits up to ``idle_poll_interval`` for a wake-up signal
    (0: no waiting, arq polls every ``poll_delay`` as without it)."""
    pool = connect_pool(settings, default_queue_name=queue_name)
    return WakeUpRedis(
        pool.connection_pool,
        job_serializer=pool.job_serializer,
        job_deserializer=pool.job_deserializer,
        default_queue_name=pool.default_queue_name,
        expires_extra_ms=pool.expires_extra_ms,
        idle_poll_interval=idle_poll_interval,
    )
