"""Any project name either renders a project that compiles and passes lint, or fails in
the pre-gen hook with a clear message and leaves nothing behind."""

from __future__ import annotations

import py_compile
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import render

names = st.one_of(
    st.text(min_size=0, max_size=60),
    st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=40),
    st.from_regex(r"[A-Za-z][A-Za-z0-9 _\-]{0,30}", fullmatch=True),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(project_name=names)
def test_any_project_name_renders_or_fails_cleanly(cookiecutter_config: Path, project_name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp)
        try:
            project = render(output, cookiecutter_config, project_name=project_name)
        except FailedHookException:
            assert list(output.iterdir()) == [], "a failed render left files behind"
            return
        for path in project.rglob("*.py"):
            py_compile.compile(str(path), doraise=True)
        for command in (["check"], ["format", "--check"]):
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
                cwd=project,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{project_name!r}: {result.stdout}"
