"""Fixtures for the template's own suite: renders, a private redis-server, a project venv."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = "invoice_sync"
DEFAULT_PREFIX = "INVOICE_SYNC_"

Bake = Callable[..., Path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config that keeps replay files and clones out of the home directory."""
    base = tmp_path_factory.mktemp("cookiecutter-home")
    config = base / "config.yaml"
    config.write_text(
        f'cookiecutters_dir: "{base / "cookiecutters"}"\nreplay_dir: "{base / "replay"}"\n'
    )
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


@pytest.fixture
def bake(tmp_path: Path, cookiecutter_config: Path) -> Bake:
    def _bake(**context: Any) -> Path:
        return render(tmp_path, cookiecutter_config, **context)

    return _bake


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
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Path:
    """The default render, with its uv.lock written by the post-gen hook."""
    return render(tmp_path_factory.mktemp("default"), cookiecutter_config, lock=True)


@pytest.fixture(scope="session")
def project_venv(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the default project installed as the Docker image installs it."""
    venv = tmp_path_factory.mktemp("e2e-venv") / "venv"
    env = clean_env()
    run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], env=env)
    run(
        ["uv", "sync", "--frozen", "--no-default-groups", "--no-editable", "--quiet"],
        cwd=default_project,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    return venv
