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
import time
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

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
    """A private redis-server on a free port; stop and start it to simulate outages."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def dockerfile_cmd(project: Path) -> list[str]:
    match = re.search(r"^CMD (\[.*\])\s*$", (project / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile has no exec-form CMD"
    cmd: list[str] = json.loads(match.group(1))
    return cmd


class Process:
    """A child process whose output goes to a log file we can read and search."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path) -> None:
        self.log = logdir / f"{name}-{time.monotonic_ns()}.log"
        self._file = self.log.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self._file.close()


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
