"""The benchmark command works end to end, at a tiny size, so `bench/` cannot rot.

Nothing here checks a timing: only that every figure was measured and the ratios
are the quotients of the figures they name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import peers
from bench.enqueue import parse_wrk, with_app
from bench.report import peers_table, table
from bench.stats import paired_ratio, take_turns

from .support import ROOT, clean_env

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8000/jobs/ping
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   520.00us  100.00us   2.10ms   90.00%
  Latency Distribution
     50%  480.00us
     75%  510.00us
     90%  600.00us
     99%    1.20ms
  7000 requests in 1.00s, 1.00MB read
Requests/sec:   7000.50
Transfer/sec:      1.00MB
"""


def test_ratios_are_taken_within_rounds_and_the_order_alternates() -> None:
    assert paired_ratio([2, 4, 6], [1, 1, 3]) == {"median": 2, "min": 2, "max": 4}
    assert take_turns(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert take_turns(["a", "b", "c"], 1) == ["c", "b", "a"]


def test_wrk_output_is_parsed_in_milliseconds() -> None:
    assert parse_wrk(WRK_OUTPUT) == {"requests_per_s": 7000.5, "p50_ms": 0.48, "p99_ms": 1.2}


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("  Non-2xx or 3xx responses: 12\n", "12 requests failed"),
        ("  Socket errors: connect 0, read 3, write 0, timeout 0\n", "socket errors"),
    ],
)
def test_failed_requests_make_the_run_fail(extra: str, error: str) -> None:
    with pytest.raises(RuntimeError, match=error):
        parse_wrk(WRK_OUTPUT.replace("Requests/sec", extra + "Requests/sec"))


def test_baselines_run_with_the_compose_command_but_their_own_app() -> None:
    command = ["uvicorn", "--factory", "pkg.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
    assert with_app(command, "minimal_app:create_app", 1234, "--http", "h11") == [
        "uvicorn",
        "--factory",
        "minimal_app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        "1234",
        "--http",
        "h11",
    ]


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--parts", "drain,speed", "--json", str(tmp_path / "x.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "choose from drain, enqueue, green, latency, peers, scale" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_peer_that_cannot_be_installed_is_reported_not_skipped(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements"
    requirements.mkdir()
    (requirements / "saq.txt").write_text(f"{tmp_path / 'saq-0.0.0-py3-none-any.whl'}\n")

    pythons, errors = peers.install_all(["saq"], tmp_path, requirements)

    assert pythons == {}
    assert errors["saq"]["error"].startswith("could not install saq:")
    assert "saq-0.0.0-py3-none-any.whl" in errors["saq"]["error"]
    results = {"jobs": 10, "producers": 2, "latency_jobs": 3, "repeats": 1, "systems": errors}
    assert "saq         FAILED: could not install saq:" in peers_table(results)


def test_every_peer_is_pinned_with_the_versions_the_report_names() -> None:
    for peer, packages in peers.PEERS.items():
        named = peers.versions(peer)
        assert "?" not in named, (peer, named)
        assert named.startswith(f"{packages[0]} "), named
        pins = (peers.REQUIREMENTS / f"{peer}.txt").read_text().splitlines()
        assert all("==" in line for line in pins if line and not line.startswith("#")), peer


def test_a_failing_part_is_reported_and_the_others_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("redis went away")

    monkeypatch.setattr(bench_main.drain, "measure", broken)
    run = {"render_s": 1.0, "tox_s": 2.0, "total_s": 3.0, "uv_cache_mb_after": 9.0}
    monkeypatch.setattr(bench_main.green, "measure", lambda *args: {"cold": run, "warm": run})
    output = tmp_path / "bench.json"

    assert bench_main.main(["--parts", "drain,green", "--json", str(output)]) == 1

    results = json.loads(output.read_text())
    assert results["drain"] == {"error": "RuntimeError: redis went away"}
    assert results["green"] == {"cold": run, "warm": run}
    assert "drain: FAILED, RuntimeError: redis went away" in capsys.readouterr().out


def test_every_part_is_measured_side_by_side(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "wrk is not installed (apt-get install wrk; .ci/run does it)"
    output = tmp_path / "bench.json"
    args = [sys.executable, "-m", "bench", "--jobs", "300", "--repeats", "1", "--duration", "1"]
    args += ["--warmup", "0", "--connections", "4", "--latency-jobs", "5", "--idle-seconds", "1"]
    args += ["--scale-repeats", "1", "--json", str(output)]
    result = subprocess.run(
        args, cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=False, timeout=1500
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(output.read_text())

    drain = results["drain"]
    rates = drain["jobs_per_s"]
    assert set(rates) == {"template", "bare_defaults", "bare_tuned", "bare_same"}
    assert all(rate > 0 for rate in rates.values())
    for baseline in ("bare_tuned", "bare_same"):
        ratio = drain["ratios"][f"template_vs_{baseline}"]
        assert ratio["median"] == pytest.approx(rates["template"] / rates[baseline])
    assert drain["jobs"] == {"template": 300, "bare_tuned": 300, "bare_same": 300, "bare_defaults": 300}
    # Read from the generated WorkerSettings, as arq's CLI imports it.
    tuned = drain["tuned_settings"]
    assert (tuned["max_jobs"], tuned["allow_abort_jobs"], tuned["event_loop"]) == (100, True, "uvloop")

    servers = results["enqueue"]["servers"]
    assert set(servers) == {
        "template",
        "direct_enqueue_job",
        "no_redis_ceiling",
        "template_asyncio_h11",
    }
    for figures in servers.values():
        assert figures["requests_per_s"] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert results["enqueue"]["ratios"]["template_vs_direct_enqueue_job"]["median"] == pytest.approx(
        servers["template"]["requests_per_s"] / servers["direct_enqueue_job"]["requests_per_s"]
    )

    scale = results["scale"]
    for function in ("ping", "sync_invoice"):
        rates = scale["jobs_per_s"][function]
        assert set(rates) == {"1", "2", "3"}
        assert all(rate > 0 for rate in rates.values())
        for count in ("2", "3"):
            ratio = scale["ratios_vs_1_worker"][function][count]["median"]
            assert ratio == pytest.approx(rates[count] / rates["1"])
        assert all(cores["workers"] > 0 for cores in scale["cores_busy"][function].values())
    assert all("upstream" in cores for cores in scale["cores_busy"]["sync_invoice"].values())

    for cache in ("cold", "warm"):
        green = results["green"][cache]
        assert green["total_s"] == pytest.approx(green["render_s"] + green["tox_s"])
        assert green["tox_s"] > 0

    latency = results["latency"]
    assert set(latency["workers"]) == {"template", "bare_tuned", "bare_defaults"}
    for figures in latency["workers"].values():
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
        assert figures["idle_redis_commands_per_s"] >= 0 and figures["idle_cpu"] >= 0
    # An idle arq worker polls: it sends Redis commands (a blocking read would send none).
    assert latency["workers"]["bare_tuned"]["idle_redis_commands_per_s"] > 0
    assert latency["ratios"]["p50_template_vs_bare_tuned"]["median"] == pytest.approx(
        latency["workers"]["template"]["latency_p50_ms"] / latency["workers"]["bare_tuned"]["latency_p50_ms"]
    )

    systems = results["peers"]["systems"]
    assert set(systems) == {"template", "bare_tuned", *peers.PEERS}
    for name, figures in systems.items():
        assert "error" not in figures, (name, figures)
        assert figures["enqueue_jobs_per_s"] > 0 and figures["drain_jobs_per_s"] > 0, name
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"], name
        assert figures["description"], name
    assert systems["celery"]["producers"] == "threads" and systems["saq"]["producers"] == "asyncio tasks"
    ratios = results["peers"]["ratios_to_template"]
    assert set(ratios) == {"bare_tuned", *peers.PEERS}
    assert ratios["saq"]["drain_jobs_per_s"]["median"] == pytest.approx(
        systems["saq"]["drain_jobs_per_s"] / systems["template"]["drain_jobs_per_s"]
    )

    assert results["machine"]["cores"] >= 1
    assert table(results) in result.stdout
