"""arq's job and result records, written and read the same way for Redis and the mock.

A job is stored as arq's worker expects it (`arq.jobs.serialize_job`), a result as
arq's worker writes it (`arq.jobs.serialize_result`), both through the project's
serializer. The mock keeps the very bytes Redis would hold, so both clients read
back the same values and refuse the same ones.
"""

from __future__ import annotations

from typing import Any

from arq.jobs import (
    DeserializationError,
    JobDef,
    JobStatus,
    SerializationError,
    deserialize_job,
    deserialize_result,
    serialize_job,
    serialize_result,
)
from arq.jobs import JobResult as StoredResult

from ..serialization import deserialize, serialize
from .errors import JobNotFound, JobNotSerializable
from .models import JobError, JobMetadata, JobResult

__all__ = [
    "StoredResult",
    "decode_job",
    "decode_result",
    "encode_job",
    "encode_result",
    "metadata",
    "result",
]


def encode_job(function: str, args: tuple[Any, ...], kwargs: dict[str, Any], now_ms: int) -> bytes:
    try:
        return serialize_job(function, args, kwargs, None, now_ms, serializer=serialize)
    except SerializationError as error:
        raise JobNotSerializable(f"{error}: {error.__cause__}") from error.__cause__


def encode_result(job: JobDef, job_id: str, queue_name: str, **outcome: Any) -> bytes | None:
    """What arq's worker stores when a job ends: `outcome` is success, result, start_ms,
    finished_ms; a result it cannot serialize becomes a failure, as in the worker."""
    return serialize_result(
        job.function,
        job.args,
        job.kwargs,
        job.job_try or 1,
        int(job.enqueue_time.timestamp() * 1000),
        ref=f"{job_id}:{job.function}",
        queue_name=queue_name,
        job_id=job_id,
        serializer=serialize,
        **outcome,
    )


def decode_job(job_id: str, raw: bytes) -> JobDef:
    """The job, or `JobNotFound` for anything this app did not write (pickled, malformed)."""
    try:
        info = deserialize_job(raw, deserializer=deserialize)
    except DeserializationError:
        raise JobNotFound(job_id) from None
    _check(job_id, info)
    return info


def decode_result(job_id: str, raw: bytes) -> StoredResult:
    """The result, or `JobNotFound` for anything this app's worker did not write."""
    try:
        info = deserialize_result(raw, deserializer=deserialize)
    except DeserializationError:
        raise JobNotFound(job_id) from None
    _check(job_id, info)
    if not isinstance(info.success, bool) or not isinstance(info.queue_name, str):
        raise JobNotFound(job_id)
    return info


def _check(job_id: str, info: JobDef) -> None:
    """Records that decode but are not shaped like arq's (foreign data in the same Redis)."""
    if not (
        isinstance(info.function, str)
        and isinstance(info.args, list | tuple)
        and isinstance(info.kwargs, dict)
    ):
        raise JobNotFound(job_id)


def metadata(info: JobDef, job_id: str, status: JobStatus, queue_name: str) -> JobMetadata:
    # Built without validation: decode_job/decode_result checked the record's shape, and
    # this runs on every enqueue (bench/).
    return JobMetadata.model_construct(
        id=job_id,
        name=info.function,
        args=tuple(info.args),
        kwargs=info.kwargs,
        enqueue_time=info.enqueue_time,
        status=status,
        queue_name=getattr(info, "queue_name", None) or queue_name,
    )


def result(info: StoredResult, job_id: str) -> JobResult:
    return JobResult(
        **metadata(info, job_id, JobStatus.complete, info.queue_name).model_dump(),
        start_time=info.start_time,
        finish_time=info.finish_time,
        success=info.success,
        result=info.result if info.success else None,
        error=None if info.success else JobError.from_failure(info.result),
    )
