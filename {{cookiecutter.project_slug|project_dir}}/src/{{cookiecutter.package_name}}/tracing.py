"""OpenTelemetry traces, off unless an OTLP endpoint is configured.

Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and the API
and the worker export spans over OTLP/HTTP; every other standard `OTEL_*` variable
applies (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, headers...).
A request that enqueues a job and the job's run in the worker are one trace: the
serializer writes the enqueue's W3C `traceparent` into the job record, beside arq's own
fields, and the worker's span for the job is its child. Off, it costs a flag test.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "TraceRequests",
    "configure_tracing",
    "enabled",
    "end_job_span",
    "remember_job",
    "shutdown_tracing",
    "start_job_span",
    "traceparent",
    "tracer",
]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SPAN_KEY = "_trace_span"  # in a job's ctx

# A no-op until configure_tracing; then the provider's (no global provider is set, so
# tracing can be configured again after shutdown_tracing, as tests do).
tracer: trace.Tracer = trace.NoOpTracer()
_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
# The function and traceparent of the job record the worker decoded last, in this task's
# context: arq decodes a job in the task that then runs its hooks and the job.
_incoming: ContextVar[tuple[str, str | None] | None] = ContextVar("incoming_job", default=None)


def configure_tracing(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Export spans if an OTLP endpoint is set (or `exporter` is given); say whether on."""
    global _provider, tracer
    if _provider is not None:
        return True
    wanted = any(os.environ.get(name) for name in ENDPOINT_VARIABLES)
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or not (wanted or exporter):
        return False
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    _provider = TracerProvider(resource=Resource.create({"service.name": name}))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = _provider.get_tracer("{{ cookiecutter.package_name }}")
    return True


def enabled() -> bool:
    return _provider is not None


def shutdown_tracing() -> None:
    """Send what is buffered, and stop."""
    global _provider, tracer
    if _provider is not None:
        _provider.shutdown()
        _provider = None
        tracer = trace.NoOpTracer()


def traceparent() -> str | None:
    """The current span as a W3C traceparent, if tracing is on and a span is current."""
    if _provider is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def remember_job(function: str, parent: str | None) -> None:
    _incoming.set((function, parent))


def start_job_span(ctx: dict[str, Any]) -> None:
    """In arq's on_job_start: the job's span, a child of its enqueue, current until it ends.

    Current in arq's task, so its log lines about the job carry the trace id, and in the
    job's own task, which arq creates after this hook and which copies this context."""
    incoming = _incoming.get()
    if _provider is None or incoming is None:
        return
    function, parent = incoming
    context = _propagator.extract({"traceparent": parent}) if parent else None
    span = tracer.start_span(
        f"job {function}",
        context=context,
        kind=SpanKind.CONSUMER,
        attributes={"arq.job_id": ctx["job_id"], "arq.job_try": ctx["job_try"]},
    )
    ctx[SPAN_KEY] = (span, attach(trace.set_span_in_context(span)))


def end_job_span(ctx: dict[str, Any]) -> None:
    """In arq's after_job_end."""
    started = ctx.pop(SPAN_KEY, None)
    if started is not None:
        span, token = started
        span.end()
        detach(token)


class TraceRequests:
    """ASGI middleware: a server span per request, named by its route template, continuing
    the caller's trace when it sends a traceparent. Added only when tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        with tracer.start_as_current_span(
            scope["method"], context=_propagator.extract(carrier), kind=SpanKind.SERVER
        ) as span:

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
