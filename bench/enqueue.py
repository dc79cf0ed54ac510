"""Part 2: requests/s and latency of enqueueing over HTTP, four servers side by side.

Every server is started with the generated docker-compose.yml's api command (only
the app, host and port changed) and loaded by wrk, a C load generator, with a
POST of the same JSON body. CPU time of the server, Redis and wrk is reported to
show which one was the bottleneck.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support import Process, free_port, run, wait_for_port

from .in_venv.procstats import cpu_seconds
from .stats import paired_ratio, take_turns
from .workspace import API_TOKEN, Workspace

LUA = Path(__file__).resolve().parent / "post.lua"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def api_command(ws: Workspace) -> list[str]:
    compose = yaml.safe_load((ws.project / "docker-compose.yml").read_text())
    return [str(arg) for arg in compose["services"]["api"]["command"]]


def with_app(command: list[str], app: str, port: int, *extra: str) -> list[str]:
    """`command` serving `app` on 127.0.0.1:`port`."""
    args = list(command)
    args[args.index("--factory") + 1] = app
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    return [*args, *extra]


def servers(ws: Workspace) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Each variant's ASGI app factory, the path it is loaded on, extra uvicorn flags."""
    template = f"{ws.package}.main:create_app"
    return {
        "template": (template, "/jobs/ping", ()),
        "direct_enqueue_job": ("minimal_app:create_app", "/enqueue", ()),
        "no_redis_ceiling": ("minimal_app:create_app", "/noop", ()),
        "template_asyncio_h11": (template, "/jobs/ping", ("--loop", "asyncio", "--http", "h11")),
    }


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from `wrk --latency` output."""
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        raise RuntimeError(f"{match.group(1)} requests failed under load:\n{output}")
    if match := re.search(r"Socket errors: (.*)", output):
        raise RuntimeError(f"socket errors under load ({match.group(1)}):\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    if rate is None or set(latency) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{output}")

    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * UNITS[unit]

    return {"requests_per_s": float(rate.group(1)), "p50_ms": ms(latency["50"]), "p99_ms": ms(latency["99"])}


def wrk(url: str, duration: float, connections: int) -> tuple[str, float]:
    """wrk's output and the CPU seconds it used."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(LUA), url]
    before = children_cpu_seconds()
    output = run(args, timeout=duration + 60, env={**os.environ, "BENCH_API_TOKEN": API_TOKEN}).stdout
    return output, children_cpu_seconds() - before


def load_once(
    ws: Workspace, name: str, command: list[str], duration: float, warmup: float, connections: int
) -> dict[str, float]:
    app, path, extra = servers(ws)[name]
    port = free_port()
    run(["redis-cli", "-p", str(ws.redis.port), "flushall"])
    server = Process(name, with_app(command, app, port, *extra), ws.env(), ws.logs)
    try:
        wait_for_port(port, server.popen)
        url = f"http://127.0.0.1:{port}{path}"
        if warmup:
            parse_wrk(wrk(url, warmup, connections)[0])
        redis_pid = ws.redis.process.pid  # type: ignore[union-attr]
        server_before, redis_before = cpu_seconds(server.popen.pid), cpu_seconds(redis_pid)
        started = time.monotonic()
        output, wrk_cpu = wrk(url, duration, connections)
        elapsed = time.monotonic() - started
        result = parse_wrk(output)
        result["server_cpu"] = (cpu_seconds(server.popen.pid) - server_before) / elapsed
        result["redis_cpu"] = (cpu_seconds(redis_pid) - redis_before) / elapsed
        result["wrk_cpu"] = wrk_cpu / elapsed
        return result
    finally:
        server.stop()


def measure(ws: Workspace, duration: float, warmup: float, connections: int, repeats: int) -> dict[str, Any]:
    """Median of each figure over `repeats` rounds; the servers take turns."""
    if shutil.which("wrk") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("the enqueue benchmark needs wrk and redis-cli: apt-get install wrk redis-tools")
    command = api_command(ws)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers(ws)}
    for round_ in range(repeats):
        for name in take_turns(list(samples), round_):
            samples[name].append(load_once(ws, name, command, duration, warmup, connections))
            rate = samples[name][-1]["requests_per_s"]
            print(f"  enqueue round {round_ + 1}: {name} {rate:,.0f} req/s", file=sys.stderr)
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    rps = {name: [s["requests_per_s"] for s in runs] for name, runs in samples.items()}
    return {
        "duration_s": duration,
        "connections": connections,
        "repeats": repeats,
        "command": command,
        "servers": medians,
        "samples": samples,
        "ratios": {
            "template_vs_direct_enqueue_job": paired_ratio(rps["template"], rps["direct_enqueue_job"]),
            "template_vs_no_redis_ceiling": paired_ratio(rps["template"], rps["no_redis_ceiling"]),
            "uvloop_httptools_vs_asyncio_h11": paired_ratio(rps["template"], rps["template_asyncio_h11"]),
        },
    }
