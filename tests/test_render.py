"""Render the template over its options and check each output like CI would."""

from __future__ import annotations

import configparser
import py_compile
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import Bake, run

# Leftover Jinja, but not the Go templates Prometheus and Grafana read in observability/
# (`{{ $labels.queue }}`, `{{function}}` legends) nor GitHub's `${{ ... }}`.
UNRENDERED = re.compile(r"(?<!\$)\{\{(?!\s*\$(?:labels|value)\b|[a-z_]+\}\})|\{%|cookiecutter\.[a-z_]+")

# Every choice at least once, over four renders.
MATRIX: list[dict[str, Any]] = [
    {},
    {"python_version": "3.12", "license": "Apache-2.0", "ci": "gitlab"},
    {"python_version": "3.13", "license": "Proprietary", "ci": "none", "api_auth": "none"},
    {
        "project_name": "Ledger Reconciliation Worker",
        "license": "BSD-3-Clause",
        "ci": "github",
        "author_name": 'O\'Brien "Quotes" & Co',
        "description": 'Says "hi" \\ with a backslash',
    },
]


def ids(context: dict[str, Any]) -> str:
    return "-".join(f"{v}" for v in context.values()) or "default"


@pytest.fixture(params=MATRIX, ids=ids, scope="function")
def rendered(request: pytest.FixtureRequest, bake: Bake) -> tuple[Path, dict[str, Any]]:
    return bake(**request.param), request.param


def test_nothing_is_left_unrendered(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, _ = rendered
    for path in project.rglob("*"):
        assert not UNRENDERED.search(str(path.relative_to(project))), path
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            match = UNRENDERED.search(text)
            assert match is None, f"{path}: {text[max(0, match.start() - 40) : match.end() + 40]!r}"


def test_python_compiles_and_passes_ruff(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, _ = rendered
    for path in project.rglob("*.py"):
        py_compile.compile(str(path), doraise=True)
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=project)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=project)


def test_mypy_strict_passes(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, _ = rendered
    run([sys.executable, "-m", "mypy", "--strict", "--no-incremental"], cwd=project, timeout=900)


def test_options_shape_the_project(rendered: tuple[Path, dict[str, Any]]) -> None:
    project, context = rendered
    version = context.get("python_version", "3.11")
    license_ = context.get("license", "MIT")
    ci = context.get("ci", "github")

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={version}"
    if "description" in context:
        assert pyproject["project"]["description"] == context["description"]
    if "author_name" in context:
        assert pyproject["project"]["authors"][0]["name"] == context["author_name"]

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(project / "tox.ini")
    envs = [env.strip() for env in tox["tox"]["env_list"].split(",")]
    expected = [f"py{v.replace('.', '')}" for v in ("3.11", "3.12", "3.13") if v >= version]
    assert envs == [*expected, "lint", "typing"]
    assert f"python:{version}-slim" in (project / "Dockerfile").read_text()

    license_file = project / "LICENSE"
    if license_ == "Proprietary":
        assert not license_file.exists()
        assert "license" not in pyproject["project"]
    else:
        assert pyproject["project"]["license"] == license_
        first_words = {"MIT": "MIT License", "Apache-2.0": "Apache License", "BSD-3-Clause": "BSD 3-Clause"}
        assert first_words[license_] in license_file.read_text()

    assert (project / ".github" / "workflows" / "ci.yaml").exists() == (ci == "github")
    assert (project / ".gitlab-ci.yml").exists() == (ci == "gitlab")


def test_default_names_derive_from_the_project_name(bake: Bake) -> None:
    project = bake(project_name="Ledger Sync 2")
    assert project.name == "ledger-sync-2"
    assert (project / "src" / "ledger_sync_2" / "worker" / "main.py").exists()
    assert "LEDGER_SYNC_2_ARQ_QUEUE_URL" in (project / ".env.example").read_text()
