"""The worker's job metrics with a real arq worker: each outcome counted once, as it happened."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.queue import AbortResult, RedisArqQueue

from ..conftest import Harness

pytestmark = pytest.mark.integration


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def harness(redis_config: Config) -> AsyncIterator[Harness]:
    settings = redis_config.arq_redis_settings
    queue = RedisArqQueue.from_settings(settings, default_queue_name=f"test:{uuid.uuid4().hex}")
    harness = Harness(queue, settings)
    yield harness
    await harness.aclose()


async def test_each_outcome_is_counted_by_a_real_worker(harness: Harness) -> None:
    outcomes = [("succeed", "complete"), ("fail", "failed"), ("retry_once", "retried")]
    outcomes += [("retry_once", "complete"), ("hold", "aborted")]
    finished = "arq_jobs_finished_total"
    before = {(f, o): value(finished, function=f, outcome=o) for f, o in outcomes}
    retries_started = value("arq_jobs_started_total", function="retry_once")

    await harness.queue.enqueue("succeed", 1)
    await harness.queue.enqueue("fail", "no")
    await harness.queue.enqueue("retry_once")
    held = await harness.queue.enqueue("hold")
    await harness.start_holding(held.id)
    assert await harness.queue.abort_job(held.id) is AbortResult.cancelled
    await harness.wait_for_workers()

    for (function, outcome), count in before.items():
        after = value(finished, function=function, outcome=outcome)
        assert after - count == 1, (function, outcome)
    assert value("arq_jobs_started_total", function="retry_once") - retries_started == 2
    assert value("arq_jobs_in_progress", queue="", function="hold") == 0
