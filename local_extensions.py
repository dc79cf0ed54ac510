"""Jinja extension used by the template's directory name.

cookiecutter creates the project directory *before* the pre-gen hook can
validate the answers, so a slug such as ``../x`` or ``a/b`` would create (and,
after the hook fails, delete) directories outside the output directory. The
``project_dir`` filter passes a valid slug through and turns anything else into
a harmless name inside the output directory, which cookiecutter removes when
the hook then rejects the slug.
"""

from __future__ import annotations

import re

from jinja2 import Environment
from jinja2.ext import Extension

SLUG = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_SLUG = 40
PLACEHOLDER = "invalid-project-slug"


def project_dir(slug: object) -> str:
    text = str(slug)
    return text if SLUG.fullmatch(text) and len(text) <= MAX_SLUG else PLACEHOLDER


class ProjectDirExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["project_dir"] = project_dir
