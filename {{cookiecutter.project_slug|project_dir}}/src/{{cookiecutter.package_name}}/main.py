"""The FastAPI app.

Serve it with `fastapi dev` or `fastapi run` (they read `[tool.fastapi]` in
pyproject.toml), or `uvicorn {{ cookiecutter.package_name }}.main:app`. Building it reads the
configuration but opens no connection: the lifespan does that.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from .config import Config, get_config
from .dependencies.arq import arq_dependency
from .handlers import health, jobs
from .logs import configure_logging
from .queue import JobNotFound, JobNotQueued, QueueUnavailable

__all__ = ["app", "create_app"]

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> FastAPI:
    """Build the app; the queue client opens at start-up and closes at shutdown."""
    config = config or get_config()
    configure_logging(config.log_level, config.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await arq_dependency.initialize(config)
        try:
            yield
        finally:
            await arq_dependency.aclose()

    app = FastAPI(title="{{ cookiecutter.project_slug }}", lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.add_exception_handler(JobNotFound, job_not_found)
    app.add_exception_handler(JobNotQueued, job_not_queued)
    app.add_exception_handler(QueueUnavailable, queue_unavailable)
    return app


async def job_not_found(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND)


async def job_not_queued(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, JobNotQueued)
    location = jobs.job_location(request, error.job_id)
    return JSONResponse(
        {"detail": str(error), "job_id": error.job_id},
        status_code=status.HTTP_409_CONFLICT,
        headers={"Location": location},
    )


async def queue_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse(
        {"detail": "the job queue is unavailable, try again later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


app = create_app()
