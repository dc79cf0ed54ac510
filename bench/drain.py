"""Part 1: jobs/s of one worker process draining no-op jobs, three workers side by side."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from tests.support import dockerfile_cmd, run

from .workspace import IN_VENV, Workspace


def workers(ws: Workspace) -> dict[str, tuple[list[str], str | None]]:
    """Each variant's worker argv (from the venv) and its job serializer module."""
    program, *rest = dockerfile_cmd(ws.project)
    return {
        "template": ([ws.bin(program), *rest], f"{ws.package}.serialization"),
        "bare_defaults": ([ws.bin("arq"), "bare_worker.BareDefaults"], None),
        "bare_tuned": ([ws.bin("arq"), "bare_worker.BareTuned"], None),
    }


def tuned_settings(ws: Workspace) -> dict[str, Any]:
    settings = dockerfile_cmd(ws.project)[-1]
    probe = [ws.bin("python"), str(IN_VENV / "drain_probe.py"), "tuned-settings", settings]
    tuned: dict[str, Any] = json.loads(run(probe, env=ws.env()).stdout)
    return tuned


def drain_once(
    ws: Workspace, name: str, argv: list[str], serializer: str | None, jobs: int, env: dict[str, str]
) -> float:
    probe = [ws.bin("python"), str(IN_VENV / "drain_probe.py"), "drain"]
    probe += ["--redis-url", ws.redis.url, "--jobs", str(jobs), "--log", str(ws.logs / f"{name}.log")]
    if serializer:
        probe += ["--serializer", serializer]
    result: dict[str, Any] = json.loads(run([*probe, "--", *argv], env=env, timeout=900).stdout)
    return float(result["jobs_per_s"])


def measure(ws: Workspace, jobs: int, repeats: int) -> dict[str, Any]:
    """Median jobs/s of each variant over `repeats` rounds; the variants take turns."""
    tuned = tuned_settings(ws)
    env = ws.env(BENCH_TUNED=json.dumps(tuned))
    samples: dict[str, list[float]] = {name: [] for name in workers(ws)}
    for round_ in range(repeats):
        for name, (argv, serializer) in workers(ws).items():
            samples[name].append(drain_once(ws, name, argv, serializer, jobs, env))
            print(f"  drain round {round_ + 1}: {name} {samples[name][-1]:,.0f} jobs/s", file=sys.stderr)
    rates = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "jobs": jobs,
        "repeats": repeats,
        "tuned_settings": tuned,
        "jobs_per_s": rates,
        "samples": samples,
        "ratios": {
            "template_vs_bare_tuned": rates["template"] / rates["bare_tuned"],
            "template_vs_bare_defaults": rates["template"] / rates["bare_defaults"],
        },
    }
