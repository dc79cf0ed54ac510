"""Part 3: seconds from `cookiecutter --no-input` to a passing generated `tox`.

Cold: an empty uv cache, as on a new machine (every wheel is downloaded).
Warm: the same cache again, in a fresh render (new venvs, nothing else reused).
The render includes the post-gen hook's `uv lock`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tests.support import ROOT, clean_env, run


def to_green(workdir: Path, label: str, cache: Path, config_file: Path) -> dict[str, float]:
    output = workdir / f"green-{label}"
    env = clean_env(UV_CACHE_DIR=str(cache), FASTAPI_ARQ_SKIP_LOCK="0")
    started = time.monotonic()
    render = [sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(config_file)]
    run([*render, "--output-dir", str(output), str(ROOT)], env=env)
    rendered = time.monotonic()
    (project,) = output.iterdir()
    run([sys.executable, "-m", "tox"], cwd=project, env=env, timeout=1800)
    finished = time.monotonic()
    return {
        "render_s": rendered - started,
        "tox_s": finished - rendered,
        "total_s": finished - started,
        # Shows the cold run started empty and downloaded what the warm one reused.
        "uv_cache_mb_after": size_mb(cache),
    }


def size_mb(directory: Path) -> float:
    files = (path for path in directory.rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.stat().st_size for path in files) / 2**20


def measure(workdir: Path, config_file: Path) -> dict[str, Any]:
    cache = workdir / "green-uv-cache"
    results: dict[str, Any] = {}
    for label in ("cold", "warm"):
        results[label] = to_green(workdir, label, cache, config_file)
        print(f"  time to green, {label} cache: {results[label]['total_s']:.1f} s", file=sys.stderr)
    results["tox_envs"] = "default env_list: mock-mode tests on each Python, lint, typing"
    return results
