"""Logging: one JSON object a line, with the job id and try bound in the worker."""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pydantic_core import to_json

from . import tracing

__all__ = ["bind_job", "configure_logging"]

PACKAGE = __name__.partition(".")[0]

_job: ContextVar[dict[str, Any] | None] = ContextVar("job", default=None)


def bind_job(job_id: str, job_try: int) -> None:
    """Add the job id and try to every log line of the current job's task (arq runs
    each job in a task of its own, whose context ends with it: nothing to unbind)."""
    _job.set({"job_id": job_id, "job_try": job_try})


class TextFormatter(logging.Formatter):
    """`logging.Formatter`, with ``%(job)s``: " [<job id>]" in a job, else nothing."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        job = _job.get()
        record.job = f" [{job['job_id']}]" if job else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if tracing.enabled() and (span := trace.get_current_span().get_span_context()).is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if job := _job.get():
            entry.update(job)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # pydantic-core's encoder: a third of the stdlib's time, on two lines a job.
        return to_json(entry, fallback=str).decode()


def configure_logging(
    level: str = "INFO", fmt: str = "json", *, package_only: bool = False
) -> None:
    """Send the app's, arq's and uvicorn's logs to stderr in one format.

    `level` applies to all of them. uvicorn's access log stays off when uvicorn
    was started with `--no-access-log` (it leaves that logger without handlers
    and not propagating). With `package_only`, only this project's loggers: what
    the worker logs before its startup hook (arq's CLI sets up arq's own logging
    after importing the settings, and the hook then calls this again in full).
    """
    # Neither format shows a record's thread or process: logging need not look
    # them up for every record (the Logging HOWTO's "Optimization"; getpid is a system call).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    access = logging.getLogger("uvicorn.access")
    access_log = bool(access.handlers) or access.propagate
    text_format = "%(asctime)s %(levelname)s %(name)s%(job)s %(message)s"
    loggers: dict[str, dict[str, Any]] = {
        name: {
            "handlers": [],
            "propagate": access_log if name == "uvicorn.access" else True,
            "level": "NOTSET",  # the root's `level` applies
        }
        for name in (PACKAGE, "arq", "uvicorn", "uvicorn.access", "uvicorn.error")
    }
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter, "fmt": text_format},
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": fmt}},
    }
    if package_only:
        handler = {"handlers": ["stderr"], "propagate": False, "level": level.upper()}
        config["loggers"] = {PACKAGE: handler}
    else:
        config["root"] = {"handlers": ["stderr"], "level": level.upper()}
        config["loggers"] = loggers
    logging.config.dictConfig(config)
