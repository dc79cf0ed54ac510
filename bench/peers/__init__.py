"""Part 5: the same no-op job on the queues users could pick instead of arq.

Each peer gets its own venv under the bench workdir, installed from its pinned
requirements/<peer>.txt (uv), and is measured by probe.py beside the generated project
and bare arq (tuned) in the same rounds, the systems taking turns. A peer that cannot be
installed or run is recorded as {"error": ...}, never left out.

The modules in this directory other than this one run inside those venvs, imported as
top-level modules (PYTHONPATH=bench/peers, with bench/in_venv for procstats.py), not as
this package.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tests.support import clean_env, run

from ..drain import tuned_settings
from ..latency import PEERS_DIR, arq_env, medians, run_probe
from ..stats import paired_ratio, take_turns
from ..workspace import IN_VENV, Workspace

REQUIREMENTS = PEERS_DIR / "requirements"
# Each peer's distributions whose versions the report names.
PEERS = {
    "saq": ("saq",),
    "taskiq": ("taskiq", "taskiq-redis"),
    "streaq": ("streaq",),
    "celery": ("celery",),
    "dramatiq": ("dramatiq",),
}
ARQ_SYSTEMS = ("template", "bare_tuned")
RATIO_FIGURES = ("enqueue_jobs_per_s", "drain_jobs_per_s", "latency_p50_ms")


def versions(peer: str, requirements: Path = REQUIREMENTS) -> str:
    pins = dict(
        line.split("==", 1)
        for line in (requirements / f"{peer}.txt").read_text().splitlines()
        if "==" in line
    )
    return ", ".join(f"{name} {pins.get(name, '?')}" for name in PEERS[peer])


def install(peer: str, workdir: Path, requirements: Path = REQUIREMENTS) -> Path:
    """A venv with `peer` installed from its pinned requirements; its python."""
    venv = workdir / f"peer-{peer}"
    env = clean_env()
    try:
        run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], env=env)
        pins = requirements / f"{peer}.txt"
        run(
            ["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r", str(pins)],
            env=env,
        )
    except AssertionError as error:  # tests.support.run's report of a failed command
        raise RuntimeError(f"could not install {peer}: {str(error).strip()[-600:]}") from None
    return venv / "bin" / "python"


def install_all(
    peers: list[str], workdir: Path, requirements: Path = REQUIREMENTS
) -> tuple[dict[str, Path], dict[str, dict[str, str]]]:
    """The python of each peer that installed, and an {"error": ...} for each that did not."""
    pythons: dict[str, Path] = {}
    errors: dict[str, dict[str, str]] = {}
    for peer in peers:
        try:
            pythons[peer] = install(peer, workdir, requirements)
        except (RuntimeError, OSError) as error:
            errors[peer] = {"error": str(error)}
            print(f"  peers: {peer} not installed: {error}", file=sys.stderr)
    return pythons, errors


def peer_env(python: Path) -> dict[str, str]:
    """The probe's environment: the peer's venv first on PATH (its worker command is there)."""
    path = f"{python.parent}{os.pathsep}{os.environ['PATH']}"
    return clean_env(PATH=path, PYTHONPATH=f"{PEERS_DIR}{os.pathsep}{IN_VENV}")


def measure(ws: Workspace, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every system over `args.repeats` rounds: `args.jobs` enqueued by `args.producers`, then
    drained, then `args.idle_seconds` idle and `args.latency_jobs` one at a time."""
    jobs, producers, repeats = args.jobs, args.producers, args.repeats
    latency_jobs, idle_seconds = args.latency_jobs, args.idle_seconds
    pythons, errors = install_all(args.peers, workdir)
    tuned = tuned_settings(ws)
    systems: dict[str, tuple[str, str, dict[str, str]]] = {
        name: (ws.bin("python"), f"peer_arq:{name}", arq_env(ws, name, tuned)) for name in ARQ_SYSTEMS
    }
    systems |= {peer: (str(python), f"peer_{peer}", peer_env(python)) for peer, python in pythons.items()}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    for round_ in range(repeats):
        for name in take_turns(list(systems), round_):
            if name in errors:
                continue  # failed in an earlier round: reported, not retried
            python, system, env = systems[name]
            try:
                figures = run_probe(
                    python, system, ws, env, f"peers-{name}", jobs=jobs, producers=producers,
                    latency_jobs=latency_jobs, idle_seconds=idle_seconds,
                )  # fmt: skip
            except AssertionError as error:  # the probe failed: its output says why
                if name in ARQ_SYSTEMS:
                    raise RuntimeError(str(error)) from None  # no baseline, no ratios
                errors[name] = {"error": f"failed in round {round_ + 1}: {str(error).strip()[-600:]}"}
                print(f"  peers: {name} failed: {error}", file=sys.stderr)
                continue
            samples[name].append(figures)
            print(
                f"  peers round {round_ + 1}: {name} enqueue {figures['enqueue_jobs_per_s']:,.0f}/s,"
                f" drain {figures['drain_jobs_per_s']:,.0f}/s, p50 {figures['latency_p50_ms']:.1f} ms",
                file=sys.stderr,
            )
    results: dict[str, Any] = {name: medians(runs) for name, runs in samples.items() if name not in errors}
    for peer in results.keys() & set(PEERS):
        results[peer]["versions"] = versions(peer)
    ratios = {
        name: {
            figure: paired_ratio([run[figure] for run in runs], [run[figure] for run in samples["template"]])
            for figure in RATIO_FIGURES
        }
        for name, runs in samples.items()
        if name != "template" and name not in errors
    }
    return {
        "jobs": jobs,
        "producers": producers,
        "latency_jobs": latency_jobs,
        "idle_seconds": idle_seconds,
        "repeats": repeats,
        "systems": results | errors,
        "ratios_to_template": ratios,
        "samples": samples,
    }
