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


def auth_header(project: Path) -> dict[str, str]:
    """The development token the post-gen hook wrote to the project's .env, as a header."""
    (token,) = re.findall(rf"^{DEFAULT_PREFIX}API_TOKENS=(.+)$", (project / ".env").read_text(), re.MULTILINE)
    return {"Authorization": f"Bearer {token}"}


def script(setup: list[str], command: str, port: int) -> str:
    """A README command with the lines that set its variables before it, sent to `port`."""
    return "\n".join([*setup, readme.on_port(command, port)])


class ToxRun:
    """`tox run -e run` in a session of its own, so every process it starts can be found."""

    def __init__(self, command: str, project: Path, env: dict[str, str], logdir: Path) -> None:
        self.port = int(env["PORT"])
        args = shlex.split(command, comments=True)
        assert args == ["tox", "run", "-e", "run"], command
        self.process = Process("tox-run", args, env, logdir, cwd=project, start_new_session=True)
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers=auth_header(project), timeout=10
        )
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
    two_commands = readme.blocks(readme.section(generated, "Two commands"))
    run_command, _ = readme.commands(two_commands[0])
    lines = readme.commands(next(b for b in two_commands if "curl" in b.code))
    setup = [line for line in lines if not line.startswith("curl")]
    post, get = (line for line in lines if line.startswith("curl"))
    port = free_port()
    env = clean_env(PORT=str(port), **{f"{DEFAULT_PREFIX}ARQ_QUEUE_URL": private_redis.url})

    dev = ToxRun(run_command, default_project, env, tmp_path)
    assert "202 Accepted" in shell(script(setup, post, port), default_project, env)
    dev.wait_for_job("ping:hello-1")  # a real worker ran it: the README's GET shows it complete
    shown = json.loads(shell(script(setup, get, port), default_project, env))
    assert (shown["status"], shown["success"], shown["result"]) == ("complete", True, "hello")
    anonymous = httpx.post(f"http://127.0.0.1:{port}/jobs/ping", json={}, timeout=10)
    assert anonymous.status_code == 401
    # Ctrl-C. tox exits 0, or 1 when its driver thread also counted the interrupt (a race in
    # tox itself); either way everything stopped, with no traceback: stop() checks that.
    assert dev.stop(signal.SIGINT, group=True) in (0, 1)

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
        two_commands = readme.blocks(readme.section(generated, "Two commands"))
        run_command = readme.commands(two_commands[0])[0]
        lines = readme.commands(next(b for b in two_commands if "curl" in b.code))
        setup = [line for line in lines if not line.startswith("curl")]
        dev = ToxRun(run_command, locked_project, env, tmp_path)
        (curl,) = re.findall(r"`(curl [^`]+)`", recipe)
        assert "202 Accepted" in shell(script(setup, curl, port), locked_project, env)
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
