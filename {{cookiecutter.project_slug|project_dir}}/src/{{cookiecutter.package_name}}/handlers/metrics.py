"""GET /metrics: the API's Prometheus metrics, with the queue read from Redis at each scrape."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..config import Config
from ..dependencies.arq import arq_dependency
from ..metrics import HEALTH_CHECK_AGE, OLDEST_READY_AGE, QUEUE_JOBS, REDIS_UP, WORKER_ALIVE
from ..queue import ArqQueue, QueueUnavailable

__all__ = ["router"]

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(
    request: Request, queue: Annotated[ArqQueue, Depends(arq_dependency)]
) -> Response:
    config: Config = request.app.state.config
    name = queue.default_queue_name
    try:
        stats = await queue.stats()
    except QueueUnavailable:
        REDIS_UP.set(0)
    else:
        REDIS_UP.set(1)
        QUEUE_JOBS.labels(name, "ready").set(stats.ready)
        QUEUE_JOBS.labels(name, "deferred").set(stats.deferred)
        OLDEST_READY_AGE.labels(name).set(stats.oldest_ready_age_s)
        WORKER_ALIVE.labels(name).set(stats.health_check_ttl_s is not None)
        if stats.health_check_ttl_s is None:
            with suppress(KeyError):  # no worker: no age to show
                HEALTH_CHECK_AGE.remove(name)
        else:
            # arq writes the key with a TTL of the interval plus one second.
            written = config.worker_health_check_interval + 1 - stats.health_check_ttl_s
            HEALTH_CHECK_AGE.labels(name).set(max(0.0, written))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
