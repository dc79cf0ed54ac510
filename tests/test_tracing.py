"""Traces across processes: a request to the API that enqueues a job, and the job's run in the
worker (started with the Dockerfile's CMD), arrive at an OTLP collector as one trace.

The collector is a small OTLP/HTTP receiver on loopback that decodes what the API and the
worker export with OpenTelemetry's own protobuf classes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .support import (
    RedisServer,
    app_env,
    free_port,
    running_api,
    running_redis,
    worker_starter,
)

API_TOKEN = "trace-api-token-0123456789"


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class Collector(BaseHTTPRequestHandler):
    spans: ClassVar[list[Span]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    Collector.spans.append(
                        Span(
                            attributes.get("service.name", ""),
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                        )
                    )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("trace-redis")) as server:
        yield server


def test_request_enqueue_and_job_are_one_trace_across_processes(
    default_project: Path, project_venv: Path, redis: RedisServer, collector: str, tmp_path: Path
) -> None:
    env = app_env(project_venv, redis.url, API_TOKEN)
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with running_api(env, tmp_path) as (_, client), worker_starter(default_project, env, tmp_path) as start:
        worker = start()
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # the client's trace
        response = client.post("/jobs/ping", json={"message": "traced"}, headers={"traceparent": caller})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/jobs/{job_id}").json()["status"] != "complete":
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.1)
        while not any(span.name == "job ping" for span in Collector.spans):
            assert time.monotonic() < deadline, f"no job span exported: {Collector.spans}\n{worker.text()}"
            time.sleep(0.1)
        worker_log = worker.text()

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    spans = {span.name: span for span in Collector.spans if span.trace_id == trace_id}
    request, enqueue, job = spans["POST /jobs/ping"], spans["enqueue ping"], spans["job ping"]
    assert request.parent_id == "b7ad6b7169203331"  # continues the caller's trace
    assert enqueue.parent_id == request.span_id
    assert job.parent_id == enqueue.span_id  # across Redis, into the worker process
    assert (request.service, job.service) == ("invoice-sync-api", "invoice-sync-worker")
    # The worker's log lines about the job (arq's own included) carry the trace id.
    lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    job_lines = [line for line in lines if line.get("job_id") == job_id]
    assert job_lines, worker_log
    assert all(line.get("trace_id") == trace_id for line in job_lines), job_lines
