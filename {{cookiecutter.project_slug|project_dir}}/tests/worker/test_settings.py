from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import pkgutil
import socket
import sys
from typing import Any

import httpx
import pytest
from arq.cron import CronJob
from arq.worker import Function

from {{ cookiecutter.package_name }}.logs import (
    JsonFormatter,
    bind_job,
    configure_logging,
)
from {{ cookiecutter.package_name }}.serialization import deserialize, serialize
from {{ cookiecutter.package_name }}.worker import functions
from {{ cookiecutter.package_name }}.worker import main as worker_main
from {{ cookiecutter.package_name }}.worker.event_loop import use_uvloop
from {{ cookiecutter.package_name }}.worker.main import WorkerSettings, config, shutdown, startup

from ..conftest import make_config


def test_worker_runs_the_example_jobs_and_the_nightly_cron() -> None:
    names = {f.name for f in WorkerSettings.functions if isinstance(f, Function)}
    assert {"ping", "sync_invoice"} <= names
    assert WorkerSettings.cron_jobs is not None
    (cleanup,) = WorkerSettings.cron_jobs
    assert cleanup.name == "cleanup_synced_invoices"
    assert (cleanup.hour, cleanup.minute) == ({3}, {0})


def test_every_job_module_is_registered() -> None:
    """A job in worker/functions/ that WorkerSettings does not list would never run."""
    registered = {
        inspect.unwrap(job.coroutine)
        for job in [*WorkerSettings.functions, *(WorkerSettings.cron_jobs or ())]
        if isinstance(job, Function | CronJob)
    }
    for module_info in pkgutil.iter_modules(functions.__path__):
        module = importlib.import_module(f"{functions.__name__}.{module_info.name}")
        jobs = {
            value
            for value in vars(module).values()
            if inspect.iscoroutinefunction(value) and value.__module__ == module.__name__
        }
        assert jobs & registered, f"no job of {module.__name__} is in WorkerSettings"


def test_worker_uses_json_not_pickle_and_tuned_config() -> None:
    assert WorkerSettings.job_serializer is serialize
    assert WorkerSettings.job_deserializer is deserialize
    assert WorkerSettings.poll_delay == config.worker_poll_delay < 0.5
    assert WorkerSettings.max_jobs == config.worker_max_jobs
    assert WorkerSettings.health_check_interval == config.worker_health_check_interval <= 60
    assert WorkerSettings.job_completion_wait == config.worker_job_completion_wait > 0
    assert WorkerSettings.allow_abort_jobs is True
    assert WorkerSettings.queue_name == config.arq_queue_name


async def test_startup_builds_and_shutdown_closes_shared_clients() -> None:
    ctx: dict[str, Any] = {}
    await startup(ctx)
    http = ctx["http"]
    assert ctx["config"] is config
    assert not http.is_closed
    await shutdown(ctx)
    assert http.is_closed
    assert "http" not in ctx


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_a_jobs_log_lines_carry_its_id_and_no_others_do(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    configure_logging("INFO", fmt)
    logger = logging.getLogger("arq.jobs")

    async def run_job() -> None:  # arq runs each job (and its on_job_start hook) in a task
        bind_job("job-42", 3)
        logger.info("working on it")

    await asyncio.create_task(run_job())
    logger.info("between jobs")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    if fmt == "text":
        assert lines[0].endswith(" INFO arq.jobs [job-42] working on it")
        assert lines[1].endswith(" INFO arq.jobs between jobs")
        return
    entries = [json.loads(line) for line in lines]
    assert entries[0]["message"] == "working on it"
    assert (entries[0]["job_id"], entries[0]["job_try"]) == ("job-42", 3)
    assert "job_id" not in entries[1]
    assert "job_try" not in entries[1]
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)


def test_log_level_applies_to_arq_and_uvicorn(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # as uvicorn's own config does
    configure_logging("WARNING", "text")
    logging.getLogger("uvicorn.access").info("GET / 200")
    logging.getLogger("arq.worker").info("job done")
    logging.getLogger("arq.worker").warning("job failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("job failed")


def test_uvicorns_no_access_log_is_respected(capsys: pytest.CaptureFixture[str]) -> None:
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate = [], False  # what `uvicorn --no-access-log` leaves
    try:
        configure_logging("INFO", "text")
        access.info("GET / 200")
        assert capsys.readouterr().err == ""
    finally:
        access.propagate = True
    configure_logging("INFO", "text")
    access.info("GET / 200")
    assert "GET / 200" in capsys.readouterr().err


async def test_a_busy_metrics_port_does_not_stop_the_worker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))  # noqa: S104 (where the worker's server binds)
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(worker_main, "config", make_config(worker_metrics_port=port))
        ctx: dict[str, Any] = {}
        await startup(ctx)
        try:
            assert "metrics_server" not in ctx
            assert f"worker metrics not served on port {port}" in capsys.readouterr().err
        finally:
            await shutdown(ctx)


async def test_the_worker_serves_its_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(worker_main, "config", make_config(worker_metrics_port=port))
    ctx: dict[str, Any] = {}
    await startup(ctx)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert "arq_jobs_started_total" in response.text
    finally:
        await shutdown(ctx)
    assert "metrics_server" not in ctx


def test_the_worker_runs_on_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the settings set uvloop's policy: arq's CLI builds the worker's loop from it."""
    uvloop = pytest.importorskip("uvloop")  # a dependency everywhere but on Windows
    assert worker_main.UVLOOP
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    # Without uvloop (Windows), asyncio's policy stays.
    policy = asyncio.get_event_loop_policy()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    assert use_uvloop() is False
    assert asyncio.get_event_loop_policy() is policy
