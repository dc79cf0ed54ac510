"""JSON job serialization for arq, used by both the pool and the worker.

arq pickles jobs by default, which lets anyone who can write to Redis run
code in the worker. JSON carries only data; an exception a job raised is
stored as its type name and message and comes back as `JobFailed`, except
`asyncio.CancelledError`, which arq itself needs to recognise aborted jobs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["JobFailed", "deserialize", "serialize"]

EXCEPTION_KEY = "__arq_exception__"


class JobFailed(Exception):
    """A job's exception, read back from Redis as its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


def serialize(data: dict[str, Any]) -> bytes:
    return _encoder.encode(data).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = _decoder.decode(raw.decode())
    return data


def _encode(value: object) -> object:
    if isinstance(value, JobFailed):
        return {EXCEPTION_KEY: value.type_name, "message": value.message}
    if isinstance(value, BaseException):
        return {EXCEPTION_KEY: type(value).__name__, "message": str(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decode(value: dict[str, Any]) -> object:
    if EXCEPTION_KEY not in value or value.keys() != {EXCEPTION_KEY, "message"}:
        return value
    type_name, message = str(value[EXCEPTION_KEY]), str(value["message"])
    if type_name == "CancelledError":
        return asyncio.CancelledError(message)
    return JobFailed(type_name, message)


# Built once: json.dumps/json.loads with options build a new coder per call,
# which doubled the cost of decoding a job (bench/).
_encoder = json.JSONEncoder(default=_encode, separators=(",", ":"))
_decoder = json.JSONDecoder(object_hook=_decode)
