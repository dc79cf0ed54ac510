"""The FastAPI app.

Serve it with `fastapi dev` or `fastapi run` (they read `[tool.fastapi]` in
pyproject.toml), or `uvicorn {{ cookiecutter.package_name }}.main:app`. Building it reads the
configuration but opens no connection: the lifespan does that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

from .config import Config, get_config
from .dependencies.arq import arq_dependency
{%- if cookiecutter.api_auth == "token" %}
from .dependencies.auth import TOKEN_REQUIRED
{%- endif %}
from .handlers import health, jobs, metrics
from .limits import BodySizeLimit
from .logs import configure_logging
from .metrics import RequestMetrics
from .queue import JobFinished, JobNotFound, JobNotQueued, QueueUnavailable
from .tracing import TraceRequests, configure_tracing, shutdown_tracing

__all__ = ["app", "create_app"]

logger = logging.getLogger(__name__)

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
# How much of a rejected input a 422 answer shows.
INPUT_PREVIEW_CHARS = 100


def create_app(config: Config | None = None) -> FastAPI:
    """Build the app; the queue client opens at start-up and closes at shutdown."""
    config = config or get_config()
    configure_logging(config.log_level, config.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
{%- if cookiecutter.api_auth == "token" %}
        if not config.api_token_list:
            raise RuntimeError(
                "{{ cookiecutter.env_prefix }}API_TOKENS is not set:"
                " the job API needs at least one token. Make one with:"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
{%- endif %}
        await arq_dependency.initialize(config)
        try:
            yield
        finally:
            await arq_dependency.aclose()
            shutdown_tracing()

    app = FastAPI(title="{{ cookiecutter.project_slug }}", lifespan=lifespan)
    app.state.config = config
    app.add_middleware(BodySizeLimit, max_bytes=config.api_max_body_bytes)
    app.add_middleware(RequestMetrics)  # outer: counts the 413s too
    if configure_tracing("{{ cookiecutter.project_slug }}-api"):
        app.add_middleware(TraceRequests)
    app.include_router(health.router)
    app.include_router(metrics.router)
{%- if cookiecutter.api_auth == "token" %}
    app.include_router(jobs.router, dependencies=TOKEN_REQUIRED)
{%- else %}
    app.include_router(jobs.router)
{%- endif %}
    app.add_exception_handler(JobNotFound, job_not_found)
    app.add_exception_handler(JobNotQueued, job_not_queued)
    app.add_exception_handler(JobFinished, job_finished)
    app.add_exception_handler(QueueUnavailable, queue_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
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


async def job_finished(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)


async def queue_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("%s %s: %s", request.method, request.url.path, error)
    return JSONResponse(
        {"detail": "the job queue is unavailable, try again later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, with each rejected input shown as a short, always-encodable preview.

    FastAPI's own handler echoes inputs whole: a 10 MB string comes back whole, and NaN or
    a lone surrogate cannot be encoded at all (a 500 instead of the 422).
    """
    assert isinstance(error, RequestValidationError)
    errors = [
        {
            "type": str(entry["type"]),
            "loc": [_preview(part) if isinstance(part, str) else part for part in entry["loc"]],
            "msg": _preview(str(entry["msg"])),
            "input": _preview(entry.get("input")),
        }
        for entry in error.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's HTTP errors; a 405's `Allow` names the methods of every route on the path."""
    assert isinstance(error, HTTPException)
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = [
            method
            for method in METHODS
            if any(
                route.matches({**request.scope, "method": method})[0] is Match.FULL
                for route in request.app.router.routes
            )
        ]
        error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, error)


def _preview(value: Any) -> str:
    """JSON text of `value`, ASCII only (lone surrogates escaped, NaN spelled out), cut short."""
    if isinstance(value, str):
        value = value[: INPUT_PREVIEW_CHARS + 1]
    text = json.dumps(value, default=repr, allow_nan=True)
    if isinstance(value, str):
        text = text[1:-1]  # a string shows without its quotes
    return text if len(text) <= INPUT_PREVIEW_CHARS else text[:INPUT_PREVIEW_CHARS] + "..."


app = create_app()
