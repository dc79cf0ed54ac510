"""Fixtures for the template's own suite: renders, a private redis-server, a project venv."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import support
from .support import (
    DEFAULT_PACKAGE,
    DEFAULT_PREFIX,
    ROOT,
    RedisServer,
    clean_env,
    free_port,
    make_project_venv,
    render,
    run,
)

__all__ = [
    "DEFAULT_PACKAGE",
    "DEFAULT_PREFIX",
    "ROOT",
    "Bake",
    "RedisServer",
    "clean_env",
    "free_port",
    "render",
    "run",
]

Bake = Callable[..., Path]


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config that keeps replay files and clones out of the home directory."""
    return support.cookiecutter_config(tmp_path_factory.mktemp("cookiecutter-home"))


@pytest.fixture
def bake(tmp_path: Path, cookiecutter_config: Path) -> Bake:
    def _bake(**context: Any) -> Path:
        return render(tmp_path, cookiecutter_config, **context)

    return _bake


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
    return make_project_venv(default_project, tmp_path_factory.mktemp("e2e-venv") / "venv")
