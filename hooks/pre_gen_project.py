"""Validate the answers before anything is written.

Each rule fails with one line that names the bad value and the rule, and a
non-zero exit, so cookiecutter removes the half-made output directory.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

CONTEXT: dict[str, object] = json.loads({{ cookiecutter | tojson | tojson }})

# Modules the generated project imports (or that its tools import): a package
# of the same name would shadow them.
DEPENDENCY_MODULES = frozenset(
    {
        "anyio", "arq", "click", "conftest", "fakeredis", "fastapi", "h11", "hiredis",
        "httptools", "httpx", "hypothesis", "mypy", "pydantic", "pydantic_core",
        "pydantic_settings", "pytest", "redis", "ruff", "src", "starlette", "test",
        "tests", "tox", "typing_extensions", "uvicorn", "uvloop", "watchfiles",
    }
)  # fmt: skip
CHOICES = {
    "python_version": ("3.11", "3.12", "3.13"),
    "license": ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"),
    "ci": ("github", "gitlab", "none"),
    "api_auth": ("token", "none"),
}
SLUG_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
PACKAGE_RE = re.compile(r"[a-z][a-z0-9_]*")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
ORG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
ENV_PREFIX_RE = re.compile(r"[A-Z][A-Z0-9_]*_")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_SLUG = 40
MAX_PACKAGE = 30


class InvalidAnswer(ValueError):
    def __init__(self, name: str, value: object, rule: str) -> None:
        super().__init__(f"{name} {value!r} is invalid: {rule}")


def text(name: str, *, required: bool = True, max_len: int = 200) -> str:
    value = CONTEXT.get(name)
    if not isinstance(value, str):
        raise InvalidAnswer(name, value, "must be a string")
    if required and not value.strip():
        raise InvalidAnswer(name, value, "must not be empty")
    if CONTROL_RE.search(value):
        raise InvalidAnswer(name, value, "must be one line without control characters")
    if len(value) > max_len:
        raise InvalidAnswer(name, value, f"must be at most {max_len} characters")
    return value


def matches(name: str, pattern: re.Pattern[str], rule: str, *, max_len: int) -> str:
    value = text(name, max_len=max_len)
    if not pattern.fullmatch(value):
        raise InvalidAnswer(name, value, rule)
    return value


def check_package(name: str) -> None:
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise InvalidAnswer("package_name", name, "must not be a Python keyword")
    if name in sys.stdlib_module_names:
        raise InvalidAnswer(
            "package_name", name, "must not shadow a standard-library module"
        )
    if name in DEPENDENCY_MODULES:
        raise InvalidAnswer(
            "package_name", name, "must not shadow a dependency or tool module"
        )


def validate() -> None:
    text("project_name")
    text("description", required=False, max_len=300)
    text("author_name")
    matches(
        "project_slug",
        SLUG_RE,
        "must be a lowercase distribution name: letters, digits and single dashes,"
        " starting with a letter (e.g. invoice-sync)",
        max_len=MAX_SLUG,
    )
    package = matches(
        "package_name",
        PACKAGE_RE,
        "must be a lowercase Python identifier: letters, digits and underscores,"
        " starting with a letter (e.g. invoice_sync)",
        max_len=MAX_PACKAGE,
    )
    check_package(package)
    matches("author_email", EMAIL_RE, "must look like name@example.com", max_len=254)
    matches(
        "github_org",
        ORG_RE,
        "must be an organisation or user name: letters, digits, '.', '_' and '-'",
        max_len=100,
    )
    matches(
        "env_prefix",
        ENV_PREFIX_RE,
        "must be uppercase letters, digits and underscores, starting with a letter"
        " and ending with '_' (e.g. INVOICE_SYNC_)",
        max_len=40,
    )
    for name, allowed in CHOICES.items():
        if CONTEXT.get(name) not in allowed:
            raise InvalidAnswer(name, CONTEXT.get(name), f"must be one of {allowed}")


if __name__ == "__main__":
    try:
        validate()
    except InvalidAnswer as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
