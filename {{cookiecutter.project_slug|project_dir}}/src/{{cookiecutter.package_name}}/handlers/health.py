"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from ..dependencies.arq import arq_dependency
from ..queue import ArqQueue, QueueUnavailable

__all__ = ["router"]

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    reason: str | None = None


@router.get("", summary="Liveness: the process serves requests")
@router.head("", include_in_schema=False)
async def live() -> Health:
    return Health(status="ok")


@router.head("/ready", include_in_schema=False)
@router.get(
    "/ready",
    summary="Readiness: the job queue (Redis) answers",
    responses={503: {"model": Health, "description": "Redis is unreachable"}},
)
async def ready(queue: Annotated[ArqQueue, Depends(arq_dependency)], response: Response) -> Health:
    try:
        await queue.ping()
    except QueueUnavailable as error:
        # The details (host names, errors) go to the log, not to whoever asks.
        logger.warning("not ready: %s", error)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", reason="the job queue (Redis) is unavailable")
    return Health(status="ok")
