"""The image: hadolint-clean, and its CMD names an importable WorkerSettings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import DEFAULT_PACKAGE, run
from .support import dockerfile_cmd


def test_dockerfile_passes_hadolint(default_project: Path) -> None:
    run(["hadolint", str(default_project / "Dockerfile")])


def test_cmd_names_an_importable_worker_settings(default_project: Path, project_venv: Path) -> None:
    program, settings_path = dockerfile_cmd(default_project)
    assert program == "arq"
    assert (project_venv / "bin" / "arq").exists()
    module, _, name = settings_path.rpartition(".")
    code = (
        f"import {module} as m; from arq.worker import Function; s = m.{name}; "
        "print(sorted(f.name for f in s.functions if isinstance(f, Function))); "
        "print(sorted(c.name for c in s.cron_jobs))"
    )
    result = run([str(project_venv / "bin" / "python"), "-c", code], cwd=Path("/"))
    assert result.stdout.splitlines() == ["['ping', 'sync_invoice']", "['cleanup_synced_invoices']"]


def test_image_runs_as_non_root_and_checks_worker_health(default_project: Path) -> None:
    text = (default_project / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert f'CMD ["arq", "--check", "{DEFAULT_PACKAGE}.worker.main.WorkerSettings"]' in text
    assert "uv sync --frozen" in text
    assert subprocess.run(["hadolint", "--version"], capture_output=True, check=False).returncode == 0
