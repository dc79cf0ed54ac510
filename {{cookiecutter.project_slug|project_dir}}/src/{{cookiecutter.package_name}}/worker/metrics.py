"""The worker's Prometheus metrics, per job function; served on WORKER_METRICS_PORT.
With tracing on, the job's span (tracing.start_job_span) records the outcome too.

Every job and cron job in `WorkerSettings` runs through `measured`, which counts it in,
times it, and counts it out by outcome: complete, failed, retried (arq's `Retry`), or
aborted (cancelled: an abort request, a job timeout, or a shutdown that ran out of time).

The counts are plain numbers that only the worker's event loop writes; `JobMetrics`, a
prometheus-client collector, reads them when Prometheus scrapes (on the metrics
server's thread). A job then costs a few additions, where prometheus-client's metric
objects take a lock for each of the six updates a job makes (measured in the template's
bench/: they were a fortieth of the worker's work on a no-op job). The series are the ones
those objects exposed, without their `_created` timestamps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any, overload

from arq import Retry
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function
from opentelemetry import trace
from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .. import tracing

__all__ = ["JOBS", "Buckets", "JobMetrics", "JobStats", "instrumented", "measured"]

OUTCOMES = ("complete", "failed", "retried", "aborted")
# prometheus-client's default buckets for durations; its +Inf bucket is implied here.
DURATION_BUCKETS = tuple(b for b in Histogram.DEFAULT_BUCKETS if b != float("inf"))
QUEUE_WAIT_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)


@dataclasses.dataclass(slots=True)
class Buckets:
    """A histogram's observations: a count per bucket (the last one +Inf) and their sum."""

    bounds: tuple[float, ...]
    counts: list[int] = dataclasses.field(init=False)
    total: float = 0.0
    # Each bucket's `le` label, spelt as prometheus-client spells it.
    labels: tuple[str, ...] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)
        bounds = (*self.bounds, float("inf"))
        self.labels = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call]

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """The buckets as Prometheus has them: ``le`` label, count at or below it."""
        seen = 0
        buckets: list[tuple[str, float]] = []
        for label, count in zip(self.labels, list(self.counts), strict=True):
            seen += count
            buckets.append((label, seen))
        return buckets


@dataclasses.dataclass(slots=True)
class JobStats:
    """One job function's counts."""

    started: int = 0
    finished: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    running: dict[str, int] = dataclasses.field(default_factory=dict)  # by queue
    duration: Buckets = dataclasses.field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    queue_wait: Buckets = dataclasses.field(default_factory=lambda: Buckets(QUEUE_WAIT_BUCKETS))


class JobMetrics(Collector):
    """The job metrics of every measured function, as Prometheus reads them."""

    def __init__(self) -> None:
        self.functions: dict[str, JobStats] = {}

    def stats(self, function: str) -> JobStats:
        return self.functions.setdefault(function, JobStats())

    def collect(self) -> Iterator[Metric]:
        started = CounterMetricFamily("arq_jobs_started", "Jobs started", labels=["function"])
        finished = CounterMetricFamily(
            "arq_jobs_finished",
            "Jobs ended, by outcome: complete, failed, retried, aborted",
            labels=["function", "outcome"],
        )
        duration = HistogramMetricFamily(
            "arq_job_duration_seconds", "Time a job ran", labels=["function"]
        )
        queue_wait = HistogramMetricFamily(
            "arq_job_queue_wait_seconds",
            "Time from a job's run time (enqueue, or its deferral) to its start",
            labels=["function"],
        )
        in_progress = GaugeMetricFamily(
            "arq_jobs_in_progress", "Jobs running now", labels=["queue", "function"]
        )
        # Copies taken at once (the event loop may add to them meanwhile).
        for name, stats in list(self.functions.items()):
            started.add_metric([name], stats.started)
            for outcome, count in list(stats.finished.items()):
                finished.add_metric([name, outcome], count)
            duration.add_metric([name], stats.duration.cumulative(), stats.duration.total)
            queue_wait.add_metric([name], stats.queue_wait.cumulative(), stats.queue_wait.total)
            for queue, count in list(stats.running.items()):
                in_progress.add_metric([queue, name], count)
        yield from (started, finished, duration, queue_wait, in_progress)


JOBS = JobMetrics()
REGISTRY.register(JOBS)


def measured(name: str, coroutine: WorkerCoroutine) -> WorkerCoroutine:
    """`coroutine`, counted and timed under `name`."""
    stats = JOBS.stats(name)
    finished, running = stats.finished, stats.running
    observe_duration, observe_queue_wait = stats.duration.observe, stats.queue_wait.observe

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        stats.started += 1
        if score := ctx.get("score"):  # ms since the epoch; cron jobs have none
            observe_queue_wait(max(0.0, time.time() - score / 1000))
        config = ctx.get("config")  # put there by the worker's startup hook
        queue = config.arq_queue_name if config else ""
        running[queue] = running.get(queue, 0) + 1
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
            running[queue] -= 1
            observe_duration(time.perf_counter() - started)
            finished[outcome] += 1

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
