from __future__ import annotations

import asyncio

import pytest

from {{ cookiecutter.package_name }}.serialization import JobFailed, deserialize, serialize


def test_round_trips_json_data() -> None:
    data = {"f": "ping", "a": ["x", 1, 2.5, None, True], "k": {"n": {"deep": [1]}}}
    assert deserialize(serialize(data)) == data


def test_exceptions_come_back_as_type_and_message() -> None:
    restored = deserialize(serialize({"r": KeyError("invoice 7")}))["r"]
    assert isinstance(restored, JobFailed)
    assert (restored.type_name, restored.message) == ("KeyError", "'invoice 7'")
    assert deserialize(serialize({"r": restored}))["r"].type_name == "KeyError"


def test_cancelled_error_stays_cancelled_for_arq_abort() -> None:
    restored = deserialize(serialize({"r": asyncio.CancelledError()}))["r"]
    assert isinstance(restored, asyncio.CancelledError)


def test_refuses_objects_json_cannot_carry() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        serialize({"a": [object()]})


def test_never_unpickles() -> None:
    import pickle

    with pytest.raises(ValueError, match=r"Expecting value|invalid"):
        deserialize(pickle.dumps({"f": "ping"}))
