"""Worker settings: run with `arq {{ cookiecutter.package_name }}.worker.main.WorkerSettings`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from wsgiref.simple_server import WSGIServer

import httpx
from arq import cron, func
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function
from prometheus_client import start_http_server

from ..config import get_config
from ..logs import bind_job, configure_logging
from ..serialization import deserialize, serialize
from ..tracing import configure_tracing, end_job_span, shutdown_tracing, start_job_span
from .event_loop import use_uvloop
from .functions.cleanup import cleanup_synced_invoices
from .functions.ping import ping
from .functions.sync_invoice import sync_invoice
from .metrics import instrumented
from .reconnect import worker_redis_settings
from .wakeup import wake_up_pool

__all__ = ["WorkerSettings", "shutdown", "startup"]

logger = logging.getLogger(__name__)
config = get_config()
# This project's loggers now, so what runs before startup (waiting for Redis) logs in the
# configured format; all loggers in startup, after arq's CLI has set up its own (its first
# two lines stay in arq's format: it logs them before any hook of ours runs).
configure_logging(config.log_level, config.log_format, package_only=True)
configure_tracing("{{ cookiecutter.project_slug }}-worker")
# Before arq builds the worker and its event loop (see event_loop.py).
UVLOOP = use_uvloop()


async def startup(ctx: dict[str, Any]) -> None:
    """Build the clients every job shares; arq has put its Redis pool in ctx."""
    configure_logging(config.log_level, config.log_format)
    ctx["config"] = config
    ctx["http"] = httpx.AsyncClient(base_url=config.invoice_api_url, timeout=10.0)
    if config.worker_metrics_port:
        try:
            ctx["metrics_server"], _ = start_http_server(config.worker_metrics_port)
        except OSError as error:  # e.g. a second worker on one host: run, without metrics
            logger.warning(
                "worker metrics not served on port %d (%s); set"
                " {{ cookiecutter.env_prefix }}WORKER_METRICS_PORT to a free port, or 0",
                config.worker_metrics_port,
                error,
            )
    logger.info(
        "worker started on queue %s at %s (event loop: %s)",
        config.arq_queue_name,
        config.arq_queue_url,
        type(asyncio.get_running_loop()).__module__.partition(".")[0],
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    http: httpx.AsyncClient | None = ctx.pop("http", None)
    if http is not None:
        await http.aclose()
    metrics_server: WSGIServer | None = ctx.pop("metrics_server", None)
    if metrics_server is not None:
        metrics_server.shutdown()
        metrics_server.server_close()
    logger.info("worker stopped")
    shutdown_tracing()


async def job_started(ctx: dict[str, Any]) -> None:
    bind_job(ctx["job_id"], ctx["job_try"])
    start_job_span(ctx)


async def job_ended(ctx: dict[str, Any]) -> None:
    end_job_span(ctx)


class WorkerSettings:
    """Read by arq's CLI; every value comes from `Config`."""

    # Annotated as arq's WorkerSettingsBase protocol declares them; `instrumented` counts
    # and times each job for the worker's metrics (worker/metrics.py).
    functions: Sequence[WorkerCoroutine | Function] = instrumented(
        func(ping, name="ping"),
        func(sync_invoice, name="sync_invoice"),
    )
    cron_jobs: Sequence[CronJob] | None = instrumented(
        cron(cleanup_synced_invoices, name="cleanup_synced_invoices", hour={3}, minute={0}),
    )
    # Waits out Redis outages (arq --check excepted): see reconnect.py.
    redis_settings: RedisSettings = worker_redis_settings(config.arq_redis_settings)
    queue_name = config.arq_queue_name
    # The worker's pool, built from redis_settings (which arq --check still reads): when
    # the queue has nothing new, its read waits for a wake-up signal (see wakeup.py).
    redis_pool: ArqRedis | None = wake_up_pool(
        redis_settings, queue_name=queue_name, idle_poll_interval=config.worker_idle_poll_interval
    )
    job_serializer = serialize
    job_deserializer = deserialize
    on_startup: StartupShutdown | None = startup
    on_shutdown: StartupShutdown | None = shutdown
    on_job_start = job_started
    after_job_end = job_ended
    poll_delay = config.worker_poll_delay
    max_jobs = config.worker_max_jobs
    queue_read_limit = config.worker_queue_read_limit
    job_timeout = config.worker_job_timeout
    keep_result = config.worker_keep_result
    max_tries = config.worker_max_tries
    health_check_interval = config.worker_health_check_interval
    job_completion_wait = config.worker_job_completion_wait
    allow_abort_jobs = True
