"""The API's Prometheus metrics: requests, enqueues, and the queue as seen at scrape time.

The worker's are in `worker/metrics.py`; `observability/` has a dashboard and alert rules
for both.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ENQUEUED",
    "HEALTH_CHECK_AGE",
    "OLDEST_READY_AGE",
    "QUEUE_JOBS",
    "REDIS_UP",
    "WORKER_ALIVE",
    "RequestMetrics",
]

# Label values a client cannot multiply: any other method counts as "other".
METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

REQUESTS = Counter("http_requests", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)
ENQUEUED = Counter(
    "arq_jobs_enqueued",
    "Enqueue attempts by outcome: accepted, duplicate (job id taken), unavailable (Redis)",
    ["function", "outcome"],
)
QUEUE_JOBS = Gauge(
    "arq_queue_jobs",
    "Jobs in the queue: ready (due, running ones included) or deferred",
    ["queue", "state"],
)
OLDEST_READY_AGE = Gauge(
    "arq_queue_oldest_ready_job_age_seconds",
    "How long the oldest due job no worker has started has waited (0 when none)",
    ["queue"],
)
WORKER_ALIVE = Gauge(
    "arq_queue_worker_alive", "1 while a worker's health key for the queue exists", ["queue"]
)
HEALTH_CHECK_AGE = Gauge(
    "arq_worker_health_check_age_seconds",
    "Seconds since a worker last wrote the queue's health key",
    ["queue"],
)
REDIS_UP = Gauge("arq_redis_up", "1 if the last scrape's Redis reads succeeded")


class RequestMetrics:
    """ASGI middleware: count and time every request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            key = (method, route, status)
            if (children := self._children.get(key)) is None:  # labels() takes a lock
                children = (
                    REQUESTS.labels(method, route, str(status)),
                    REQUEST_SECONDS.labels(method, route),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
