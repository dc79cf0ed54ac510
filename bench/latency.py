"""Part 4: how soon an idle worker starts a job, and what idling costs Redis and the CPU.

The generated worker (Dockerfile CMD, jobs enqueued with the project's RedisArqQueue)
beside bare arq with the same poll settings and with arq's defaults, each measured by
bench/peers/probe.py (see there) in the project's venv, the variants taking turns.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from tests.support import run

from . import drain
from .stats import paired_ratio, take_turns
from .workspace import IN_VENV, Workspace

PEERS_DIR = Path(__file__).resolve().parent / "peers"
ARQ_VARIANTS = ("template", "bare_tuned", "bare_defaults")
FIGURES = ("latency_p50_ms", "latency_p99_ms", "idle_redis_commands_per_s", "idle_cpu")


def arq_env(ws: Workspace, variant: str, tuned: dict[str, Any]) -> dict[str, str]:
    """The environment of the probe measuring one arq variant in the project's venv."""
    argv, serializer = drain.workers(ws)[variant]
    return ws.env(
        PYTHONPATH=f"{PEERS_DIR}:{IN_VENV}",
        BENCH_ARQ_WORKER=json.dumps(argv),
        BENCH_ARQ_SERIALIZER=serializer or "",
        BENCH_PACKAGE=ws.package,
        BENCH_TUNED=json.dumps(tuned),
    )


def run_probe(
    python: str, system: str, ws: Workspace, env: dict[str, str], name: str, **options: float
) -> dict[str, Any]:
    """One probe run (bench/peers/probe.py) of `system`; its JSON figures."""
    args = [python, "-m", "probe", system, "--redis-url", ws.redis.url, "--log", str(ws.logs / f"{name}.log")]
    for option, value in options.items():
        args += [f"--{option.replace('_', '-')}", f"{value:g}"]
    figures: dict[str, Any] = json.loads(run(args, env=env, timeout=1800).stdout)
    return figures


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over the rounds, the largest of every count (such as
    starts_beyond_jobs); text (the description) as it is."""
    first = runs[0]
    return {
        key: statistics.median(run[key] for run in runs)
        if isinstance(value, float)
        else max(run[key] for run in runs)
        if isinstance(value, int)
        else value
        for key, value in first.items()
    }


def measure(ws: Workspace, latency_jobs: int, idle_seconds: float, repeats: int) -> dict[str, Any]:
    tuned = drain.tuned_settings(ws)
    envs = {variant: arq_env(ws, variant, tuned) for variant in ARQ_VARIANTS}
    samples: dict[str, list[dict[str, Any]]] = {variant: [] for variant in ARQ_VARIANTS}
    for round_ in range(repeats):
        for variant in take_turns(list(ARQ_VARIANTS), round_):
            figures = run_probe(
                ws.bin("python"),
                f"peer_arq:{variant}",
                ws,
                envs[variant],
                f"latency-{variant}",
                latency_jobs=latency_jobs,
                idle_seconds=idle_seconds,
            )
            samples[variant].append(figures)
            print(
                f"  latency round {round_ + 1}: {variant} p50 {figures['latency_p50_ms']:.1f} ms,"
                f" idle {figures['idle_redis_commands_per_s']:.0f} Redis commands/s",
                file=sys.stderr,
            )
    p50 = {variant: [run["latency_p50_ms"] for run in runs] for variant, runs in samples.items()}
    return {
        "latency_jobs": latency_jobs,
        "idle_seconds": idle_seconds,
        "repeats": repeats,
        "workers": {variant: medians(runs) for variant, runs in samples.items()},
        "samples": {
            variant: [{key: run[key] for key in FIGURES} for run in runs] for variant, runs in samples.items()
        },
        "ratios": {
            "p50_template_vs_bare_tuned": paired_ratio(p50["template"], p50["bare_tuned"]),
            "p50_template_vs_bare_defaults": paired_ratio(p50["template"], p50["bare_defaults"]),
        },
    }
