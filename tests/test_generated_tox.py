"""The generated project's own tox passes as rendered: tests on every Python, lint, typing,
and its integration env on a real (private) Redis."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import DEFAULT_PREFIX, RedisServer, clean_env, free_port, run


def test_generated_tox_passes(default_project: Path, redis_server: RedisServer) -> None:
    assert (default_project / "uv.lock").exists(), "the post-gen hook should have run uv lock"
    env = clean_env()

    result = run(
        ["tox", "run-parallel", "-p", "2", "--parallel-no-spinner"],
        cwd=default_project,
        env=env,
        timeout=1800,
    )
    for name in ("py311", "py312", "py313", "lint", "typing"):
        assert f"{name}: OK" in result.stdout, result.stdout

    env[f"{DEFAULT_PREFIX}ARQ_QUEUE_URL"] = redis_server.url
    result = run(["tox", "run", "-e", "integration"], cwd=default_project, env=env, timeout=900)
    assert " passed" in result.stdout and "integration: OK" in result.stdout, result.stdout


def test_integration_env_fails_clearly_without_redis(default_project: Path) -> None:
    env = clean_env()
    env[f"{DEFAULT_PREFIX}ARQ_QUEUE_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    args = ["tox", "run", "-e", "integration", "--", "-x", "-q", "tests/integration"]
    result = subprocess.run(
        args, cwd=default_project, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode != 0
    assert "is unreachable" in result.stdout, result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
