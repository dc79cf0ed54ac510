"""What only the mock has: the worker's part, played by tests, refused where no worker would."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.queue import (
    AbortResult,
    JobNotSerializable,
    JobStatus,
    MockArqQueue,
)


class Invoice(BaseModel):
    id: str


async def test_a_deferred_job_cannot_be_started() -> None:
    queue = MockArqQueue()
    job = await queue.enqueue("ping", _defer_by=60)
    with pytest.raises(ValueError, match="is deferred: a worker would not start it"):
        await queue.set_in_progress(job.id)


async def test_a_job_must_start_before_it_finishes_and_finishes_once() -> None:
    queue = MockArqQueue()
    job = await queue.enqueue("ping")
    with pytest.raises(ValueError, match="is queued: only a started job can finish"):
        await queue.set_complete(job.id, result="pong")
    await queue.set_in_progress(job.id)
    with pytest.raises(ValueError, match="is in_progress: a worker would not start it"):
        await queue.set_in_progress(job.id)
    await queue.set_complete(job.id, result="pong")
    with pytest.raises(ValueError, match="is complete"):
        await queue.set_complete(job.id, result="again")


async def test_arguments_are_stored_as_the_worker_reads_them() -> None:
    queue = MockArqQueue()
    job = await queue.enqueue("ping", (1, 2), when=datetime(2026, 1, 1), invoice=Invoice(id="7"))
    assert job.args == ([1, 2],)
    assert job.kwargs == {"when": "2026-01-01T00:00:00", "invoice": {"id": "7"}}
    assert (await queue.get_job_metadata(job.id)).args == job.args
    with pytest.raises(JobNotSerializable):
        await queue.enqueue("ping", object())


async def test_a_result_the_worker_cannot_store_fails_the_job() -> None:
    queue = MockArqQueue()
    job = await queue.enqueue("ping")
    await queue.set_in_progress(job.id)
    await queue.set_complete(job.id, result=[object()])

    result = await queue.get_job_result(job.id)
    assert (result.status, result.success) == (JobStatus.complete, False)
    assert result.error is not None
    assert result.error.message == "unable to serialize result"


async def test_a_worker_that_does_not_confirm_leaves_the_abort_requested() -> None:
    queue = MockArqQueue(confirm_aborts=False)
    job = await queue.enqueue("ping")
    await queue.set_in_progress(job.id)
    assert await queue.abort_job(job.id) is AbortResult.requested
    assert (await queue.get_job_metadata(job.id)).status == JobStatus.in_progress


async def test_a_job_keyword_may_be_called_function_or_name() -> None:
    queue = MockArqQueue()
    job = await queue.enqueue("ping", name="n", function="f")
    assert (job.name, job.kwargs) == ("ping", {"name": "n", "function": "f"})
