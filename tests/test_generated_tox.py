"""The generated project's own tox passes as rendered, run as its README says: `tox` (tests on every
Python, lint, typing) and `tox -e integration` on a real (private) Redis, which it leaves empty."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from . import readme
from .conftest import DEFAULT_PREFIX, RedisServer, clean_env, free_port, run

INTEGRATION_DB = 3  # a database of the private server that nothing else writes to


def test_generated_tox_passes(default_project: Path, redis_server: RedisServer) -> None:
    assert (default_project / "uv.lock").exists(), "the post-gen hook should have run uv lock"
    generated = default_project / "README.md"
    tox = readme.commands(readme.blocks(readme.section(generated, "Two commands"))[0])[1]
    assert tox.split("#")[0].strip() == "tox", tox
    env = clean_env()

    result = run(["bash", "-c", tox], cwd=default_project, env=env, timeout=1800)
    for name in ("py311", "py312", "py313", "lint", "typing"):
        assert f"{name}: OK" in result.stdout, result.stdout

    assert "`tox -e integration`" in readme.section(generated, "Two commands")
    env[f"{DEFAULT_PREFIX}ARQ_QUEUE_URL"] = redis_server.url.replace("/0", f"/{INTEGRATION_DB}")
    result = run(["tox", "-e", "integration"], cwd=default_project, env=env, timeout=900)
    assert " passed" in result.stdout and "integration: OK" in result.stdout, result.stdout
    client = redis.Redis(port=redis_server.port, db=INTEGRATION_DB)
    try:
        assert client.keys("*") == [], "the integration tests left keys behind"
    finally:
        client.close()


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
