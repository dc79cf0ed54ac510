"""Job routes: enqueue the example jobs, read a job's state, abort it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..dependencies.arq import arq_dependency
from ..queue import (
    AbortResult,
    ArqQueue,
    JobError,
    JobMetadata,
    JobResult,
    JobResultUnavailable,
    JobStatus,
)

__all__ = ["JOB_ID_PATTERN", "JobResponse", "accepted", "job_location", "router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$"
JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="The job id")]
Queue = Annotated[ArqQueue, Depends(arq_dependency)]
ERRORS: dict[int | str, dict[str, Any]] = {
{%- if cookiecutter.api_auth == "token" %}
    401: {"description": "No valid bearer token"},
{%- endif %}
    404: {"description": "No such job"},
    503: {"description": "The job queue (Redis) is unavailable"},
}

ENQUEUE_ERRORS = {code: text for code, text in ERRORS.items() if code != 404}


class JobResponse(BaseModel):
    """A job's state; the result fields are set once it is complete."""

    id: str
    name: str
    status: JobStatus
    queue_name: str
    enqueue_time: datetime
    start_time: datetime | None = None
    finish_time: datetime | None = None
    success: bool | None = None
    result: Any = None
    error: JobError | None = None

    @classmethod
    def of(cls, job: JobMetadata | JobResult) -> JobResponse:
        return cls.model_validate(job.model_dump(exclude={"args", "kwargs"}))


def _unicode(value: str) -> str:
    """Refuse lone surrogates (JSON allows "\\ud800"): no response could carry them back."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


class PingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    message: Annotated[str, AfterValidator(_unicode)] = Field(
        default="pong", max_length=1000, description="Returned as the job's result"
    )
    job_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="Idempotency key: a second ping with it is refused while the first is"
        " kept. The job's id is `ping:<job_id>`, so a client cannot take another job's id.",
    )
    defer_by: float | None = Field(
        default=None,
        ge=0,
        le=86400,
        strict=True,
        allow_inf_nan=False,
        description="Seconds to wait before running",
    )


class SyncInvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def job_location(request: Request, job_id: str) -> str:
    """The job's URL path, below the app's root path (its mount point behind a proxy).

    Built directly: `request.url_for` tries every route and cost about a tenth of
    the enqueue endpoint's time (bench/).
    """
    return f"{request.scope.get('root_path', '')}{router.prefix}/{job_id}"


def accepted(request: Request, response: Response, job: JobMetadata) -> JobResponse:
    """The answer to an enqueue: the job, with its URL in the `Location` header."""
    response.headers["Location"] = job_location(request, job.id)
    return JobResponse.of(job)


@router.post(
    "/ping",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Enqueue a ping job",
    responses={**ENQUEUE_ERRORS, 409: {"description": "A job with this job_id exists"}},
)
async def enqueue_ping(
    body: PingRequest, request: Request, response: Response, queue: Queue
) -> JobResponse:
    job_id = f"ping:{body.job_id}" if body.job_id else None
    job = await queue.enqueue("ping", body.message, _job_id=job_id, _defer_by=body.defer_by)
    return accepted(request, response, job)


@router.post(
    "/sync-invoice",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Enqueue an invoice sync (idempotent: one job per invoice at a time)",
    responses={**ENQUEUE_ERRORS, 409: {"description": "This invoice is already being synced"}},
)
async def enqueue_sync_invoice(
    body: SyncInvoiceRequest, request: Request, response: Response, queue: Queue
) -> JobResponse:
    job = await queue.enqueue(
        "sync_invoice", body.invoice_id, _job_id=f"sync-invoice-{body.invoice_id}"
    )
    return accepted(request, response, job)


@router.get("/{job_id}", summary="A job's status, and its result once complete", responses=ERRORS)
async def get_job(job_id: JobId, queue: Queue) -> JobResponse:
    try:
        return JobResponse.of(await queue.get_job_result(job_id))
    except JobResultUnavailable:
        metadata = await queue.get_job_metadata(job_id)
    if metadata.status is JobStatus.complete:  # it finished between the two reads
        return JobResponse.of(await queue.get_job_result(job_id))
    return JobResponse.of(metadata)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abort a job: a waiting one is removed, a running one cancelled",
    responses={
        **ERRORS,
        202: {"description": "A worker runs it and was asked to cancel it, but has not confirmed"},
        409: {"description": "The job already finished"},
    },
)
async def abort_job(job_id: JobId, queue: Queue) -> Response:
    if await queue.abort_job(job_id) is AbortResult.requested:
        return JSONResponse(
            {"detail": "abort requested: the worker has not confirmed it yet"},
            status_code=status.HTTP_202_ACCEPTED,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
