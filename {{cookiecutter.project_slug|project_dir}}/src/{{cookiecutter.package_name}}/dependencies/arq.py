"""The queue client as a FastAPI dependency, opened and closed by the app's lifespan."""

from __future__ import annotations

import logging

from ..config import ArqMode, Config
from ..queue import ArqQueue, MockArqQueue, QueueUnavailable, RedisArqQueue

__all__ = ["ArqDependency", "arq_dependency"]

logger = logging.getLogger(__name__)


class ArqDependency:
    """Holds the one queue client the app uses for its whole life."""

    def __init__(self) -> None:
        self._queue: ArqQueue | None = None

    async def __call__(self) -> ArqQueue:
        if self._queue is None:
            raise RuntimeError("ArqDependency is not initialized; is the lifespan running?")
        return self._queue

    async def initialize(self, config: Config) -> ArqQueue:
        """Open the client for `config.arq_mode`; a down Redis does not stop start-up."""
        await self.aclose()
        if config.arq_mode is ArqMode.test:
            self._queue = MockArqQueue(
                default_queue_name=config.arq_queue_name,
                keep_result=config.worker_keep_result,
            )
            return self._queue
        queue = RedisArqQueue.from_settings(
            config.arq_redis_settings, default_queue_name=config.arq_queue_name
        )
        self._queue = queue
        try:
            await queue.ping()
        except QueueUnavailable as error:
            logger.warning(
                "Redis at %s is unreachable at start-up (%s); starting anyway,"
                " enqueue answers 503 until it is back",
                config.arq_queue_url,
                error,
            )
        else:
            logger.info("connected to Redis at %s", config.arq_queue_url)
        return queue

    async def aclose(self) -> None:
        if self._queue is not None:
            await self._queue.aclose()
            self._queue = None


arq_dependency = ArqDependency()
