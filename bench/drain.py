"""Part 1: jobs/s of one worker process draining no-op jobs, three workers side by side."""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

from tests.support import dockerfile_cmd, run

from .stats import paired_ratio, take_turns
from .workspace import IN_VENV, Workspace


def workers(ws: Workspace) -> dict[str, tuple[list[str], str | None]]:
    """Each variant's worker argv (from the venv) and its job serializer module."""
    program, *rest = dockerfile_cmd(ws.project)
    return {
        "template": ([ws.bin(program), *rest], f"{ws.package}.serialization"),
        "bare_tuned": ([ws.bin("arq"), "bare_worker.BareTuned"], None),
        "bare_same": ([ws.bin("arq"), "bare_worker.BareSame"], None),
        "bare_defaults": ([ws.bin("arq"), "bare_worker.BareDefaults"], None),
    }


def variant_env(name: str, tuned: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """BareSame runs on the generated worker's event loop; the others on their own."""
    return env | {"BENCH_EVENT_LOOP": tuned["event_loop"]} if name == "bare_same" else env


def tuned_settings(ws: Workspace) -> dict[str, Any]:
    settings = dockerfile_cmd(ws.project)[-1]
    probe = [ws.bin("python"), str(IN_VENV / "drain_probe.py"), "tuned-settings", settings]
    tuned: dict[str, Any] = json.loads(run(probe, env=ws.env()).stdout)
    return tuned


def drain_once(
    ws: Workspace, name: str, argv: list[str], serializer: str | None, jobs: int, env: dict[str, str]
) -> float:
    # Only the generated worker subscribes to its queue's wake-up channel.
    figures = drain_figures(ws, name, argv, serializer, jobs, env, wake_subscribers=name == "template")
    return float(figures["jobs_per_s"])


def drain_figures(
    ws: Workspace,
    name: str,
    argv: list[str],
    serializer: str | None,
    jobs: int,
    env: dict[str, str],
    workers: int = 1,
    function: str = "ping",
    wake_subscribers: bool = False,
) -> dict[str, Any]:
    """What drain_probe.py measured for `workers` processes running `argv` on `jobs` jobs of
    `function`: jobs_per_s, and the cores the workers and Redis kept busy meanwhile."""
    probe = [ws.bin("python"), str(IN_VENV / "drain_probe.py"), "drain"]
    probe += ["--redis-url", ws.redis.url, "--jobs", str(jobs), "--log", str(ws.logs / f"{name}.log")]
    probe += ["--workers", str(workers), "--function", function]
    if wake_subscribers:
        probe.append("--wake-subscribers")
    if serializer:
        probe += ["--serializer", serializer]
    figures: dict[str, Any] = json.loads(run([*probe, "--", *argv], env=env, timeout=900).stdout)
    return figures


def measure(ws: Workspace, jobs: int, defaults_jobs: int, repeats: int) -> dict[str, Any]:
    """Median jobs/s of each variant over `repeats` rounds, the variants taking turns.

    The worker with arq's defaults drains `defaults_jobs` (at most `jobs`): its rate
    is set by its 0.5 s poll and is the same from the first seconds on.
    """
    tuned = tuned_settings(ws)
    env = ws.env(BENCH_TUNED=json.dumps(tuned))
    variants = workers(ws)
    counts = {name: jobs for name in variants} | {"bare_defaults": min(jobs, defaults_jobs)}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeats):
        for name in take_turns(list(variants), round_):
            argv, serializer = variants[name]
            run_env = variant_env(name, tuned, env)
            samples[name].append(drain_once(ws, name, argv, serializer, counts[name], run_env))
            print(f"  drain round {round_ + 1}: {name} {samples[name][-1]:,.0f} jobs/s", file=sys.stderr)
    return {
        "jobs": counts,
        "repeats": repeats,
        "tuned_settings": tuned,
        "jobs_per_s": {name: statistics.median(values) for name, values in samples.items()},
        "samples": samples,
        "ratios": {
            "template_vs_bare_tuned": paired_ratio(samples["template"], samples["bare_tuned"]),
            "template_vs_bare_same": paired_ratio(samples["template"], samples["bare_same"]),
            "template_vs_bare_defaults": paired_ratio(samples["template"], samples["bare_defaults"]),
        },
    }
