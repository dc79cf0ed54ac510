"""Remove files for options that were not chosen, lock, and print next steps."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LICENSE = "{{ cookiecutter.license }}"
CI = "{{ cookiecutter.ci }}"
SLUG = "{{ cookiecutter.project_slug }}"
LOCK_TIMEOUT_S = 300
# Set to 1 to skip `uv lock` (offline renders, or when you lock yourself).
SKIP_LOCK = os.environ.get("FASTAPI_ARQ_SKIP_LOCK") == "1"


def remove(*paths: str) -> None:
    for path in map(Path, paths):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def lock() -> str:
    """Write uv.lock, or say how to make it; never fail the render over it."""
    how = "run `uv lock` in the project to write uv.lock (the Dockerfile needs it)"
    if SKIP_LOCK:
        return f"uv.lock was not written (FASTAPI_ARQ_SKIP_LOCK=1): {how}."
    uv = shutil.which("uv")
    if uv is None:
        return f"uv was not found, so uv.lock was not written: install uv, then {how}."
    try:
        subprocess.run(
            [uv, "lock", "--quiet"],
            check=True,
            timeout=LOCK_TIMEOUT_S,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        reason = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return f"`uv lock` failed ({reason[0]}): {how}."
    except subprocess.TimeoutExpired:
        return f"`uv lock` took over {LOCK_TIMEOUT_S} s and was stopped: {how}."
    return "uv.lock written."


def main() -> None:
    if LICENSE == "Proprietary":
        remove("LICENSE")
    if CI != "github":
        remove(".github")
    if CI != "gitlab":
        remove(".gitlab-ci.yml")
    lock_message = lock()
    print(
        f"\nCreated {SLUG}. {lock_message}\n"
        "Next steps:\n"
        f"  cd {SLUG}\n"
        "  tox run -e run    # start the API and the worker (needs Redis)\n"
        "  tox               # run the tests (mock mode), lint and typing\n",
    )


if __name__ == "__main__":
    main()
