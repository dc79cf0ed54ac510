"""The worker's Prometheus metrics, per job function; served on WORKER_METRICS_PORT.
With tracing on, the job's span (tracing.start_job_span) records the outcome too.

Every job and cron job in `WorkerSettings` runs through `measured`, which counts it in,
times it, and counts it out by outcome: complete, failed, retried (arq's `Retry`), or
aborted (cancelled: an abort request, a job timeout, or a shutdown that ran out of time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from typing import Any, overload

from arq import Retry
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from .. import tracing

__all__ = ["instrumented", "measured"]

STARTED = Counter("arq_jobs_started", "Jobs started", ["function"])
FINISHED = Counter(
    "arq_jobs_finished",
    "Jobs ended, by outcome: complete, failed, retried, aborted",
    ["function", "outcome"],
)
DURATION = Histogram("arq_job_duration_seconds", "Time a job ran", ["function"])
QUEUE_WAIT = Histogram(
    "arq_job_queue_wait_seconds",
    "Time from a job's run time (enqueue, or its deferral) to its start",
    ["function"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
IN_PROGRESS = Gauge("arq_jobs_in_progress", "Jobs running now", ["queue", "function"])
OUTCOMES = ("complete", "failed", "retried", "aborted")


def measured(name: str, coroutine: WorkerCoroutine) -> WorkerCoroutine:
    """`coroutine`, counted and timed under `name`."""
    # The label lookups once, not per job (they take a lock): this runs for every job.
    started_count, duration, queue_wait = (
        STARTED.labels(name),
        DURATION.labels(name),
        QUEUE_WAIT.labels(name),
    )
    finished = {outcome: FINISHED.labels(name, outcome) for outcome in OUTCOMES}
    in_progress_by_queue: dict[str, Gauge] = {}

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        started_count.inc()
        if score := ctx.get("score"):  # ms since the epoch; cron jobs have none
            queue_wait.observe(max(0.0, time.time() - score / 1000))
        config = ctx.get("config")  # put there by the worker's startup hook
        queue = config.arq_queue_name if config else ""
        if (in_progress := in_progress_by_queue.get(queue)) is None:
            in_progress = in_progress_by_queue[queue] = IN_PROGRESS.labels(queue, name)
        in_progress.inc()
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await coroutine(ctx, *args, **kwargs)
        except Retry:
            outcome = "retried"
            raise
        except asyncio.CancelledError:
            outcome = "aborted"
            raise
        else:
            outcome = "complete"
            return result
        finally:
            if tracing.enabled():
                trace.get_current_span().set_attribute("arq.outcome", outcome)
            in_progress.dec()
            duration.observe(time.perf_counter() - started)
            finished[outcome].inc()

    return run


@overload
def instrumented(*jobs: Function) -> tuple[Function, ...]: ...
@overload
def instrumented(*jobs: CronJob) -> tuple[CronJob, ...]: ...
def instrumented(*jobs: Function | CronJob) -> tuple[Function | CronJob, ...]:
    """The jobs (`func(...)` or `cron(...)`), each running through `measured`."""
    return tuple(
        dataclasses.replace(job, coroutine=measured(job.name, job.coroutine)) for job in jobs
    )
