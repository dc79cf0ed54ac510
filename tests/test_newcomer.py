"""The generated README, run as a newcomer would: every command and snippet as written, on a
fresh render, with real processes (a private redis-server, `tox run -e run`, uvicorn, the worker).

The only liberty taken: servers listen on a free port (through `PORT` / `UVICORN_PORT`, which the
commands read) and `localhost:8000` in a command is sent there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from . import readme
from .support import (
    DEFAULT_PACKAGE,
    DEFAULT_PREFIX,
    Process,
    RedisServer,
    clean_env,
    free_port,
    render,
    run,
    serve_upstream,
    session_processes,
    wait_until_healthy,
)

TOX_RUN_START_S = 300  # the first `tox run -e run` builds its env


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def locked_project(tmp_path: Path, cookiecutter_config: Path) -> Path:
    """A fresh default render of our own (these tests change it), with its uv.lock."""
    return render(tmp_path / "render", cookiecutter_config, lock=True)


def shell(command: str, cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    """Run one README command line in bash, as a person pastes it; return what it printed on stdout."""
    return run(["bash", "-c", command], cwd=cwd, env=env, timeout=timeout).stdout


class ToxRun:
    """`tox run -e run` in a session of its own, so every process it starts can be found."""

    def __init__(self, command: str, project: Path, env: dict[str, str], logdir: Path) -> None:
        self.port = int(env["PORT"])
        args = shlex.split(command, comments=True)
        assert args == ["tox", "run", "-e", "run"], command
        self.process = Process("tox-run", args, env, logdir, cwd=project, start_new_session=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        wait_until_healthy(self.client, self.process, timeout=TOX_RUN_START_S)

    def wait_for_job(self, job_id: str, timeout: float = 30) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body: dict[str, object] = self.client.get(f"/jobs/{job_id}").json()
            if body.get("status") == "complete":
                return body
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not complete: {body}\n{self.process.text()}")

    def stop(self, sig: signal.Signals, *, group: bool) -> int | None:
        """Send `sig` to tox (or its whole process group, like Ctrl-C in a terminal), then check
        that nothing tox started is left running."""
        pid = self.process.popen.pid
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
        code = self.process.popen.wait(timeout=60)
        self.process.stop()  # closes the log; the process has ended, so it sends nothing
        self.client.close()
        deadline = time.monotonic() + 30
        while left := session_processes(pid):
            assert time.monotonic() < deadline, f"left running after {sig.name}: {left}"
            time.sleep(0.2)
        text = self.process.text()
        assert "Traceback" not in text and "BrokenPipeError" not in text, text
        return code


def test_tox_run_serves_the_api_and_a_worker_on_redis_and_stops_cleanly(
    default_project: Path, private_redis: RedisServer, tmp_path: Path
) -> None:
    generated = default_project / "README.md"
    run_command, _ = readme.commands(readme.blocks(readme.section(generated, "Two commands"))[0])
    curl_block = next(b for b in readme.blocks(readme.section(generated, "Two commands")) if "curl" in b.code)
    port = free_port()
    env = clean_env(PORT=str(port), **{f"{DEFAULT_PREFIX}ARQ_QUEUE_URL": private_redis.url})

    dev = ToxRun(run_command, default_project, env, tmp_path)
    post, get = (readme.on_port(command, port) for command in readme.commands(curl_block))
    assert "202 Accepted" in shell(post, default_project, env)
    dev.wait_for_job("hello-1")  # a real worker ran it: the README's GET shows it complete
    shown = json.loads(shell(get, default_project, env))
    assert (shown["status"], shown["success"], shown["result"]) == ("complete", True, "hello")
    assert dev.stop(signal.SIGINT, group=True) == 0  # Ctrl-C

    dev = ToxRun(run_command, default_project, env, tmp_path)
    dev.stop(signal.SIGTERM, group=False)  # SIGTERM to tox alone


def test_add_a_job_as_written_passes_tox_and_a_real_worker_runs_it(
    locked_project: Path, private_redis: RedisServer, tmp_path: Path
) -> None:
    generated = locked_project / "README.md"
    recipe = readme.section(generated, "Add a job")
    env = clean_env()
    created = []
    for block in readme.blocks(recipe):
        if block.lang == "python":
            match = re.search(r"Create[^`]*`([^`]+\.py)`", block.intro)
            assert match, f"which file does this block go in?\n{block.intro}"
            path = locked_project / match.group(1)
            assert not path.exists(), path
            path.write_text(block.code)
            created.append(match.group(1))
        elif block.lang == "diff":
            run(["git", "apply", "--verbose", "-"], cwd=locked_project, input=block.code)
        else:
            for command in readme.commands(block):
                output = shell(command, locked_project, env, timeout=1800)
                assert "congratulations" in output, output
    assert len(created) == 4, created

    port = free_port()
    with serve_upstream() as upstream:
        env.update(
            PORT=str(port),
            **{
                f"{DEFAULT_PREFIX}ARQ_QUEUE_URL": private_redis.url,
                f"{DEFAULT_PREFIX}INVOICE_API_URL": upstream,
            },
        )
        run_command = readme.commands(readme.blocks(readme.section(generated, "Two commands"))[0])[0]
        dev = ToxRun(run_command, locked_project, env, tmp_path)
        (curl,) = re.findall(r"`(curl [^`]+)`", recipe)
        assert "202 Accepted" in shell(readme.on_port(curl, port), locked_project, env)
        body = dev.wait_for_job("fetch-order-o-1")
        assert (body["success"], body["result"]) == (True, {"order_id": "o-1", "total": 12})
        dev.stop(signal.SIGINT, group=True)


def test_without_tox_commands_as_written(
    locked_project: Path, private_redis: RedisServer, tmp_path: Path
) -> None:
    """`uv sync`, then each `uv run` line: tests and mypy pass with no Redis; the three ways to serve
    the app serve it; the worker starts on Redis and stops on SIGTERM."""
    section = readme.section(locked_project / "README.md", "Without tox")
    assert "`uv sync`" in section
    port = free_port()
    env = clean_env(PORT=str(port), UVICORN_PORT=str(port))
    shell("uv sync", locked_project, env)
    (block,) = readme.blocks(section)
    served = set()
    for command in readme.commands(block):
        args = shlex.split(command, comments=True)
        assert args[:2] == ["uv", "run"], command
        if args[2] in {"fastapi", "uvicorn"}:
            server = Process(args[2], args, env, tmp_path, cwd=locked_project)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
            wait_until_healthy(client, server, timeout=60)
            assert "/jobs/ping" in client.get("/openapi.json").json()["paths"]
            client.close()
            assert server.stop(signal.SIGINT) == 0, server.text()
            served.add(" ".join(args[2:4]))
        elif args[2] == "arq":
            worker_env = {**env, f"{DEFAULT_PREFIX}ARQ_QUEUE_URL": private_redis.url}
            worker = Process("arq", args, worker_env, tmp_path, cwd=locked_project)
            wait_for_health_key(private_redis, worker)
            assert worker.stop(signal.SIGTERM) == 0, worker.text()
            served.add("arq")
        else:  # runs to completion, with no Redis anywhere in its environment
            output = shell(command, locked_project, env)
            if args[2] == "pytest":
                summary = output.strip().splitlines()[-1]
                assert " passed" in summary and "error" not in summary, output
    assert served == {"fastapi dev", "fastapi run", f"uvicorn {DEFAULT_PACKAGE}.main:app", "arq"}


def wait_for_health_key(server: RedisServer, worker: Process, timeout: float = 60) -> None:
    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + timeout
    try:
        while not client.exists("arq:queue:health-check"):
            assert worker.popen.poll() is None, worker.text()
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.2)
    finally:
        client.close()


def test_tox_install_command_as_written(tmp_path: Path, cookiecutter_config: Path) -> None:
    section = readme.section(render(tmp_path, cookiecutter_config) / "README.md", "Two commands")
    (install,) = (b for b in readme.blocks(section) if "uv tool install" in b.code)
    env = clean_env(UV_TOOL_DIR=str(tmp_path / "tools"), UV_TOOL_BIN_DIR=str(tmp_path / "bin"))
    (command,) = readme.commands(install)
    shell(command, tmp_path, env)
    version = subprocess.run(
        [str(tmp_path / "bin" / "tox"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert "tox-uv" in version, version
