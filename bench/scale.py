"""Part: jobs/s of 1, 2 and 3 generated workers on one queue, for a no-op job and for `sync_invoice`.

Each worker is started with the Dockerfile's CMD, as `docker compose up --scale worker=N`
starts them, but on one host: its metrics port is off (one port per host). `sync_invoice`
fetches each invoice from a local fake upstream (tests/support.py's `Upstream`, with HTTP/1.1
keep-alive as a real API has it) served by this process, whose CPU share is reported, so the
figure is the worker's. Worker counts take turns (1 2 3, then 3 2 1, ...); ratios against one
worker are taken within a round.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from tests.support import Upstream, dockerfile_cmd, serve_upstream

from .drain import drain_figures
from .stats import paired_ratio, take_turns
from .workspace import Workspace

WORKER_COUNTS = (1, 2, 3)
FUNCTIONS = ("ping", "sync_invoice")


class KeepAliveUpstream(Upstream):
    """`Upstream` on HTTP/1.1, as a real API: the worker's HTTP client keeps its connections
    open. It writes headers and body apart, so without TCP_NODELAY each answer on a kept
    connection waits for the client's delayed ACK (40 ms here)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def measure(ws: Workspace, jobs: int, repeats: int) -> dict[str, Any]:
    program, *rest = dockerfile_cmd(ws.project)
    argv = [ws.bin(program), *rest]
    serializer = f"{ws.package}.serialization"
    samples: dict[str, dict[int, list[float]]] = {f: {n: [] for n in WORKER_COUNTS} for f in FUNCTIONS}
    # Cores kept busy during each drain: the workers, Redis, and for sync_invoice the upstream.
    cores: dict[str, dict[int, list[dict[str, float]]]] = {
        f: {n: [] for n in WORKER_COUNTS} for f in FUNCTIONS
    }
    with serve_upstream(KeepAliveUpstream) as upstream:
        env = ws.env(**{f"{ws.prefix}INVOICE_API_URL": upstream, f"{ws.prefix}WORKER_METRICS_PORT": "0"})
        for round_ in range(repeats):
            for function in FUNCTIONS:
                for count in take_turns(list(WORKER_COUNTS), round_):
                    cpu = time.process_time()  # the upstream's threads are this process's work
                    name = f"scale-{function}-{count}"
                    figures = drain_figures(
                        ws, name, argv, serializer, jobs, env, count, function, wake_subscribers=True
                    )
                    rate = figures["jobs_per_s"]
                    samples[function][count].append(rate)
                    busy = {"workers": figures["workers_cores"], "redis": figures["redis_cores"]}
                    if function == "sync_invoice":
                        # Its CPU time over the drain's span (it serves nothing else).
                        busy["upstream"] = (time.process_time() - cpu) / (jobs / rate)
                    cores[function][count].append(busy)
                    print(
                        f"  scale round {round_ + 1}: {function} {count} workers {rate:,.0f} jobs/s"
                        f" (cores busy: {', '.join(f'{k} {v:.2f}' for k, v in busy.items())})",
                        file=sys.stderr,
                    )
    return {
        "jobs": jobs,
        "repeats": repeats,
        "worker_counts": list(WORKER_COUNTS),
        "jobs_per_s": {
            function: {str(count): statistics.median(rates) for count, rates in by_count.items()}
            for function, by_count in samples.items()
        },
        "samples": {
            function: {str(count): rates for count, rates in by_count.items()}
            for function, by_count in samples.items()
        },
        "ratios_vs_1_worker": {
            function: {str(count): paired_ratio(by_count[count], by_count[1]) for count in WORKER_COUNTS[1:]}
            for function, by_count in samples.items()
        },
        "cores_busy": {
            function: {
                str(count): {part: statistics.median(r[part] for r in runs) for part in runs[0]}
                for count, runs in by_count.items()
            }
            for function, by_count in cores.items()
        },
    }
