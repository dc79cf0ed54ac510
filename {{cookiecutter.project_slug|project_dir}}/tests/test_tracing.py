"""Tracing: off unless configured; on, a job's span is a child of the enqueue that stored it,
which is a child of the request, and log lines carry the trace id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.package_name }} import tracing
from {{ cookiecutter.package_name }}.logs import configure_logging
from {{ cookiecutter.package_name }}.queue import MockArqQueue
from {{ cookiecutter.package_name }}.serialization import TRACEPARENT_KEY, deserialize
from {{ cookiecutter.package_name }}.worker.metrics import measured


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("test", exporter=exporter)
    yield exporter
    tracing.shutdown_tracing()


async def test_off_by_default_jobs_carry_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.configure_tracing("test")
    queue = MockArqQueue()
    job = await queue.enqueue("ping")
    assert TRACEPARENT_KEY not in json.loads(queue._jobs[job.id].job)


async def test_request_enqueue_and_job_are_one_trace(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = MockArqQueue()
    with tracing.tracer.start_as_current_span("request"):
        job = await queue.enqueue("ping", "x")
    record = queue._jobs[job.id].job
    assert TRACEPARENT_KEY in json.loads(record)

    configure_logging("INFO", "json")

    async def ping(ctx: dict[str, Any], message: str) -> str:
        logging.getLogger("arq.jobs").info("running")
        return message

    # What the worker does: arq decodes the record, runs the on_job_start hook, the job
    # (through `measured`), then the after_job_end hook.
    deserialize(record)
    ctx: dict[str, Any] = {"job_id": job.id, "job_try": 1}
    tracing.start_job_span(ctx)
    assert await measured("ping", ping)(ctx, "x") == "x"
    tracing.end_job_span(ctx)
    tracing.shutdown_tracing()  # flushes

    found = {span.name: span for span in spans.get_finished_spans()}
    request, enqueue, run = found["request"], found["enqueue ping"], found["job ping"]
    assert enqueue.parent is not None
    assert run.parent is not None
    assert enqueue.parent.span_id == request.context.span_id
    assert run.parent.span_id == enqueue.context.span_id
    assert {request.context.trace_id, run.context.trace_id} == {enqueue.context.trace_id}
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["trace_id"] == format(run.context.trace_id, "032x")
