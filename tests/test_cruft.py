"""`cruft create` renders the template and records it, so `cruft update` can follow it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .conftest import ROOT, run


def test_cruft_create_and_check(tmp_path: Path) -> None:
    if subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, check=False
    ).returncode:
        raise AssertionError("cruft needs the template as a git repository with a commit")
    env = {**os.environ, "FASTAPI_ARQ_SKIP_LOCK": "1", "HOME": str(tmp_path)}
    context = json.dumps({"project_name": "Cruft Made"})
    run(
        [
            "cruft",
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
    run(["cruft", "check"], cwd=project, env=env)
