"""One behaviour suite for both queue clients, so the mock cannot drift from arq.

Each test runs on `MockArqQueue` and, under `tox -e integration`, on
`RedisArqQueue` with a real arq worker.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from arq.jobs import SerializationError

from {{ cookiecutter.package_name }}.queue import (
    AbortResult,
    JobFinished,
    JobNotFound,
    JobNotQueued,
    JobNotSerializable,
    JobResultUnavailable,
    JobStatus,
)
from {{ cookiecutter.package_name }}.serialization import EXCEPTION_KEY

from .conftest import KEEP_RESULT_S, Harness


def new_id() -> str:
    return uuid.uuid4().hex


async def test_enqueue_reports_the_job_as_queued(harness: Harness) -> None:
    queue = harness.queue
    job = await queue.enqueue("succeed", 21, factor=3)

    assert job.status == JobStatus.queued
    assert (job.name, job.args, job.kwargs) == ("succeed", (21,), {"factor": 3})
    assert job.queue_name == queue.default_queue_name
    stored = await queue.get_job_metadata(job.id)
    assert stored.status == JobStatus.queued
    assert (stored.name, stored.args, stored.kwargs) == ("succeed", (21,), {"factor": 3})
    assert abs(stored.enqueue_time - job.enqueue_time) < timedelta(seconds=1)
    with pytest.raises(JobResultUnavailable):
        await queue.get_job_result(job.id)


async def test_a_finished_job_has_its_result(harness: Harness) -> None:
    job = await harness.queue.enqueue("succeed", 21)
    await harness.run_all()

    metadata = await harness.queue.get_job_metadata(job.id)
    result = await harness.queue.get_job_result(job.id)
    assert metadata.status == JobStatus.complete
    assert result.status == JobStatus.complete
    assert result.success is True
    assert result.result == 42
    assert result.error is None
    assert result.start_time <= result.finish_time


async def test_a_failed_job_reports_its_error(harness: Harness) -> None:
    job = await harness.queue.enqueue("fail", "upstream said no")
    await harness.run_all()

    result = await harness.queue.get_job_result(job.id)
    assert result.success is False
    assert result.result is None
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("ValueError", "upstream said no")


async def test_a_duplicate_job_id_is_refused_while_queued(harness: Harness) -> None:
    job_id = new_id()
    await harness.queue.enqueue("succeed", 1, _job_id=job_id)

    with pytest.raises(JobNotQueued) as raised:
        await harness.queue.enqueue("succeed", 2, _job_id=job_id)
    assert raised.value.job_id == job_id
    # The first job is untouched.
    assert (await harness.queue.get_job_metadata(job_id)).args == (1,)


async def test_a_duplicate_job_id_is_refused_while_its_result_is_kept(harness: Harness) -> None:
    job_id = new_id()
    await harness.queue.enqueue("succeed", 1, _job_id=job_id)
    await harness.run_all()

    with pytest.raises(JobNotQueued):
        await harness.queue.enqueue("succeed", 1, _job_id=job_id)
    await asyncio.sleep(KEEP_RESULT_S + 0.2)
    again = await harness.queue.enqueue("succeed", 5, _job_id=job_id)
    assert again.status == JobStatus.queued


async def test_a_job_id_is_taken_across_queues(harness: Harness) -> None:
    job_id = new_id()
    await harness.queue.enqueue("succeed", 1, _job_id=job_id)
    with pytest.raises(JobNotQueued):
        await harness.queue.enqueue("succeed", 1, _job_id=job_id, _queue_name=f"other:{job_id}")


@pytest.mark.parametrize("how", ["defer_by", "defer_until"])
async def test_deferred_jobs_report_deferred_and_wait(harness: Harness, how: str) -> None:
    if how == "defer_by":
        job = await harness.queue.enqueue("succeed", 1, _defer_by=timedelta(minutes=5))
    else:
        later = datetime.now(tz=UTC) + timedelta(minutes=5)
        job = await harness.queue.enqueue("succeed", 1, _defer_until=later)

    assert job.status == JobStatus.deferred
    assert (await harness.queue.get_job_metadata(job.id)).status == JobStatus.deferred
    assert await harness.queue.abort_job(job.id) is AbortResult.removed


async def test_a_short_deferral_becomes_queued(harness: Harness) -> None:
    job = await harness.queue.enqueue("succeed", 1, _defer_by=0.2)
    assert job.status == JobStatus.deferred
    await asyncio.sleep(0.3)
    assert (await harness.queue.get_job_metadata(job.id)).status == JobStatus.queued


async def test_a_job_in_progress_reports_it(harness: Harness) -> None:
    job = await harness.queue.enqueue("hold")
    await harness.start_holding(job.id)

    assert (await harness.queue.get_job_metadata(job.id)).status == JobStatus.in_progress
    with pytest.raises(JobResultUnavailable):
        await harness.queue.get_job_result(job.id)
    await harness.release(job.id)
    result = await harness.queue.get_job_result(job.id)
    assert (result.success, result.result) == (True, "released")


async def test_aborting_a_waiting_job_removes_it(harness: Harness) -> None:
    job = await harness.queue.enqueue("succeed", 1)

    assert await harness.queue.abort_job(job.id) is AbortResult.removed
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_metadata(job.id)
    await harness.run_all()
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_result(job.id)
    # The id is free again.
    assert (await harness.queue.enqueue("succeed", 1, _job_id=job.id)).id == job.id


async def test_aborting_a_running_job_completes_it_as_failed(harness: Harness) -> None:
    job = await harness.queue.enqueue("hold")
    await harness.start_holding(job.id)

    assert await harness.queue.abort_job(job.id) is AbortResult.cancelled
    await harness.wait_for_workers()
    result = await harness.queue.get_job_result(job.id)
    assert result.success is False
    assert result.error is not None
    assert result.error.type == "CancelledError"


async def test_aborting_a_finished_job_is_refused(harness: Harness) -> None:
    job = await harness.queue.enqueue("succeed", 1)
    await harness.run_all()

    with pytest.raises(JobFinished):
        await harness.queue.abort_job(job.id)
    assert (await harness.queue.get_job_result(job.id)).result == 2


async def test_unknown_jobs_are_not_found(harness: Harness) -> None:
    job_id = new_id()
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_metadata(job_id)
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_result(job_id)
    with pytest.raises(JobNotFound):
        await harness.queue.abort_job(job_id)


async def test_queues_are_separate(harness: Harness) -> None:
    other = f"other:{new_id()}"
    job = await harness.queue.enqueue("succeed", 4, _queue_name=other)

    assert job.queue_name == other
    assert (await harness.queue.get_job_metadata(job.id, other)).status == JobStatus.queued
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_metadata(job.id)
    await harness.run_all()  # the default queue's worker does not take it
    assert (await harness.queue.get_job_metadata(job.id, other)).status == JobStatus.queued

    await harness.run_all(other)
    result = await harness.queue.get_job_result(job.id, other)
    assert (result.result, result.queue_name) == (8, other)


async def test_arguments_and_results_read_back_as_stored(harness: Harness) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    job = await harness.queue.enqueue("echo", (1, 2), {1: "a"}, when=when, name="n")

    stored = (([1, 2], {"1": "a"}), {"when": "2026-01-02T03:04:05Z", "name": "n"})
    assert (job.args, job.kwargs) == stored
    metadata = await harness.queue.get_job_metadata(job.id)
    assert (metadata.name, metadata.args, metadata.kwargs) == ("echo", *stored)
    await harness.run_all()
    result = await harness.queue.get_job_result(job.id)
    assert result.result == {"args": list(stored[0]), "kwargs": stored[1]}


async def test_arguments_json_cannot_carry_are_refused(harness: Harness) -> None:
    with pytest.raises(JobNotSerializable) as raised:
        await harness.queue.enqueue("echo", object())
    assert isinstance(raised.value, SerializationError)  # what arq itself raises


async def test_a_result_shaped_like_a_failure_is_still_a_result(harness: Harness) -> None:
    looks_like = {EXCEPTION_KEY: "KeyError", "message": "not an error"}
    job = await harness.queue.enqueue("echo", looks_like)
    await harness.run_all()
    result = await harness.queue.get_job_result(job.id)
    assert (result.success, result.result) == (True, {"args": [looks_like], "kwargs": {}})


async def test_a_result_the_worker_cannot_store_fails_the_job(harness: Harness) -> None:
    job = await harness.queue.enqueue("unstorable")
    await harness.run_all()
    result = await harness.queue.get_job_result(job.id)
    assert result.success is False
    assert result.error is not None
    assert result.error.message == "unable to serialize result"


async def test_a_deferral_into_the_past_runs_at_once(harness: Harness) -> None:
    two_days_ago = datetime.now(tz=UTC) - timedelta(days=2)
    job = await harness.queue.enqueue("succeed", 1, _defer_until=two_days_ago)
    assert job.status == JobStatus.queued
    await harness.run_all()
    assert (await harness.queue.get_job_result(job.id)).result == 2


async def test_a_keyword_argument_may_be_called_function_or_name(harness: Harness) -> None:
    job = await harness.queue.enqueue("echo", function="f", name="n")
    assert (job.name, job.kwargs) == ("echo", {"function": "f", "name": "n"})
    await harness.run_all()
    assert (await harness.queue.get_job_result(job.id)).result["kwargs"] == job.kwargs


async def test_a_job_is_not_found_through_another_queue(harness: Harness) -> None:
    other = f"other:{new_id()}"
    waiting = await harness.queue.enqueue("succeed", 1)
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_metadata(waiting.id, other)
    with pytest.raises(JobNotFound):
        await harness.queue.abort_job(waiting.id, other)

    running = await harness.queue.enqueue("hold")
    await harness.start_holding(running.id)
    with pytest.raises(JobNotFound):
        await harness.queue.get_job_metadata(running.id, other)
    with pytest.raises(JobNotFound):
        await harness.queue.abort_job(running.id, other)
    assert (await harness.queue.get_job_metadata(running.id)).status == JobStatus.in_progress
    await harness.release(running.id)
    await harness.run_all()
    # Untouched by the wrong-queue aborts: both ran.
    assert (await harness.queue.get_job_result(waiting.id)).result == 2
    assert (await harness.queue.get_job_result(running.id)).result == "released"


async def test_abort_and_enqueue_again_in_quick_succession(harness: Harness) -> None:
    job_id = new_id()
    for _ in range(3):
        await harness.queue.enqueue("succeed", 1, _job_id=job_id)
        assert await harness.queue.abort_job(job_id) is AbortResult.removed
    await harness.queue.enqueue("succeed", 5, _job_id=job_id)
    await harness.run_all()
    result = await harness.queue.get_job_result(job_id)
    assert (result.success, result.result) == (True, 10)  # no leftover marker cancelled it


async def test_an_abort_the_worker_does_not_confirm_is_only_requested(harness: Harness) -> None:
    harness.ignore_aborts()
    job = await harness.queue.enqueue("hold")
    await harness.start_holding(job.id)

    assert await harness.queue.abort_job(job.id, timeout=0.3) is AbortResult.requested
    assert (await harness.queue.get_job_metadata(job.id)).status == JobStatus.in_progress
    await harness.release(job.id)
    assert (await harness.queue.get_job_result(job.id)).result == "released"
