"""JSON job serialization for arq, used by the pool, the worker and the mock alike.

arq pickles jobs by default, which lets anyone who can write to Redis run code in
the worker. This carries data only, through pydantic-core's JSON (faster than the
standard library's): anything pydantic can dump is accepted (str, int, float, bool,
None, lists, tuples, sets, dicts, datetime, date, time, timedelta, UUID, Decimal,
enums, pydantic models, dataclasses, UTF-8 bytes) and reads back as its JSON form:
bytes as str, tuples and sets as lists, dict keys as strings, datetimes, UUIDs and
Decimals as strings, models and dataclasses as dicts. Anything else raises, and arq
reports a `SerializationError`.

With tracing on (tracing.py), a job record also carries its enqueue's traceparent.

A failed job's exception (a result with `"s": false`) is stored as its type name and
message and reads back as `JobFailed`, except `asyncio.CancelledError`, which arq
itself needs to recognise aborted jobs. Nothing else is ever turned into an exception.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_core import from_json, to_json

from . import tracing

__all__ = ["JobFailed", "deserialize", "serialize"]

EXCEPTION_KEY = "__arq_exception__"
# The enqueueing request's trace, in a job record (arq reads only its own fields).
TRACEPARENT_KEY = "tp"


class JobFailed(Exception):
    """A job's exception, read back from Redis as its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


def serialize(data: dict[str, Any]) -> bytes:
    failure = data.get("r")
    if data.get("s") is False and isinstance(failure, BaseException):
        data = {**data, "r": _exception(failure)}
    elif "s" not in data and (parent := tracing.traceparent()):  # a job, enqueued in a trace
        data = {**data, TRACEPARENT_KEY: parent}
    return to_json(data)


def deserialize(raw: bytes) -> dict[str, Any]:
    data = from_json(raw)
    if not isinstance(data, dict):
        raise ValueError(f"a job or result must be a JSON object, not {type(data).__name__}")
    if tracing.enabled() and "s" not in data and isinstance(data.get("f"), str):
        # A job the worker is about to run: its span will be a child of the enqueue.
        parent = data.get(TRACEPARENT_KEY)
        tracing.remember_job(data["f"], parent if isinstance(parent, str) else None)
    failure = data.get("r")
    if data.get("s") is False and isinstance(failure, dict) and EXCEPTION_KEY in failure:
        data["r"] = _failure(failure)
    return data


def _exception(error: BaseException) -> dict[str, str]:
    if isinstance(error, JobFailed):
        return {EXCEPTION_KEY: error.type_name, "message": error.message}
    return {EXCEPTION_KEY: type(error).__name__, "message": str(error)}


def _failure(marker: dict[str, Any]) -> BaseException:
    type_name, message = str(marker[EXCEPTION_KEY]), str(marker.get("message", ""))
    if type_name == "CancelledError":
        return asyncio.CancelledError(message)
    return JobFailed(type_name, message)
