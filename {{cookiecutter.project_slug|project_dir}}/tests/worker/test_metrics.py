"""The worker's job metrics: every outcome counted, timed, and the queue wait observed."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import pytest
from arq import Retry, cron, func
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from {{ cookiecutter.package_name }}.worker.metrics import (
    DURATION_BUCKETS,
    QUEUE_WAIT_BUCKETS,
    Buckets,
    instrumented,
    measured,
)

from ..conftest import make_config


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_outcome_is_counted() -> None:
    async def complete(ctx: dict[str, Any]) -> str:
        assert value("arq_jobs_in_progress", queue="q", function="m_complete") == 1
        return "ok"

    async def fail(ctx: dict[str, Any]) -> None:
        raise ValueError("no")

    async def retry(ctx: dict[str, Any]) -> None:
        raise Retry(defer=1)

    async def hang(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    ctx: dict[str, Any] = {
        "score": int(time.time() * 1000) - 2000,
        "config": make_config(arq_queue_name="q"),
    }
    assert await measured("m_complete", complete)(ctx) == "ok"
    with pytest.raises(ValueError, match="no"):
        await measured("m_fail", fail)(ctx)
    with pytest.raises(Retry):
        await measured("m_retry", retry)(ctx)
    task = asyncio.create_task(measured("m_abort", hang)(ctx))
    await asyncio.sleep(0.01)
    task.cancel()  # what arq does to an aborted job
    with pytest.raises(asyncio.CancelledError):
        await task

    for name, outcome in [
        ("m_complete", "complete"),
        ("m_fail", "failed"),
        ("m_retry", "retried"),
        ("m_abort", "aborted"),
    ]:
        assert value("arq_jobs_started_total", function=name) == 1
        assert value("arq_jobs_finished_total", function=name, outcome=outcome) == 1
        assert value("arq_jobs_in_progress", queue="q", function=name) == 0
        assert value("arq_job_duration_seconds_count", function=name) == 1
        # It waited 2 s after its run time.
        assert value("arq_job_queue_wait_seconds_sum", function=name) >= 2


def test_instrumented_jobs_keep_their_names_and_functions() -> None:
    async def job(ctx: dict[str, Any]) -> None:
        return None

    (wrapped,) = instrumented(func(job, name="job", max_tries=3))
    (cron_job,) = instrumented(cron(job, name="nightly", hour={3}))
    assert (wrapped.name, wrapped.max_tries, inspect.unwrap(wrapped.coroutine)) == ("job", 3, job)
    assert (cron_job.name, cron_job.hour, inspect.unwrap(cron_job.coroutine)) == (
        "nightly",
        {3},
        job,
    )


@pytest.mark.parametrize(
    ("buckets", "values"),
    [
        (DURATION_BUCKETS, [0.0, 0.005, 0.0050001, 0.07, 1.0, 9.99, 10.0, 11.0, 1e9]),
        (QUEUE_WAIT_BUCKETS, [0.001, 0.01, 0.3, 30.0, 3600.0, 3600.5, 0.005, 0.005]),
    ],
)
def test_histograms_read_as_prometheus_clients_own(
    buckets: tuple[float, ...], values: list[float]
) -> None:
    """Each bucket counts what prometheus-client's Histogram counts, bounds included,
    under the same `le` labels; and the sum and count agree."""
    registry = CollectorRegistry()
    reference = Histogram("h", "h", buckets=buckets, registry=registry)
    ours = Buckets(buckets)
    for observed in values:
        reference.observe(observed)
        ours.observe(observed)
    (histogram,) = registry.collect()
    expected = {s.labels["le"]: s.value for s in histogram.samples if s.name == "h_bucket"}
    assert dict(ours.cumulative()) == expected
    assert registry.get_sample_value("h_sum") == pytest.approx(ours.total)
    assert ours.cumulative()[-1] == ("+Inf", len(values))
