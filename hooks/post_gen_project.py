"""Remove files for options that were not chosen, lock, and print next steps."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

LICENSE = "{{ cookiecutter.license }}"
CI = "{{ cookiecutter.ci }}"
SLUG = "{{ cookiecutter.project_slug }}"
API_AUTH = "{{ cookiecutter.api_auth }}"
ENV_PREFIX = "{{ cookiecutter.env_prefix }}"
# cruft records the template commit as `_commit`; cookiecutter itself never sets it.
CRUFT_COMMIT = "{{ cookiecutter.get('_commit', '') }}"
LOCK_TIMEOUT_S = 300
# How much of uv's stderr to show when `uv lock` fails: its `error:` line and the causes.
MAX_REASON_LINES = 10
# Set to 1 to skip `uv lock` (offline renders, or when you lock yourself).
SKIP_LOCK = os.environ.get("FASTAPI_ARQ_SKIP_LOCK") == "1"
# The name tempfile.mkdtemp() gives a directory: "tmp" and 8 random characters.
MKDTEMP_NAME = re.compile(r"tmp[a-z0-9_]{8}")


def remove(*paths: str) -> None:
    for path in map(Path, paths):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def in_cruft_scratch_render() -> bool:
    """True in the throwaway renders of `cruft update` and `cruft diff`.

    cruft (`cruft/_commands/utils/generate.py`, `_generate_output`) renders the project's old
    and new template commits with cookiecutter's `generate_files` into a fresh
    `tempfile.TemporaryDirectory()` each, moves the files out and diffs them. Locking there is
    wasted work (uv.lock is not part of that diff) and the next steps would be printed twice.
    `cookiecutter` and `cruft create` render into the directory the user chose.
    """
    if not CRUFT_COMMIT:
        return False
    output_dir = Path.cwd().parent
    return (
        output_dir.parent == Path(tempfile.gettempdir()).resolve()
        and MKDTEMP_NAME.fullmatch(output_dir.name) is not None
    )


def uv_error(stderr: str) -> str:
    """The meaningful part of uv's stderr, indented: its `error:` line and the causes after it."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    # Without an `error:` line, the last lines are the best guess.
    shown = lines[starts[0] :] if starts else lines[-MAX_REASON_LINES:]
    if not shown:
        return "    (uv printed nothing)"
    extra = len(shown) - MAX_REASON_LINES
    if extra > 0:
        shown = [*shown[: MAX_REASON_LINES - 1], f"... ({extra + 1} more lines)"]
    return "\n".join(f"    {line}" for line in shown)


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
            [uv, "lock", "--quiet", "--color", "never"],
            check=True,
            timeout=LOCK_TIMEOUT_S,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        return (
            f"`uv lock` failed (exit status {error.returncode}), so uv.lock was not written:\n"
            f"{uv_error(error.stderr or '')}\n"
            f"Once that is fixed, {how}."
        )
    except subprocess.TimeoutExpired:
        return f"`uv lock` took over {LOCK_TIMEOUT_S} s and was stopped: {how}."
    except OSError as error:
        return f"`uv lock` could not be started ({error}): {how}."
    return "uv.lock written."


def write_development_token() -> None:
    """Put a random API token in .env (git-ignored), so `tox run -e run` and curl work at once."""
    env = Path(".env")
    if env.exists():
        return
    env.write_text(
        "# Development settings, read by the app and the worker; never commit this file.\n"
        "# A random token for the job API (send it as `Authorization: Bearer <token>`).\n"
        f"{ENV_PREFIX}API_TOKENS={secrets.token_urlsafe(32)}\n"
    )
    env.chmod(0o600)


def main() -> None:
    if LICENSE == "Proprietary":
        remove("LICENSE")
    if CI != "github":
        remove(".github")
    if CI != "gitlab":
        remove(".gitlab-ci.yml")
    if API_AUTH != "token":
        remove("src/{{ cookiecutter.package_name }}/dependencies/auth.py", "tests/handlers/test_auth.py")
    if in_cruft_scratch_render():
        return
    if API_AUTH == "token":
        write_development_token()
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
