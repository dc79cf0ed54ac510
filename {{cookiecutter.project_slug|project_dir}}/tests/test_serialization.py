"""The job serializer: JSON through pydantic-core, exceptions only where arq stores a failure."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.serialization import (
    EXCEPTION_KEY,
    JobFailed,
    deserialize,
    serialize,
)


class Colour(Enum):
    red = "red"


class Point(BaseModel):
    x: int


@dataclass
class Pair:
    a: int
    b: str


def round_trip(value: Any) -> Any:
    return deserialize(serialize({"a": value}))["a"]


def test_json_data_round_trips_unchanged() -> None:
    data = {"f": "ping", "a": ["x", 1, 2.5, None, True], "k": {"n": {"deep": [1]}}}
    assert deserialize(serialize(data)) == data


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ((1, "a"), [1, "a"]),
        ({3}, [3]),
        ({1: "a"}, {"1": "a"}),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (date(2026, 1, 2), "2026-01-02"),
        (timedelta(minutes=1), "PT1M"),
        (UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("1.50"), "1.50"),
        (Colour.red, "red"),
        (Point(x=1), {"x": 1}),
        (Pair(1, "b"), {"a": 1, "b": "b"}),
    ],
)
def test_other_values_read_back_as_their_json_form(value: Any, stored: Any) -> None:
    assert round_trip(value) == stored


@pytest.mark.parametrize("value", [object(), b"\xff", "\ud800"])
def test_values_json_cannot_carry_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="serializ"):
        serialize({"a": [value]})


def test_a_failure_comes_back_as_type_and_message() -> None:
    restored = deserialize(serialize({"s": False, "r": KeyError("invoice 7")}))["r"]
    assert isinstance(restored, JobFailed)
    assert (restored.type_name, restored.message) == ("KeyError", "'invoice 7'")
    again = deserialize(serialize({"s": False, "r": restored}))["r"]
    assert (again.type_name, again.message) == ("KeyError", "'invoice 7'")


def test_cancelled_error_stays_cancelled_for_arq_abort() -> None:
    restored = deserialize(serialize({"s": False, "r": asyncio.CancelledError()}))["r"]
    assert isinstance(restored, asyncio.CancelledError)


def test_a_successful_result_shaped_like_a_failure_stays_data() -> None:
    looks_like = {EXCEPTION_KEY: "KeyError", "message": "not an error"}
    assert deserialize(serialize({"s": True, "r": looks_like}))["r"] == looks_like
    assert deserialize(serialize({"a": [looks_like]}))["a"] == [looks_like]


def test_never_unpickles() -> None:
    with pytest.raises(ValueError, match="expected value"):
        deserialize(pickle.dumps({"f": "ping"}))
    with pytest.raises(ValueError, match="JSON object"):
        deserialize(b"[1, 2]")
