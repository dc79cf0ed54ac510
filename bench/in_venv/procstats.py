"""A process's CPU time, Redis command counts and percentiles, for every measuring side.

Standard library only, so it imports anywhere: the probes that run in other venvs
(bench/in_venv with PYTHONPATH=bench/in_venv, bench/peers with bench/in_venv on it too)
as `procstats`, the harness (bench/*.py) and the template's tests as
`bench.in_venv.procstats`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat after the command name (which may hold spaces and
    parentheses): [0] is the state, [1] the parent pid, [11] utime, [12] stime."""
    return stat.read_text().rpartition(")")[2].split()


def _cpu(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, in seconds (Linux)."""
    return _cpu(_stat_fields(Path(f"/proc/{pid}/stat")))


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live descendants (some workers fork a child)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat)
        except OSError:
            continue  # ended while we looked
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = _cpu(fields)
    tree = {pid}
    grew = True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(times.get(member, 0.0) for member in tree)


def command_calls(commandstats: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Calls of each Redis command so far, from redis-py's parsed `INFO commandstats`
    (sync or async client alike), INFO left out: the measuring side's own calls."""
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in commandstats.items()
        if name != "cmdstat_info"
    }


def calls_between(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The commands called between two `command_calls`, with their counts."""
    return {
        name: count - before.get(name, 0) for name, count in after.items() if count != before.get(name, 0)
    }


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or
    below it (`share` 0.99 of 50 values: the largest)."""
    if not values or not 0 < share <= 1:
        raise ValueError(f"percentile of {len(values)} values at share {share}: need values, 0 < share <= 1")
    ordered = sorted(values)
    # Rounded first: 0.1 * 30 is 3.0000000000000004 in floats, whose ceiling would be 4.
    rank = math.ceil(round(share * len(ordered), 9))
    return ordered[max(rank, 1) - 1]
