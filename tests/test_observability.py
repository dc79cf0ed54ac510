"""The generated project's `observability/` folder against the metrics the app exports.

promtool checks the alert rules and runs their unit tests; the dashboard and the rules may
only use the metric and label names of the metrics contract below; and a real Prometheus
scrapes a running render (redis-server, uvicorn, a worker started with the Dockerfile's CMD)
and answers every dashboard and alert query with data.

Most alerts must not fire in that healthy run, so every alert expression is evaluated in its
`bool` form: each comparison (`> 100`, `== 0`) becomes `> bool 100`, `== bool 0`, which keeps
every series, valued 0 or 1, instead of dropping those that do not match. Each vector selector
of every query is also evaluated alone. So an empty answer can only mean that a selector matched
nothing (a misspelt metric, label or label value), never that an alert is merely quiet. The
alerts that need a dead worker or Redis are also evaluated as written and must be quiet.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .support import (
    DEFAULT_PACKAGE,
    DEFAULT_PREFIX,
    ROOT,
    Process,
    Upstream,
    app_env,
    free_port,
    running_api,
    running_redis,
    serve_upstream,
    wait_for_port,
    worker_starter,
)
from .support import wait_until as wait_while_running

# Prometheus or the API not answering yet is a "not yet".
wait_until = partial(wait_while_running, interval=0.2, ignore=(httpx.TransportError,))

API_TOKEN = "observability-token-0123456789"
QUEUE = "arq:queue"
TEMPLATE = ROOT / "{{cookiecutter.project_slug|project_dir}}" / "observability"

# The metrics contract (issue 12): exposition name -> (type, labels).
CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels.split()))
    for name, kind, labels in [
        ("http_requests_total", "counter", "method route status"),
        ("http_request_duration_seconds", "histogram", "method route"),
        ("arq_jobs_enqueued_total", "counter", "function outcome"),
        ("arq_queue_jobs", "gauge", "queue state"),
        ("arq_queue_oldest_ready_job_age_seconds", "gauge", "queue"),
        ("arq_queue_worker_alive", "gauge", "queue"),
        ("arq_worker_health_check_age_seconds", "gauge", "queue"),
        ("arq_redis_up", "gauge", ""),
        ("arq_jobs_started_total", "counter", "function"),
        ("arq_jobs_finished_total", "counter", "function outcome"),
        ("arq_job_duration_seconds", "histogram", "function"),
        ("arq_job_queue_wait_seconds", "histogram", "function"),
        ("arq_jobs_in_progress", "gauge", "queue function"),
    ]
}
# The label values the contract allows, and those the run below must produce.
FUNCTIONS = {"ping", "sync_invoice", "cleanup_synced_invoices"}
LABEL_VALUES: dict[tuple[str, str], set[str]] = {
    ("arq_jobs_enqueued_total", "outcome"): {"accepted", "duplicate", "unavailable"},
    ("arq_jobs_finished_total", "outcome"): {"complete", "failed", "retried", "aborted"},
    ("arq_queue_jobs", "state"): {"ready", "deferred"},
}
EXPECTED_VALUES: dict[tuple[str, str], set[str]] = {
    ("arq_jobs_enqueued_total", "outcome"): {"accepted", "duplicate"},
    ("arq_jobs_finished_total", "outcome"): {"complete", "failed", "retried", "aborted"},
    ("arq_queue_jobs", "state"): {"ready", "deferred"},
    ("arq_jobs_finished_total", "function"): {"ping", "sync_invoice"},
    # The API's own series: scraped apart from the worker's, so waited for too.
    ("http_requests_total", "route"): {"/jobs/{job_id}", "unmatched"},
}
# Labels every scraped series gets from Prometheus, and the histogram bucket bound.
TARGET_LABELS = {"job", "instance"}
ALERTS = {
    "ArqQueueBacklogGrowing",
    "ArqQueueOldestReadyJobTooOld",
    "ArqJobFailureRateHigh",
    "ArqNoLiveWorker",
    "ArqRedisDown",
}
# The alerts that must stay quiet while a worker runs and Redis is up.
QUIET_WHEN_HEALTHY = {"ArqNoLiveWorker", "ArqRedisDown"}
PANELS = {
    "Enqueue rate by outcome",
    "Ready and deferred jobs",
    "Oldest ready job age",
    "Worker alive",
    "Worker health-check age",
    "Redis up",
    "Jobs started and finished by function and outcome",
    "Failure ratio",
    "Job duration p50 / p95 / p99",
    "Queue wait p95",
    "Jobs in progress",
    "HTTP request rate by route",
    "HTTP p95 latency by route",
}
# What Grafana would put in place of the dashboard's variables when we run its queries.
DASHBOARD_VARIABLES = {"$__rate_interval": "1m", "$queue": QUEUE}
# Jinja leftovers: any `{%`/`{#`, a `cookiecutter.` name, or a `{{` that is none of the
# templates Prometheus (`{{ $labels.queue }}`, `{{ $value | humanize }}`) and Grafana
# legends (`{{function}}`) mean to keep.
UNRENDERED = re.compile(r"\{%|\{#|cookiecutter\.|\{\{(?!\s*\$(labels|value)\b|[a-z_]+\}\})")

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?")
MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*\"")


def observability(project: Path) -> Path:
    return project / "observability"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed (apt-get install prometheus; .ci/env.sh does)"
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def alert_rules(project: Path) -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((observability(project) / "alerts.yml").read_text())["groups"]
    assert [group["name"] for group in groups] == ["arq"]
    return {rule["alert"]: rule for rule in groups[0]["rules"]}


def dashboard(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((observability(project) / "dashboard.json").read_text())
    return loaded


def panel_targets(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in board["panels"]:
        if panel["type"] != "row":
            for target in panel["targets"]:
                yield panel["title"], target


def dashboard_queries(board: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every panel query, with the dashboard's variables replaced as Grafana would, and its legend."""
    queries = {}
    for title, target in panel_targets(board):
        expr = target["expr"]
        for variable, value in DASHBOARD_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{title}: an unknown variable in {expr}"
        queries[f"{title} [{target['refId']}]"] = (expr, target.get("legendFormat", ""))
    return queries


def blanked(pattern: str | re.Pattern[str], text: str, keep_quotes: bool = False) -> str:
    """`text` with each match of `pattern` overwritten (same length, so positions still hold)."""

    def blank(match: re.Match[str]) -> str:
        inner = "x" * (len(match.group()) - 2)
        return f'"{inner}"' if keep_quotes else " " * len(match.group())

    return re.sub(pattern, blank, text)


def selectors(expr: str) -> list[tuple[str, str]]:
    """The vector selectors of a PromQL expression: (metric name, its `{...}` matchers or "")."""
    # Find them in a copy without the string contents, range durations and grouping labels.
    text = blanked(r'"(?:[^"\\]|\\.)*"', expr, keep_quotes=True)
    text = blanked(GROUPING, blanked(r"\[[^\]]*\]", text))
    found = []
    for match in SELECTOR.finditer(text):
        if match.group(1) in PROMQL_KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword or a function
        braces = expr[match.start(2) : match.end(2)] if match.group(2) else ""
        found.append((match.group(1), braces))
    return found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for _, labels in GROUPING.findall(expr) for label in labels.split(",")} - {""}


def contract_labels(name: str) -> set[str]:
    """The labels a series name may carry: the contract's, the target's, `le` for buckets."""
    if name in CONTRACT:
        return set(CONTRACT[name][1]) | TARGET_LABELS
    base, _, suffix = name.rpartition("_")
    assert suffix in {"bucket", "sum", "count"} and CONTRACT.get(base, ("",))[0] == "histogram", (
        f"{name} is not a metric of the contract"
    )
    return set(CONTRACT[base][1]) | TARGET_LABELS | ({"le"} if suffix == "bucket" else set())


def check_names(where: str, expr: str) -> set[str]:
    """Assert `expr` uses only the contract's metrics and their labels; the metrics it uses."""
    found = selectors(expr)
    assert found, f"{where}: no metric in {expr}"
    allowed: set[str] = set()
    for name, braces in found:
        matched = {label for label, _ in MATCHER.findall(braces)}
        labels = contract_labels(name)
        assert matched <= labels, f"{where}: {name} has no label {matched - labels}"
        allowed |= labels
    assert grouping_labels(expr) <= allowed, f"{where}: unknown labels {grouping_labels(expr) - allowed}"
    return {name for name, _ in found}


def with_bool(expr: str) -> str:
    """`expr` with each comparison outside label matchers and strings in its `bool` form."""
    out, depth, quoted, i = [], 0, False, 0
    while i < len(expr):
        char = expr[i]
        if quoted:
            out.append(char)
            quoted = char != '"' or expr[i - 1] == "\\"
        elif char == '"':
            out.append(char)
            quoted = True
        elif char in "{[":
            depth += 1
            out.append(char)
        elif char in "}]":
            depth -= 1
            out.append(char)
        elif depth == 0 and (op := re.match(r"==|!=|>=|<=|>|<", expr[i:])):
            rest = expr[i + len(op.group()) :]
            out.append(op.group() + ("" if rest.lstrip().startswith("bool") else " bool"))
            i += len(op.group())
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def raw_removed(text: str) -> str:
    return text.replace("{% raw %}", "").replace("{% endraw %}", "")


# --- the rendered files -----------------------------------------------------------------


def test_the_render_keeps_prometheus_and_grafana_templates(default_project: Path) -> None:
    folder = observability(default_project)
    assert sorted(path.name for path in folder.iterdir()) == [
        "alerts.test.yml",
        "alerts.yml",
        "dashboard.json",
        "prometheus.yml",
    ]
    for path in folder.iterdir():
        text = path.read_text()
        match = UNRENDERED.search(text)
        assert match is None, f"{path.name}: {text[max(0, match.start() - 40) : match.end() + 40]!r}"
    # The rules and their tests are Jinja-free but for the raw block around them.
    for name in ("alerts.yml", "alerts.test.yml"):
        assert (folder / name).read_text() == raw_removed((TEMPLATE / name).read_text()), name
    alerts = (folder / "alerts.yml").read_text()
    for template in ("{{ $labels.queue }}", "{{ $labels.function }}", "{{ $labels.instance }}"):
        assert template in alerts
    assert "{{ $value | humanizeDuration }}" in alerts
    assert '"legendFormat": "{{function}} {{outcome}}"' in (folder / "dashboard.json").read_text()
    assert f"{DEFAULT_PREFIX}WORKER_METRICS_PORT" in (folder / "prometheus.yml").read_text()


def test_promtool_checks_the_rules_and_their_unit_tests_pass(default_project: Path) -> None:
    folder = observability(default_project)
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", "alerts.yml", cwd=folder).stdout
    promtool("test", "rules", "alerts.test.yml", cwd=folder)
    promtool("check", "config", "prometheus.yml", cwd=folder)


def test_every_alert_is_unit_tested_firing_and_quiet(default_project: Path) -> None:
    rules = alert_rules(default_project)
    assert set(rules) == ALERTS
    for name, rule in rules.items():
        assert rule["for"] and rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        assert "{{ $labels." in rule["annotations"]["summary"], name

    tests = yaml.safe_load((observability(default_project) / "alerts.test.yml").read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert firing == ALERTS, f"never expected firing: {ALERTS - firing}"
    assert quiet == ALERTS, f"never expected quiet: {ALERTS - quiet}"


def test_the_dashboard_only_queries_the_contract(default_project: Path) -> None:
    board = dashboard(default_project)
    assert board["schemaVersion"] >= 39
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["queue"]["definition"] == "label_values(arq_queue_jobs, queue)"
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert {panel["title"] for panel in panels} == PANELS
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]

    used: set[str] = set()
    for where, (expr, legend) in dashboard_queries(board).items():
        used |= check_names(where, expr)
        # A legend can only show the labels the query keeps.
        legend_labels = set(re.findall(r"\{\{(\w+)\}\}", legend))
        assert legend_labels <= grouping_labels(expr), f"{where}: legend {legend_labels}"
    for name, rule in alert_rules(default_project).items():
        used |= check_names(name, rule["expr"])
    bases = {re.sub(r"_(bucket|sum|count)$", "", name) if name not in CONTRACT else name for name in used}
    assert bases == set(CONTRACT), f"metrics no panel or alert shows: {set(CONTRACT) - bases}"


def test_with_bool_keeps_every_series_of_a_comparison() -> None:
    assert with_bool('max by (q) (m{s="a"}) > 100 and d(m{s!="b"}[15m]) > 0') == (
        'max by (q) (m{s="a"}) > bool 100 and d(m{s!="b"}[15m]) > bool 0'
    )
    assert with_bool("a == 0") == "a == bool 0"
    assert with_bool("a >= bool 1") == "a >= bool 1"
    assert with_bool('m{l=~"x>y"} < 2') == 'm{l=~"x>y"} < bool 2'


# --- a real Prometheus over a running render --------------------------------------------


@contextmanager
def running_prometheus(config: dict[str, Any], workdir: Path) -> Iterator[httpx.Client]:
    """A private `prometheus` server on a free loopback port, storing in `workdir`."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (apt-get install prometheus; .ci/env.sh does)"
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    process = Process("prometheus", args, {"PATH": "/usr/bin:/bin"}, workdir, cwd=workdir)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: client.get("/-/ready").status_code == 200, 30, "prometheus ready", process)
        yield client
    finally:
        client.close()
        process.stop()


def query(prometheus: httpx.Client, expr: str) -> list[dict[str, Any]]:
    response = prometheus.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}\n{body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def default_worker_metrics_port(venv: Path) -> int:
    """The app's default WORKER_METRICS_PORT, as its installed Config says."""
    code = f"from {DEFAULT_PACKAGE}.config import Config; print(Config.model_fields['worker_metrics_port'].default)"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return int(result.stdout)


def scrape_config(project: Path, venv: Path, api_port: int, worker_port: int) -> dict[str, Any]:
    """The project's example config, scraping our processes every second instead of compose's."""
    config: dict[str, Any] = yaml.safe_load((observability(project) / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The compose ports: uvicorn's --port in docker-compose.yml, the worker's default.
    assert {name: job["dns_sd_configs"][0]["port"] for name, job in jobs.items()} == {
        "api": 8000,
        "worker": default_worker_metrics_port(venv),
    }
    for name, port in (("api", api_port), ("worker", worker_port)):
        del jobs[name]["dns_sd_configs"]
        jobs[name]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
    config["rule_files"] = [str(observability(project) / "alerts.yml")]
    return config


def drive_traffic(api: httpx.Client) -> list[str]:
    """Every kind of enqueue, job outcome and request the contract counts; the job ids to wait for."""
    for message in ("one", "two", "three"):
        assert api.post("/jobs/ping", json={"message": message}).status_code == 202
    first = api.post("/jobs/ping", json={"job_id": "obs-once"})
    assert (first.status_code, api.post("/jobs/ping", json={"job_id": "obs-once"}).status_code) == (202, 409)
    deferred = api.post("/jobs/ping", json={"defer_by": 3600.0})
    assert deferred.status_code == 202
    jobs = [first.json()["id"]]
    for invoice in ("INV-obs-1", "down-obs-1", "slow-obs-abort"):
        response = api.post("/jobs/sync-invoice", json={"invoice_id": invoice})
        assert response.status_code == 202, response.text
        jobs.append(response.json()["id"])
    assert Upstream.started.setdefault("slow-obs-abort", threading.Event()).wait(20)
    assert api.delete("/jobs/sync-invoice-slow-obs-abort").status_code in {202, 204}
    assert api.get(f"/jobs/{deferred.json()['id']}").json()["status"] == "deferred"
    assert api.get("/no-such-route").status_code == 404
    return jobs


def wait_for_jobs(api: httpx.Client, job_ids: list[str], *processes: Process) -> None:
    def done() -> bool:
        return all(api.get(f"/jobs/{job_id}").json()["status"] == "complete" for job_id in job_ids)

    wait_until(done, 30, f"jobs {job_ids} complete", *processes)


def label_values(prometheus: httpx.Client, metric: str, label: str) -> set[str]:
    return {series["metric"].get(label, "") for series in query(prometheus, metric)}


@pytest.mark.timeout(300)
def test_prometheus_scrapes_a_render_and_answers_every_query(
    default_project: Path, project_venv: Path, tmp_path: Path
) -> None:
    worker_port = free_port()
    with ExitStack() as stack:
        redis = stack.enter_context(running_redis(tmp_path))
        upstream = stack.enter_context(serve_upstream())
        env = app_env(
            project_venv,
            redis.url,
            API_TOKEN,
            INVOICE_API_URL=upstream,
            WORKER_MAX_TRIES="2",
            WORKER_RETRY_BACKOFF="0.1",
            WORKER_HEALTH_CHECK_INTERVAL="1",
            WORKER_JOB_COMPLETION_WAIT="1",
            WORKER_METRICS_PORT=str(worker_port),
        )
        api_process, api = stack.enter_context(running_api(env, tmp_path))
        worker = stack.enter_context(worker_starter(default_project, env, tmp_path))()
        wait_for_port(worker_port, worker.popen, timeout=30)
        assert api.get("/metrics").status_code == 200
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        config = scrape_config(default_project, project_venv, api.base_url.port or 0, worker_port)
        prometheus = stack.enter_context(running_prometheus(config, workdir))
        processes = (api_process, worker)

        def both_targets_up() -> bool:
            return sorted(s["value"][1] for s in query(prometheus, "up")) == ["1", "1"]

        wait_until(both_targets_up, 20, "both targets scraped", *processes)
        wait_for_jobs(api, drive_traffic(api), *processes)

        # The label values the run produced are the contract's. The worker creates its counters
        # at 0 before any job, so a counter counts only above 0: a scrape after the traffic.
        def outcomes_ingested() -> bool:
            return all(
                label_values(prometheus, f"{metric} > 0" if metric.endswith("_total") else metric, label)
                >= values
                for (metric, label), values in EXPECTED_VALUES.items()
            )

        wait_until(outcomes_ingested, 20, "every outcome scraped", *processes)
        for (metric, label), allowed in LABEL_VALUES.items():
            assert label_values(prometheus, metric, label) <= allowed, (metric, label)
        for metric, (_, labels) in CONTRACT.items():
            if "function" in labels:
                assert label_values(prometheus, metric, "function") <= FUNCTIONS, metric
            if "queue" in labels:
                assert label_values(prometheus, metric, "queue") == {QUEUE}, metric
        for healthy in ("arq_queue_worker_alive", "arq_redis_up"):
            assert [s["value"][1] for s in query(prometheus, healthy)] == ["1"], healthy
        assert query(prometheus, 'arq_queue_jobs{state="deferred"} == 1'), "the deferred ping"
        assert (
            QUEUE
            in prometheus.get("/api/v1/label/queue/values", params={"match[]": "arq_queue_jobs"}).json()[
                "data"
            ]
        ), "the dashboard's queue variable would be empty"

        # Every dashboard query, and every alert expression in its `bool` form, has data.
        queries = {where: expr for where, (expr, _) in dashboard_queries(dashboard(default_project)).items()}
        rules = alert_rules(default_project)
        queries |= {f"alert {name} (bool)": with_bool(rule["expr"]) for name, rule in rules.items()}
        # And each selector alone, so a misspelt label value cannot hide behind an `or`.
        queries |= {
            f"{where}, selector {name}{braces}": name + braces
            for where, expr in list(queries.items())
            for name, braces in selectors(expr)
        }
        # Rates need two samples of a series: a few more scrapes may be due.
        deadline = time.monotonic() + 15
        while empty := {where: expr for where, expr in queries.items() if not query(prometheus, expr)}:
            assert time.monotonic() < deadline, "no data for:\n" + "\n".join(
                f"  {where}: {expr}" for where, expr in empty.items()
            )
            time.sleep(0.5)
        for name in QUIET_WHEN_HEALTHY:
            assert query(prometheus, rules[name]["expr"]) == [], f"{name} fires with a live worker"

        # Prometheus itself evaluated every rule without an error.
        def rules_evaluated() -> bool:
            groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
            evaluated = [r for g in groups for r in g["rules"] if not r["lastEvaluation"].startswith("0001")]
            return len(evaluated) == len(rules)

        wait_until(rules_evaluated, 10, "rules evaluated", *processes)
        for group in prometheus.get("/api/v1/rules").json()["data"]["groups"]:
            for rule in group["rules"]:
                assert (rule["health"], rule.get("lastError", "")) == ("ok", ""), rule
