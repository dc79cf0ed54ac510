"""`cruft create` renders the template and records it, so `cruft update` can follow it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, run

PROJECT_DIR = "{{cookiecutter.project_slug|project_dir}}"
TEMPLATE_CHANGE = "A line the template gained after the project was created."


def cruft() -> str:
    """The cruft installed beside this interpreter (tox's env), else the one on PATH."""
    beside = Path(sys.executable).parent / "cruft"
    return str(beside) if beside.exists() else "cruft"


def hermetic_env(home: Path, **extra: str) -> dict[str, str]:
    """A temporary HOME (no user git or cookiecutter config, nothing written to the real one)."""
    env = {k: v for k, v in os.environ.items() if k != "FASTAPI_ARQ_SKIP_LOCK"}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Test", GIT_COMMITTER_NAME="Test")
    env.update(GIT_AUTHOR_EMAIL="test@example.com", GIT_COMMITTER_EMAIL="test@example.com")
    env.update(extra)
    return env


def commit_all(repo: Path, message: str, env: dict[str, str]) -> str:
    run(["git", "add", "-A"], cwd=repo, env=env)
    run(["git", "commit", "-q", "-m", message], cwd=repo, env=env)
    return run(["git", "rev-parse", "HEAD"], cwd=repo, env=env).stdout.strip()


def template_repo(path: Path, env: dict[str, str]) -> str:
    """A git repository holding this working tree's template (what `git add -A` would commit)."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, path / name)
    run(["git", "init", "-q"], cwd=path, env=env)
    return commit_all(path, "template v1", env)


def fake_uv(bin_dir: Path, log: Path) -> None:
    """A `uv` that logs where it ran and writes a uv.lock, so a test can count the locks."""
    bin_dir.mkdir()
    uv = bin_dir / "uv"
    uv.write_text(f'#!/bin/sh\necho "$(pwd -P) $*" >> "{log}"\necho "# locked" > uv.lock\n')
    uv.chmod(0o755)


def test_cruft_create_and_check(tmp_path: Path) -> None:
    if subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, check=False
    ).returncode:
        raise AssertionError("cruft needs the template as a git repository with a commit")
    env = {**os.environ, "FASTAPI_ARQ_SKIP_LOCK": "1", "HOME": str(tmp_path)}
    context = json.dumps({"project_name": "Cruft Made"})
    run(
        [
            cruft(),
            "create",
            str(ROOT),
            "--no-input",
            "--output-dir",
            str(tmp_path),
            "--extra-context",
            context,
        ],
        env=env,
    )

    project = tmp_path / "cruft-made"
    record = json.loads((project / ".cruft.json").read_text())
    assert record["template"] == str(ROOT)
    assert record["context"]["cookiecutter"]["package_name"] == "cruft_made"
    assert (project / "src" / "cruft_made" / "worker" / "main.py").exists()
    run(["git", "init", "-q"], cwd=project)
    run([cruft(), "check"], cwd=project, env=env)


def test_cruft_update_as_the_readme_says(tmp_path: Path) -> None:
    """`cruft update`, answering its prompt, brings a template change into a committed project;
    the post-gen hook locks and prints the next steps once, at create, not in update's renders."""
    home, template, out = tmp_path / "home", tmp_path / "template", tmp_path / "out"
    for directory in (home, template, out):
        directory.mkdir()
    locks = tmp_path / "locks"
    fake_uv(tmp_path / "bin", locks)
    env = hermetic_env(home, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    first = template_repo(template, env)

    created = run([cruft(), "create", str(template), "--no-input", "--output-dir", str(out)], env=env)
    project = out / "invoice-sync"
    assert created.stdout.count("Next steps:") == 1, created.stdout
    assert "uv.lock written." in created.stdout
    assert [line.split()[:2] for line in locks.read_text().splitlines()] == [[str(project.resolve()), "lock"]]
    assert json.loads((project / ".cruft.json").read_text())["commit"] == first
    run(["git", "init", "-q"], cwd=project, env=env)
    commit_all(project, "project as created", env)

    readme = template / PROJECT_DIR / "README.md"
    readme.write_text(f"{readme.read_text()}\n{TEMPLATE_CHANGE}\n")
    second = commit_all(template, "template v2", env)
    behind = subprocess.run([cruft(), "check"], cwd=project, env=env, capture_output=True, check=False)
    assert behind.returncode == 1

    updated = run([cruft(), "update"], cwd=project, env=env, input="y\n")

    assert "Apply diff and update?" in updated.stdout
    assert "Good work!" in updated.stdout, updated.stdout
    assert TEMPLATE_CHANGE in (project / "README.md").read_text()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
    run([cruft(), "check"], cwd=project, env=env)
    # The two scratch renders (old and new commit) neither locked nor printed.
    assert "Next steps" not in updated.stdout + updated.stderr
    assert len(locks.read_text().splitlines()) == 1
    assert (project / "uv.lock").read_text() == "# locked\n"
    assert sorted(os.listdir(home)) == []
