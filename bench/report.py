"""The machine a run was taken on, and the results as a table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .workspace import Workspace

PARTS = ("drain", "enqueue", "green", "latency", "peers", "scale")
PACKAGES = ("arq", "fastapi", "uvicorn", "uvloop", "httptools", "redis", "pydantic")
TARGETS = {
    "template_vs_bare_tuned": 0.95,
    "template_vs_bare_same": 0.95,
    "template_vs_direct_enqueue_job": 0.9,
}


def first_line(args: list[str]) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "not found"
    return (result.stdout or result.stderr).strip().splitlines()[0]


def machine(ws: Workspace) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text().split()
    os_release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    script = (
        "import importlib.metadata as m, json, platform; print(json.dumps({'python': "
        f"platform.python_version(), **{{p: m.version(p) for p in {PACKAGES!r}}}}}))"
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
            platform.machine(),
        ),
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "os": os_release.get("PRETTY_NAME", "").strip('"') + f", Linux {platform.release()}",
        "project_venv": json.loads(first_line([ws.bin("python"), "-c", script])),
        "redis_server": first_line(["redis-server", "--version"]),
        "wrk": first_line(["wrk", "--version"]),
    }


def target(name: str, ratio: dict[str, float]) -> str:
    figure = f"{ratio['median']:.2f}x (rounds {ratio['min']:.2f}-{ratio['max']:.2f})"
    goal = TARGETS.get(name)
    if goal is None:
        return figure
    return f"{figure}, target >= {goal}: {'met' if ratio['median'] >= goal else 'NOT met'}"


def table(results: dict[str, Any]) -> str:
    lines = [f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores"]
    lines += [
        f"{part}: FAILED, {results[part]['error']}" for part in PARTS if "error" in results.get(part, {})
    ]
    if (drain := results.get("drain")) and "error" not in drain:
        jobs = ", ".join(f"{name} {count:,}" for name, count in drain["jobs"].items())
        lines += ["", f"Worker drain: no-op jobs ({jobs}), median of {drain['repeats']} rounds"]
        lines += [f"  {'worker':<34}{'jobs/s':>10}"]
        lines += [f"  {name:<34}{rate:>10,.0f}" for name, rate in drain["jobs_per_s"].items()]
        lines += [f"  {name}: {target(name, r)}" for name, r in drain["ratios"].items()]
    if (enqueue := results.get("enqueue")) and "error" not in enqueue:
        lines += [
            "",
            (
                f"Enqueue over HTTP: wrk, {enqueue['connections']} connections, "
                f"{enqueue['duration_s']:g} s, median of {enqueue['repeats']} rounds"
            ),
            f"  {'server':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server cpu':>12}{'wrk cpu':>9}",
        ]
        for name, f in enqueue["servers"].items():
            lines.append(
                f"  {name:<24}{f['requests_per_s']:>9,.0f}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
                f"{f['server_cpu']:>12.0%}{f['wrk_cpu']:>9.0%}"
            )
        lines += [f"  {name}: {target(name, r)}" for name, r in enqueue["ratios"].items()]
    if (green := results.get("green")) and "error" not in green:
        lines += ["", "Time to green: cookiecutter --no-input, then tox"]
        lines += [f"  {'uv cache':<10}{'render s':>10}{'tox s':>8}{'total s':>9}{'cache MB':>10}"]
        for label in ("cold", "warm"):
            g = green[label]
            lines.append(
                f"  {label:<10}{g['render_s']:>10.1f}{g['tox_s']:>8.1f}{g['total_s']:>9.1f}"
                f"{g['uv_cache_mb_after']:>10.0f}"
            )
    if (latency := results.get("latency")) and "error" not in latency:
        lines += ["", latency_table(latency)]
    if (peers := results.get("peers")) and "error" not in peers:
        lines += ["", peers_table(peers)]
    if (scale := results.get("scale")) and "error" not in scale:
        lines += scale_table(scale, results["machine"]["cores"])
    return "\n".join(lines)


def latency_table(latency: dict[str, Any]) -> str:
    lines = [
        (
            f"Pickup latency, idle worker: {latency['latency_jobs']} jobs one at a time, 10-50 ms apart;"
            f" idle cost over {latency['idle_seconds']:g} s; median of {latency['repeats']} rounds"
        ),
        f"  {'worker':<16}{'p50 ms':>9}{'p99 ms':>9}{'idle Redis cmd/s':>18}{'idle cpu':>10}",
    ]
    for name, w in latency["workers"].items():
        lines.append(
            f"  {name:<16}{w['latency_p50_ms']:>9.1f}{w['latency_p99_ms']:>9.1f}"
            f"{w['idle_redis_commands_per_s']:>18.1f}{w['idle_cpu']:>10.1%}"
        )
    lines += [f"  {name}: {target(name, r)}" for name, r in latency["ratios"].items()]
    return "\n".join(lines)


def peers_table(peers: dict[str, Any]) -> str:
    lines = [
        (
            f"Peers: {peers['jobs']:,} no-op jobs enqueued by {peers['producers']} producers, then drained by one"
            f" worker process; latency over {peers['latency_jobs']} jobs; median of {peers['repeats']} rounds"
        ),
        (
            f"  {'system':<12}{'enqueue/s':>10}{'drain/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'idle cmd/s':>11}"
            f"{'idle cpu':>9}  drain vs template"
        ),
    ]
    for name, s in peers["systems"].items():
        if "error" in s:
            lines.append(f"  {name:<12}FAILED: {s['error'].splitlines()[0][:200]}")
            continue
        ratio = peers["ratios_to_template"].get(name, {}).get("drain_jobs_per_s")
        versus = f"{ratio['median']:.2f}x" if ratio else ""
        lines.append(
            f"  {name:<12}{s['enqueue_jobs_per_s']:>10,.0f}{s['drain_jobs_per_s']:>9,.0f}"
            f"{s['latency_p50_ms']:>8.1f}{s['latency_p99_ms']:>8.1f}{s['idle_redis_commands_per_s']:>11.1f}"
            f"{s['idle_cpu']:>9.1%}  {versus}"
        )
    lines += [f"  {name}: {s['description']}" for name, s in peers["systems"].items() if "error" not in s]
    return "\n".join(lines)


def scale_table(scale: dict[str, Any], cores: int) -> list[str]:
    lines = [
        "",
        f"Workers on one queue: {scale['jobs']:,} jobs a drain, median of {scale['repeats']} rounds, {cores} cores",
        f"  {'job':<14}{'workers':>8}{'jobs/s':>9}{'per worker':>12}  {'vs 1 worker':<28}cores busy",
    ]
    for function, rates in scale["jobs_per_s"].items():
        for count, rate in rates.items():
            ratio = scale["ratios_vs_1_worker"][function].get(count)
            versus = target(f"{function}_{count}", ratio) if ratio else ""
            busy = ", ".join(f"{part} {n:.2f}" for part, n in scale["cores_busy"][function][count].items())
            lines.append(
                f"  {function:<14}{count:>8}{rate:>9,.0f}{rate / int(count):>12,.0f}  {versus:<28}{busy}"
            )
    return lines
