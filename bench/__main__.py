"""Run the benchmarks: `python -m bench` from the repo root (or `tox -e bench`).

Renders the default project into a temporary directory, installs it as its
Docker image does, starts a private redis-server, and measures the generated
project beside baselines in the same run. Prints a table and writes JSON.
Nothing here asserts a timing: targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support import ROOT, RedisServer, cookiecutter_config, make_project_venv, render

from . import drain, enqueue, green, latency, peers, scale
from .report import PARTS, machine, table
from .workspace import Workspace


def positive(kind: type[int]) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def parts(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(PARTS)}; got {text!r}")
    return chosen


def peer_names(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(peers.PEERS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(peers.PEERS)}; got {text!r}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=parts, default=list(PARTS), help="comma-separated: %(default)s")
    parser.add_argument("--jobs", type=positive(int), default=10000, help="jobs per drain (%(default)s)")
    parser.add_argument(
        "--defaults-jobs",
        type=positive(int),
        default=2000,
        help="jobs for the worker with arq's defaults, at most --jobs (%(default)s)",
    )
    parser.add_argument("--repeats", type=positive(int), default=5, help="rounds per variant (%(default)s)")
    parser.add_argument("--duration", type=positive(int), default=10, help="wrk seconds (%(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds, 0 for none")
    parser.add_argument("--connections", type=positive(int), default=16, help="wrk connections")
    parser.add_argument("--latency-jobs", type=positive(int), default=200, help="jobs per latency round")
    parser.add_argument("--idle-seconds", type=positive(int), default=10, help="idle worker measured (s)")
    parser.add_argument("--producers", type=positive(int), default=50, help="concurrent enqueuers (peers)")
    parser.add_argument(
        "--peers", type=peer_names, default=list(peers.PEERS), help="comma-separated: %(default)s"
    )
    parser.add_argument(
        "--scale-repeats", type=positive(int), default=3, help="rounds of the scale part (%(default)s)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "latest.json", help="output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastapi-arq-bench-") as tmp:
        workdir = Path(tmp)
        config = cookiecutter_config(workdir)
        project = render(workdir / "render", config, lock=True)
        redis = RedisServer(workdir)
        (workdir / "logs").mkdir()
        ws = Workspace(project, make_project_venv(project, workdir / "venv"), redis, workdir / "logs")
        results: dict[str, object] = {
            "machine": machine(ws),
            "arguments": sys.argv[1:] if argv is None else argv,
        }
        failed = False

        def measure(part: str, run_part: Callable[[], object]) -> None:
            """Run one part; a failure is recorded and reported, the other parts still run."""
            nonlocal failed
            if part not in args.parts:
                return
            print(f"{part} ...", file=sys.stderr)
            try:
                results[part] = run_part()
            except Exception as error:  # noqa: BLE001 - reported, then the exit code says it
                failed = True
                results[part] = {"error": f"{type(error).__name__}: {error}"}
                print(f"{part} failed: {type(error).__name__}: {error}", file=sys.stderr)

        redis.start()
        try:
            measure("drain", lambda: drain.measure(ws, args.jobs, args.defaults_jobs, args.repeats))
            measure(
                "enqueue",
                lambda: enqueue.measure(ws, args.duration, args.warmup, args.connections, args.repeats),
            )
            measure(
                "latency", lambda: latency.measure(ws, args.latency_jobs, args.idle_seconds, args.repeats)
            )
            measure("peers", lambda: peers.measure(ws, workdir, args))
            measure("scale", lambda: scale.measure(ws, args.jobs, args.scale_repeats))
        finally:
            redis.stop()
        measure("green", lambda: green.measure(workdir, config))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
