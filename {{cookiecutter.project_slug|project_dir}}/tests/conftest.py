"""Fixtures: the app in mock mode, and the queue contract harness (mock or real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from arq import Retry, func
from arq.connections import RedisSettings
from arq.constants import (
    abort_jobs_ss,
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.typing import WorkerCoroutine
from arq.worker import Worker
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
{%- if cookiecutter.api_auth == "token" %}
from pydantic import SecretStr
{%- endif %}

from {{ cookiecutter.package_name }}.config import ArqMode, Config, LogFormat
from {{ cookiecutter.package_name }}.dependencies.arq import arq_dependency
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.queue import ArqQueue, JobMetadata, MockArqQueue, RedisArqQueue
from {{ cookiecutter.package_name }}.serialization import deserialize, serialize
from {{ cookiecutter.package_name }}.worker.event_loop import use_uvloop
from {{ cookiecutter.package_name }}.worker.metrics import instrumented

URL_VARIABLE = "{{ cookiecutter.env_prefix }}ARQ_QUEUE_URL"
{%- if cookiecutter.api_auth == "token" %}
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
{%- else %}
AUTH: dict[str, str] = {}
{%- endif %}
KEEP_RESULT_S = 1.0
JOB_KEY_PREFIXES = (job_key_prefix, result_key_prefix, in_progress_key_prefix, retry_key_prefix)
# Every test on the loop the worker (worker/event_loop.py) and uvicorn run on, whichever
# test files run: importing the worker's settings would switch to it half-way otherwise.
use_uvloop()


def make_config(**settings: Any) -> Config:
    """A Config for tests: mock mode and text logs unless told otherwise{% if cookiecutter.api_auth == "token" %}, with the test token{% endif %}."""
    defaults: dict[str, Any] = {"arq_mode": ArqMode.test, "log_format": LogFormat.text}
{%- if cookiecutter.api_auth == "token" %}
    defaults["api_tokens"] = SecretStr(TOKEN)
{%- endif %}
    return Config(**{**defaults, **settings})


def client_for(app: FastAPI, root_path: str = "") -> AsyncClient:
    """An HTTP client of the app (in process){% if cookiecutter.api_auth == "token" %} that sends the test token{% endif %}."""
    transport = ASGITransport(app=app, root_path=root_path)
    return AsyncClient(transport=transport, base_url="http://test", headers=AUTH)


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture
async def app(config: Config) -> AsyncIterator[FastAPI]:
    application = create_app(config)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with client_for(app) as http:
        yield http


@pytest.fixture
async def mock_queue(app: FastAPI) -> MockArqQueue:
    queue = await arq_dependency()
    assert isinstance(queue, MockArqQueue)
    return queue


# --- Real Redis, for the integration marker -------------------------------


@pytest.fixture(scope="session")
def redis_config() -> Config:
    """The production config from the environment (or .env); Redis must answer.

    Without one, the session stops at once with one clear line instead of failing each test.
    """
    config = make_config(arq_mode=ArqMode.production, log_format=LogFormat.json)
    if "arq_queue_url" not in config.model_fields_set:
        pytest.exit(f"{URL_VARIABLE} is not set (environment or .env): point it at a Redis", 1)
    client = sync_client(config)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.exit(f"Redis at {config.arq_queue_url} is unreachable ({error}); start one first", 1)
    finally:
        client.close()
    return config


def sync_client(config: Config) -> redis.Redis:
    settings = config.arq_redis_settings
    return redis.Redis(
        host=str(settings.host),
        port=settings.port,
        unix_socket_path=settings.unix_socket_path,
        db=settings.database,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        socket_connect_timeout=2,
    )


@pytest.fixture(autouse=True)
def delete_what_jobs_left(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """After an integration test, delete the keys of every job it enqueued and their queues.

    Autouse, so it is set up before (and torn down after) the workers a test runs.
    """
    if request.node.get_closest_marker("integration") is None:
        yield
        return
    config: Config = request.getfixturevalue("redis_config")
    enqueued: set[tuple[str, str]] = set()
    enqueue = RedisArqQueue.enqueue

    async def recording(self: RedisArqQueue, *args: Any, **kwargs: Any) -> JobMetadata:
        job = await enqueue(self, *args, **kwargs)
        enqueued.add((job.queue_name, job.id))
        return job

    monkeypatch.setattr(RedisArqQueue, "enqueue", recording)
    yield
    client = sync_client(config)
    try:
        for queue_name, job_id in enqueued:
            client.delete(
                queue_name,
                queue_name + health_check_key_suffix,
                *(prefix + job_id for prefix in JOB_KEY_PREFIXES),
            )
            client.zrem(abort_jobs_ss, job_id)
    finally:
        client.close()


# --- The contract harness: the same job functions, run by a real worker or by hand


async def succeed(ctx: dict[str, Any], value: int, *, factor: int = 2) -> int:
    return value * factor


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


_held: dict[str, asyncio.Event] = {}


async def hold(ctx: dict[str, Any]) -> str:
    """Runs until released (or cancelled by an abort)."""
    event = _held.setdefault(ctx["job_id"], asyncio.Event())
    await event.wait()
    return "released"


async def echo(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Returns its arguments as it received them."""
    return {"args": list(args), "kwargs": kwargs}


async def retry_once(ctx: dict[str, Any]) -> int:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.01)
    return int(ctx["job_try"])


async def unstorable(ctx: dict[str, Any]) -> object:
    return object()  # no JSON for it: arq stores a failure instead


FUNCTIONS: dict[str, WorkerCoroutine] = {
    "succeed": succeed,
    "fail": fail,
    "hold": hold,
    "echo": echo,
    "unstorable": unstorable,
    "retry_once": retry_once,
}


class Harness:
    """Moves jobs along: a real arq worker for Redis, `set_*` helpers for the mock."""

    def __init__(
        self,
        queue: ArqQueue,
        redis_settings: RedisSettings | None,
        keep_result: float = KEEP_RESULT_S,
    ) -> None:
        self.queue = queue
        self.redis_settings = redis_settings
        self.keep_result = keep_result
        self._running: list[tuple[asyncio.Task[None], Worker]] = []
        self.confirm_aborts = True

    def ignore_aborts(self) -> None:
        """From now on, workers do not act on abort requests (and so never confirm them)."""
        self.confirm_aborts = False
        if isinstance(self.queue, MockArqQueue):
            self.queue.confirm_aborts = False

    def worker(self, queue_name: str) -> Worker:
        return Worker(
            functions=instrumented(*(func(f, name=name) for name, f in FUNCTIONS.items())),
            redis_settings=self.redis_settings,
            queue_name=queue_name,
            burst=True,
            poll_delay=0.01,
            handle_signals=False,
            allow_abort_jobs=self.confirm_aborts,
            keep_result=self.keep_result,
            job_serializer=serialize,
            job_deserializer=deserialize,
        )

    async def run_all(self, queue_name: str | None = None) -> None:
        """Run every waiting job in the queue to its end."""
        queue_name = queue_name or self.queue.default_queue_name
        if isinstance(self.queue, MockArqQueue):
            waiting = [i for i, job in self.queue._jobs.items() if job.queue_name == queue_name]
            for job_id in waiting:
                await self._run_by_hand(job_id, queue_name)
            return
        worker = self.worker(queue_name)
        try:
            await worker.main()
        finally:
            await worker.close()

    async def start_holding(self, job_id: str, queue_name: str | None = None) -> None:
        """Get a `hold` job running, and return once the queue says in_progress."""
        queue_name = queue_name or self.queue.default_queue_name
        _held[job_id] = asyncio.Event()
        if isinstance(self.queue, MockArqQueue):
            await self.queue.set_in_progress(job_id, queue_name)
            return
        worker = self.worker(queue_name)
        self._running.append((asyncio.create_task(worker.main()), worker))
        for _ in range(500):
            metadata = await self.queue.get_job_metadata(job_id, queue_name)
            if metadata.status == "in_progress":
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"job {job_id} never started")

    async def release(self, job_id: str, queue_name: str | None = None) -> None:
        _held[job_id].set()
        if isinstance(self.queue, MockArqQueue):
            await self.queue.set_complete(job_id, result="released", queue_name=queue_name)
            return
        await self.wait_for_workers()

    async def wait_for_workers(self) -> None:
        """Wait for the running burst workers to drain their queue, and close them."""
        while self._running:
            task, worker = self._running.pop()
            try:
                await asyncio.wait_for(task, timeout=10)
            finally:
                await worker.close()

    async def aclose(self) -> None:
        for event in _held.values():
            event.set()
        with contextlib.suppress(Exception):
            await self.wait_for_workers()
        await self.queue.aclose()

    async def _run_by_hand(self, job_id: str, queue_name: str) -> None:
        assert isinstance(self.queue, MockArqQueue)
        job = await self.queue.get_job_metadata(job_id, queue_name)
        if job.status != "queued":
            return
        await self.queue.set_in_progress(job_id, queue_name)
        ctx = {"job_id": job_id, "job_try": 1}
        try:
            result = await FUNCTIONS[job.name](ctx, *job.args, **job.kwargs)
        except Exception as error:
            await self.queue.set_complete(
                job_id, result=error, success=False, queue_name=queue_name
            )
        else:
            await self.queue.set_complete(job_id, result=result, queue_name=queue_name)


@pytest.fixture(params=["mock", pytest.param("redis", marks=pytest.mark.integration)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    queue_name = f"test:{uuid.uuid4().hex}"
    if request.param == "mock":
        harness = Harness(
            MockArqQueue(default_queue_name=queue_name, keep_result=KEEP_RESULT_S), None
        )
    else:
        config: Config = request.getfixturevalue("redis_config")
        settings = config.arq_redis_settings
        harness = Harness(
            RedisArqQueue.from_settings(settings, default_queue_name=queue_name), settings
        )
    try:
        yield harness
    finally:
        await harness.aclose()
