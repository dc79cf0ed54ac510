"""Helpers shared by the template's suite and `bench/`: renders, child processes, a
private redis-server. Plain functions and classes, no pytest fixtures."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cookiecutter.main import cookiecutter

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = "invoice_sync"
DEFAULT_PREFIX = "INVOICE_SYNC_"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cookiecutter_config(base: Path) -> Path:
    """A cookiecutter config that keeps replay files and clones in `base`, out of the home directory."""
    config = base / "config.yaml"
    config.write_text(f'cookiecutters_dir: "{base / "cookiecutters"}"\nreplay_dir: "{base / "replay"}"\n')
    return config


def render(output_dir: Path, config_file: Path, lock: bool = False, **context: Any) -> Path:
    os.environ["FASTAPI_ARQ_SKIP_LOCK"] = "0" if lock else "1"
    try:
        project = cookiecutter(
            str(ROOT),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={k: str(v) for k, v in context.items()},
            config_file=str(config_file),
        )
    finally:
        os.environ.pop("FASTAPI_ARQ_SKIP_LOCK", None)
    return Path(project)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the outer tox's TOX_*/virtualenv settings,
    which would make a nested tox reuse the outer work dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TOX_") and k not in {"VIRTUAL_ENV", "PYTHONHOME"}
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path | None = None, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show its output in the assertion."""
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


class RedisServer:
    """A private redis-server on a free port; stop and start it to simulate outages.

    With `appendonly`, every write is fsynced to an append-only file in `workdir`,
    so a stop and start keeps the data, as Redis with persistence does in production."""

    def __init__(self, workdir: Path, password: str | None = None, appendonly: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.password = password
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        args += ["--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Upstream(BaseHTTPRequestHandler):
    """The upstream API of the example jobs: any `GET .../<id>` answers `{"id": <id>, "total": 12}`;
    `slow-*` takes 2 s, `down-*` always answers 503."""

    hits: ClassVar[Counter[str]] = Counter()
    started: ClassVar[dict[str, threading.Event]] = {}

    def do_GET(self) -> None:
        record_id = self.path.rsplit("/", 1)[-1]
        Upstream.hits[record_id] += 1
        Upstream.started.setdefault(record_id, threading.Event()).set()
        if record_id.startswith("down-"):
            self.send_response(503)
            self.end_headers()
            return
        if record_id.startswith("slow-"):
            time.sleep(2)
        body = json.dumps({"id": record_id, "total": 12}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class UpstreamServer(ThreadingHTTPServer):
    # The standard library's backlog of 5 drops connections a worker opens at once (its
    # HTTP client keeps 20 of up to 100): each dropped SYN costs a 1 s retransmit.
    request_queue_size = 1024


@contextmanager
def serve_upstream(handler: type[BaseHTTPRequestHandler] = Upstream) -> Iterator[str]:
    """Run `handler` (`Upstream` or a subclass) on a free port; yields its base URL."""
    server = UpstreamServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def dockerfile_cmd(project: Path) -> list[str]:
    match = re.search(r"^CMD (\[.*\])\s*$", (project / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile has no exec-form CMD"
    cmd: list[str] = json.loads(match.group(1))
    return cmd


class Process:
    """A child process whose output goes to a log file we can read and search."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path, **popen: Any) -> None:
        self.log = logdir / f"{name}-{time.monotonic_ns()}.log"
        self._file = self.log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self._file.close()


def session_processes(session_id: int) -> list[str]:
    """The command lines of the live processes in a session (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # ended while we looked
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == session_id and fields[0] != "Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


def wait_for_port(port: int, process: subprocess.Popen[Any] | None = None, timeout: float = 30) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited {process.returncode} before listening")
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    *processes: Process,
    interval: float = 0.1,
    ignore: tuple[type[Exception], ...] = (),
) -> None:
    """Wait until `condition()` is true, `what` naming it in a failure: fails as soon as one
    of `processes` ends, or after `timeout` s, with their logs' tails. A condition raising
    one of `ignore` (e.g. a server not answering yet) counts as false."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except ignore:
            pass
        for process in processes:
            assert process.popen.poll() is None, f"{what}: {process.log.name} ended\n{process.text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s\n" + "\n".join(
            f"--- {process.log.name}\n{process.text()[-3000:]}" for process in processes
        )
        time.sleep(interval)


def wait_until_healthy(client: httpx.Client, process: Process, timeout: float = 30) -> None:
    """Wait until `GET /health` answers 200, while `process` runs."""
    import httpx  # imported here: bench/ uses this module without httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.popen.poll() is None, process.text()
        assert time.monotonic() < deadline, process.text()
        time.sleep(0.1)


def app_env(venv: Path, redis_url: str, api_token: str, **settings: str) -> dict[str, str]:
    """The environment the generated app's processes get here, as in its image: the project's
    venv first on PATH, production mode, JSON logs; `settings` adds or overrides <PREFIX>NAME."""
    values = {"ARQ_MODE": "production", "ARQ_QUEUE_URL": redis_url, "API_TOKENS": api_token}
    # Several workers run side by side here: none serves metrics unless a test asks.
    values |= {"LOG_FORMAT": "json", "WORKER_METRICS_PORT": "0", **settings}
    return {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        **{f"{DEFAULT_PREFIX}{name}": value for name, value in values.items()},
    }


@contextmanager
def running_redis(workdir: Path, **options: Any) -> Iterator[RedisServer]:
    server = RedisServer(workdir, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_api(env: dict[str, str], logdir: Path) -> Iterator[tuple[Process, httpx.Client]]:
    """The generated API under uvicorn on a free port, and a client that sends its token."""
    import httpx  # imported here: bench/ uses this module without httpx

    port = free_port()
    args = ["uvicorn", "--factory", f"{DEFAULT_PACKAGE}.main:create_app", "--port", str(port)]
    process = Process("api", args, env, logdir)
    headers = {"Authorization": f"Bearer {env[f'{DEFAULT_PREFIX}API_TOKENS']}"}
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
    try:
        wait_until_healthy(client, process)
        yield process, client
    finally:
        client.close()
        process.stop()


@contextmanager
def worker_starter(project: Path, env: dict[str, str], logdir: Path) -> Iterator[Any]:
    """A function that starts a worker with the Dockerfile's CMD; kills what is left at the end."""
    started: list[Process] = []

    def start() -> Process:
        process = Process("worker", dockerfile_cmd(project), env, logdir)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop(signal.SIGKILL if process.popen.poll() is None else signal.SIGTERM)


def make_project_venv(project: Path, venv: Path) -> Path:
    """Install `project` into `venv` as its Docker image does (`uv sync --frozen`)."""
    env = clean_env()
    run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], env=env)
    run(
        ["uv", "sync", "--frozen", "--no-default-groups", "--no-editable", "--quiet"],
        cwd=project,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    return venv
