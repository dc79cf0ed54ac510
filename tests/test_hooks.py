"""Bad answers fail in the pre-gen hook with one clear line, and leave nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, Bake

BAD_ANSWERS = [
    (
        {"project_slug": "Invoice Sync"},
        "project_slug 'Invoice Sync' is invalid: must be a lowercase distribution name",
    ),
    ({"project_slug": "../escape"}, "project_slug '../escape' is invalid"),
    ({"project_slug": "a/b"}, "project_slug 'a/b' is invalid"),
    ({"project_slug": "invoice--sync"}, "project_slug 'invoice--sync' is invalid"),
    ({"package_name": "arq"}, "package_name 'arq' is invalid: must not shadow a dependency or tool module"),
    ({"package_name": "redis"}, "package_name 'redis' is invalid: must not shadow a dependency"),
    ({"package_name": "fastapi"}, "package_name 'fastapi' is invalid: must not shadow a dependency"),
    ({"package_name": "test"}, "package_name 'test' is invalid: must not shadow"),
    ({"package_name": "json"}, "package_name 'json' is invalid: must not shadow a standard-library module"),
    ({"package_name": "class"}, "package_name 'class' is invalid: must not be a Python keyword"),
    ({"package_name": "match"}, "package_name 'match' is invalid: must not be a Python keyword"),
    ({"package_name": "Invoice"}, "package_name 'Invoice' is invalid: must be a lowercase Python identifier"),
    ({"package_name": "1invoice"}, "package_name '1invoice' is invalid"),
    ({"package_name": "x" * 31}, "must be at most 30 characters"),
    ({"project_name": "   "}, "project_name '   ' is invalid: must not be empty"),
    ({"project_name": "123"}, "project_slug '123' is invalid"),
    (
        {"author_email": "not-an-email"},
        "author_email 'not-an-email' is invalid: must look like name@example.com",
    ),
    ({"author_email": "a@b"}, "author_email 'a@b' is invalid"),
    ({"github_org": "my org"}, "github_org 'my org' is invalid"),
    ({"env_prefix": "lower_"}, "env_prefix 'lower_' is invalid"),
    ({"env_prefix": "NO_TRAILING"}, "env_prefix 'NO_TRAILING' is invalid"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=lambda v: str(v)[:40])
def test_bad_answer_fails_clearly_and_leaves_nothing(
    tmp_path: Path, cookiecutter_config: Path, answers: dict[str, str], message: str
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    args = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(cookiecutter_config)]
    args += ["-o", str(output), str(ROOT)] + [f"{k}={v}" for k, v in answers.items()]

    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(error_lines) == 1, result.stderr
    assert list(output.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value"), [("python_version", "3.9"), ("license", "GPL"), ("ci", "jenkins")]
)
def test_choices_outside_the_list_are_refused_before_rendering(
    tmp_path: Path, cookiecutter_config: Path, name: str, value: str
) -> None:
    """cookiecutter itself refuses these, before the hooks run and before writing."""
    output = tmp_path / "out"
    output.mkdir()
    args = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(cookiecutter_config)]
    args += ["-o", str(output), str(ROOT), f"{name}={value}"]

    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode != 0
    assert f"{value} provided for choice variable {name}" in result.stderr
    assert list(output.iterdir()) == []


def test_a_good_answer_set_renders(tmp_path: Path, cookiecutter_config: Path) -> None:
    output = tmp_path / "out"
    args = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(cookiecutter_config)]
    args += ["-o", str(output), str(ROOT), "project_name=Payments Hub", "package_name=payments"]
    env = {**os.environ, "FASTAPI_ARQ_SKIP_LOCK": "1"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, result.stderr
    assert (output / "payments-hub" / "src" / "payments" / "main.py").exists()
    assert "cd payments-hub" in result.stdout
    assert "tox" in result.stdout


def test_without_uv_the_project_renders_and_says_how_to_lock(
    tmp_path: Path, cookiecutter_config: Path
) -> None:
    output = tmp_path / "out"
    args = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(cookiecutter_config)]
    args += ["-o", str(output), str(ROOT)]
    # No uv on PATH (the interpreter is called by its absolute path).
    env = {k: v for k, v in os.environ.items() if k != "FASTAPI_ARQ_SKIP_LOCK"}
    env["PATH"] = "/usr/bin:/bin"
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert "uv was not found, so uv.lock was not written" in result.stdout
    assert "uv lock" in result.stdout
    assert not (output / "invoice-sync" / "uv.lock").exists()
    assert (output / "invoice-sync" / "pyproject.toml").exists()


# What uv 0.13 prints when the index cannot be reached (captured, host name changed) ...
UV_OFFLINE = """\
error: Request failed after 3 retries in 3.8s
  cause: Failed to fetch: https://pypi.example/simple/asgi-lifespan/
  cause: error sending request for url (https://pypi.example/simple/asgi-lifespan/)
  cause: client error (Connect)
  cause: dns error
  cause: error resolving DNS
  cause: failed to lookup address information: Name or service not known
"""
# ... and when no Python matches requires-python (with UV_PYTHON_DOWNLOADS=never).
UV_NO_PYTHON = "error: No interpreter found for Python >=3.12 in managed installations or search path\n"
# uv 0.4 and 0.5 wrote the causes as "Caused by:".
UV_OLD_OFFLINE = """\
error: Failed to fetch: `https://pypi.org/simple/arq/`
  Caused by: Request failed after 3 retries
  Caused by: error sending request for url (https://pypi.org/simple/arq/)
  Caused by: client error (Connect)
  Caused by: dns error: failed to lookup address information: Temporary failure in name resolution
  Caused by: failed to lookup address information: Temporary failure in name resolution
"""


def render_with_failing_uv(tmp_path: Path, cookiecutter_config: Path, stderr: str) -> str:
    """Render with a `uv` first on PATH that prints `stderr` and exits 2, as uv does on errors."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "uv-stderr.txt").write_text(stderr)
    uv = bin_dir / "uv"
    uv.write_text(f"#!/bin/sh\ncat '{tmp_path / 'uv-stderr.txt'}' >&2\nexit 2\n")
    uv.chmod(0o755)
    output = tmp_path / "out"
    args = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(cookiecutter_config)]
    args += ["-o", str(output), str(ROOT)]
    env = {k: v for k, v in os.environ.items() if k != "FASTAPI_ARQ_SKIP_LOCK"}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env)

    assert result.returncode == 0, result.stderr
    assert (output / "invoice-sync" / "pyproject.toml").exists()
    assert not (output / "invoice-sync" / "uv.lock").exists()
    assert "`uv lock` failed (exit status 2), so uv.lock was not written:" in result.stdout
    assert "Once that is fixed, run `uv lock` in the project" in result.stdout
    return result.stdout


@pytest.mark.parametrize(
    ("stderr", "shown"),
    [
        (
            UV_OFFLINE,
            [
                "    error: Request failed after 3 retries in 3.8s",
                "      cause: Failed to fetch: https://pypi.example/simple/asgi-lifespan/",
                "      cause: failed to lookup address information: Name or service not known",
            ],
        ),
        (UV_NO_PYTHON, ["    error: No interpreter found for Python >=3.12 in managed installations"]),
        (
            UV_OLD_OFFLINE,
            [
                "    error: Failed to fetch: `https://pypi.org/simple/arq/`",
                "      Caused by: dns error: failed to lookup address information: Temporary failure",
            ],
        ),
    ],
    ids=["offline", "no-python", "offline-old-uv"],
)
def test_a_failed_lock_shows_uv_error_and_its_causes(
    tmp_path: Path, cookiecutter_config: Path, stderr: str, shown: list[str]
) -> None:
    stdout = render_with_failing_uv(tmp_path, cookiecutter_config, stderr)

    for line in shown:
        assert line in stdout, stdout


def test_a_long_uv_error_is_cut_short(tmp_path: Path, cookiecutter_config: Path) -> None:
    causes = "".join(f"  Caused by: layer {n}\n" for n in range(1, 41))
    stdout = render_with_failing_uv(tmp_path, cookiecutter_config, f"error: deep failure\n{causes}")

    assert "    error: deep failure\n      Caused by: layer 1\n" in stdout
    assert "layer 40" not in stdout
    assert "... (32 more lines)" in stdout
    assert len([line for line in stdout.splitlines() if "Caused by:" in line]) == 8


def test_a_random_development_token_is_written_to_a_private_env_file(bake: Bake) -> None:
    first, second = bake(project_name="Token One"), bake(project_name="Token Two")
    tokens = []
    for project, prefix in ((first, "TOKEN_ONE_"), (second, "TOKEN_TWO_")):
        env = project / ".env"
        assert env.stat().st_mode & 0o777 == 0o600
        (token,) = re.findall(rf"^{prefix}API_TOKENS=([A-Za-z0-9_-]{{43}})$", env.read_text(), re.MULTILINE)
        tokens.append(token)
        assert ".env" in (project / ".gitignore").read_text().splitlines()
    assert tokens[0] != tokens[1]


def test_without_auth_there_is_no_token_and_no_auth_code(bake: Bake) -> None:
    project = bake(api_auth="none")
    assert not (project / ".env").exists()
    assert not (project / "src" / "invoice_sync" / "dependencies" / "auth.py").exists()
    assert not (project / "tests" / "handlers" / "test_auth.py").exists()
    assert "API_TOKENS" not in (project / "src" / "invoice_sync" / "config.py").read_text()
