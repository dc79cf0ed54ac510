"""The Kubernetes manifests (deploy/kubernetes): `kubectl kustomize` renders them, every object
passes the Kubernetes 1.32 schemas and the ScaledObject KEDA's CRD schema, and what they run
matches the Dockerfile, docker-compose.yml, Config and the app's routes, so neither can drift."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import kubernetes_validate
import pytest
import yaml

from . import readme
from .conftest import DEFAULT_PACKAGE, ROOT, render, run
from .support import dockerfile_cmd

# The kubectl installed here and on CI is 1.32 (with kustomize 5.5).
KUBERNETES_VERSION = "1.32.0"
BASE = "deploy/kubernetes/base"
OVERLAY = "deploy/kubernetes/overlays/example"
KEDA_CRD = ROOT / "tests" / "schemas" / "keda-scaledobjects-crd.yaml"

Manifest = dict[str, Any]


class Render(NamedTuple):
    path: Path
    api_auth: str


@pytest.fixture(scope="module", params=["token", "none"])
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path
) -> Render:
    api_auth: str = request.param
    path = render(tmp_path_factory.mktemp(f"k8s-{api_auth}"), cookiecutter_config, api_auth=api_auth)
    return Render(path, api_auth)


@pytest.fixture
def project(rendered: Render) -> Path:
    return rendered.path


def kustomize(project: Path, path: str) -> list[Manifest]:
    assert shutil.which("kubectl"), "kubectl (1.27+, for kustomize 5) must be on PATH"
    result = run(["kubectl", "kustomize", str(project / path)])
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def the(objects: list[Manifest], kind: str, component: str | None = None) -> Manifest:
    """The one object of this kind (and app.kubernetes.io/component)."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (component is None or obj["metadata"]["labels"]["app.kubernetes.io/component"] == component)
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def container(deployment: Manifest) -> Manifest:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def strict(schema: Any) -> Any:
    """The CRD schema as the API server's strict field validation applies it: unknown fields
    are refused (a structural schema alone would prune them silently)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def keda_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(KEDA_CRD.read_text())
    (version,) = (v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def validate(obj: Manifest) -> None:
    if obj["kind"] == "ScaledObject":
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        keda_validator().validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def app_facts(project: Path, workdir: Path, env: dict[str, str], paths: list[str]) -> dict[str, Any]:
    """Config of the render loaded with `env` only (no .env: cwd is empty), and which of `paths`
    its app answers GET on (by route matching, as a request would be)."""
    code = f"""
import json, sys
from starlette.routing import Match
from {DEFAULT_PACKAGE}.config import Config
from {DEFAULT_PACKAGE}.main import create_app
config = Config()
app = create_app(config)
def served(path):
    scope = {{"type": "http", "method": "GET", "path": path, "root_path": "", "query_string": b"", "headers": []}}
    return any(route.matches(scope)[0] is Match.FULL for route in app.routes)
print(json.dumps({{
    "prefix": Config.model_config["env_prefix"],
    "fields": sorted(Config.model_fields),
    "secret_fields": sorted(
        name for name, field in Config.model_fields.items() if "SecretStr" in str(field.annotation)
    ),
    "config": config.model_dump(mode="json"),
    "served": {{path: served(path) for path in sys.argv[1:]}},
}}))
"""
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(project / "src"), **env}
    result = run([sys.executable, "-c", code, *paths, "/no/such/route"], cwd=workdir, env=clean)
    facts: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert facts["served"].pop("/no/such/route") is False
    return facts


def dockerfile(project: Path) -> dict[str, Any]:
    text = (project / "Dockerfile").read_text()
    healthcheck = re.search(
        r"^HEALTHCHECK (?P<options>.*?)\s*\\\n\s*CMD (?P<cmd>\[.*\])$", text, re.MULTILINE
    )
    user = re.search(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
    expose = re.search(r"^EXPOSE (.+)$", text, re.MULTILINE)
    assert healthcheck and user and expose, "the Dockerfile lost its HEALTHCHECK, USER or EXPOSE"
    options = dict(re.findall(r"--([\w-]+)=(\d+)s?(?:\s|$)", healthcheck["options"]))
    return {
        "cmd": dockerfile_cmd(project),
        "check": json.loads(healthcheck["cmd"]),
        "check_options": {name: int(seconds) for name, seconds in options.items()},
        "user": (int(user[1]), int(user[2])),
        "expose": [int(port) for port in expose[1].split()],
    }


def test_every_file_is_one_yaml_document(project: Path) -> None:
    """As the project's pre-commit `check-yaml` hook (without --allow-multiple-documents) wants."""
    files = sorted((project / "deploy" / "kubernetes").rglob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_every_object_passes_its_schema(project: Path) -> None:
    base, overlay = kustomize(project, BASE), kustomize(project, OVERLAY)
    workloads = {
        "ConfigMap": 1,
        "Deployment": 2,
        "Service": 1,
        "HorizontalPodAutoscaler": 1,
        "PodDisruptionBudget": 1,
        "ScaledObject": 1,
    }
    assert Counter(obj["kind"] for obj in base) == workloads
    assert Counter(obj["kind"] for obj in overlay) == {**workloads, "Namespace": 1, "Secret": 1}
    for obj in base + overlay:
        validate(obj)


def test_the_schema_checks_refuse_mistakes(project: Path) -> None:
    """The validators this suite relies on do fail: a typed field, a misspelt one."""
    objects = kustomize(project, OVERLAY)
    worker = copy.deepcopy(the(objects, "Deployment", "worker"))
    worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(worker)
    worker = copy.deepcopy(the(objects, "Deployment", "worker"))
    container(worker)["livenessProbe"]["periodSecond"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(worker)

    scaled = the(objects, "ScaledObject")
    for mistake in (
        {"minReplicas": 0},  # not a ScaledObject field
        {"pollingInterval": "15"},
        {"triggers": [{"type": "prometheus", "metadata": {"threshold": 100}}]},  # not a string
        {"scaleTargetRef": {"kind": "Deployment"}},  # no name
    ):
        wrong = {**scaled, "spec": {**scaled["spec"], **mistake}}
        with pytest.raises(jsonschema.ValidationError):
            validate(wrong)


def test_containers_run_what_the_image_and_compose_run(project: Path) -> None:
    objects = kustomize(project, OVERLAY)
    image = dockerfile(project)
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    api, worker = the(objects, "Deployment", "api"), the(objects, "Deployment", "worker")

    # The worker runs the image's CMD and is checked by the image's HEALTHCHECK, on its schedule.
    assert container(worker)["args"] == image["cmd"]
    liveness = container(worker)["livenessProbe"]
    assert liveness["exec"]["command"] == image["check"]
    assert {
        "interval": liveness["periodSeconds"],
        "timeout": liveness["timeoutSeconds"],
        "start-period": liveness["initialDelaySeconds"],
        "retries": liveness["failureThreshold"],
    } == image["check_options"]

    # The API runs what compose runs, on the port the image exposes first.
    args = container(api)["args"]
    assert args == compose["services"]["api"]["command"]
    port = int(args[args.index("--port") + 1])
    (http,) = container(api)["ports"]
    assert http["containerPort"] == port == image["expose"][0]
    service = the(objects, "Service", "api")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [http["name"]]
    assert container(api)["readinessProbe"]["httpGet"]["port"] == http["name"]
    assert container(api)["livenessProbe"]["httpGet"]["port"] == http["name"]
    (metrics,) = container(worker)["ports"]
    assert metrics["containerPort"] == image["expose"][1]

    for deployment, port_number in ((api, port), (worker, metrics["containerPort"])):
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port_number)
        security = pod["spec"]["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (security["runAsUser"], security["runAsGroup"]) == image["user"]
        box = container(deployment)["securityContext"]
        assert box["readOnlyRootFilesystem"] is True
        assert box["allowPrivilegeEscalation"] is False
        assert box["capabilities"]["drop"] == ["ALL"]
        resources = container(deployment)["resources"]
        for bound in ("requests", "limits"):
            assert set(resources[bound]) == {"cpu", "memory"}, (deployment["metadata"]["name"], bound)
        assert [m["mountPath"] for m in container(deployment)["volumeMounts"]] == ["/tmp"]
        assert container(deployment)["image"].startswith(f"registry.example.com/{project.name}:")

    # Every autoscaler, budget and Service selects the pods it names.
    for kind, component in (
        ("HorizontalPodAutoscaler", "api"),
        ("PodDisruptionBudget", "api"),
        ("Service", "api"),
        ("ScaledObject", "worker"),
    ):
        obj = the(objects, kind, component)
        deployment = the(objects, "Deployment", component)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            assert obj["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        else:
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert selector.items() <= labels.items(), kind


def test_settings_come_from_config_and_secrets_from_the_secret(rendered: Render, tmp_path: Path) -> None:
    project = rendered.path
    objects = kustomize(project, OVERLAY)
    settings = the(objects, "ConfigMap")["data"]
    secret = the(objects, "Secret")
    facts = app_facts(project, tmp_path, settings, [])
    names = {facts["prefix"] + field.upper() for field in facts["fields"]}
    secret_names = {facts["prefix"] + field.upper() for field in facts["secret_fields"]}
    token = f"{facts['prefix']}API_TOKENS"
    password = f"{facts['prefix']}ARQ_QUEUE_PASSWORD"

    assert set(settings) <= names - secret_names, "a ConfigMap key that is no setting, or a secret"
    assert set(secret["data"]) <= secret_names
    api, worker = the(objects, "Deployment", "api"), the(objects, "Deployment", "worker")
    configmap = the(objects, "ConfigMap")["metadata"]["name"]
    from_secret: dict[str, set[str]] = {}
    for deployment in (api, worker):
        box = container(deployment)
        assert box["envFrom"] == [{"configMapRef": {"name": configmap}}]
        for var in box["env"]:
            assert var["name"] in names, var["name"]
            ref = var["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (secret["metadata"]["name"], var["name"])
            from_secret.setdefault(deployment["metadata"]["name"], set()).add(var["name"])
    api_secrets, worker_secrets = (
        from_secret[api["metadata"]["name"]],
        from_secret[worker["metadata"]["name"]],
    )

    with_tokens = rendered.api_auth == "token"
    assert (token in names) == with_tokens
    assert api_secrets == ({password, token} if with_tokens else {password})
    assert worker_secrets == {password}  # the worker never sees the API's tokens
    assert set(secret["data"]) == api_secrets | worker_secrets

    if with_tokens:
        # The overlay's placeholder token keeps the API from starting.
        placeholder = base64.b64decode(secret["data"][token]).decode()
        assert placeholder == "change-me"
        refused = subprocess.run(
            [sys.executable, "-c", f"from {DEFAULT_PACKAGE}.config import Config; Config()"],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(project / "src"), token: placeholder},
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1
        assert "at least 16 characters" in refused.stderr


def test_grace_period_probes_and_scaling_follow_the_app(project: Path, tmp_path: Path) -> None:
    objects = kustomize(project, OVERLAY)
    api, worker = the(objects, "Deployment", "api"), the(objects, "Deployment", "worker")
    paths = [container(api)[probe]["httpGet"]["path"] for probe in ("readinessProbe", "livenessProbe")]
    paths.append(api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    facts = app_facts(project, tmp_path, the(objects, "ConfigMap")["data"], paths)
    config = facts["config"]

    # Running jobs get WORKER_JOB_COMPLETION_WAIT after SIGTERM; the pod is killed after the grace period.
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > config["worker_job_completion_wait"]
    assert container(worker)["ports"][0]["containerPort"] == config["worker_metrics_port"]

    # The probes and the scrape path are routes of the app.
    assert facts["served"] == dict.fromkeys(paths, True)

    # KEDA reads the API's ready-jobs gauge of this queue, one worker per WORKER_MAX_JOBS.
    gauge = re.search(
        r'^QUEUE_JOBS = Gauge\(\s*"(\w+)"',
        (project / "src" / DEFAULT_PACKAGE / "metrics.py").read_text(),
        re.MULTILINE,
    )
    assert gauge, "metrics.py lost its QUEUE_JOBS gauge"
    (trigger,) = the(objects, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert query.startswith(f"max({gauge[1]}{{")
    assert f'queue="{config["arq_queue_name"]}"' in query
    assert 'state="ready"' in query
    assert 0 < float(trigger["metadata"]["threshold"]) <= config["worker_max_jobs"]


def test_the_readme_command_renders_the_overlay(project: Path) -> None:
    generated = project / "README.md"
    deployment = readme.section(generated, "Deployment")
    kubernetes = deployment.split("### Kubernetes\n", 1)[1]
    (block,) = readme.blocks(kubernetes)
    (command,) = readme.commands(block)
    assert command == f"kubectl kustomize {OVERLAY}"
    output = run(["bash", "-c", command], cwd=project).stdout
    objects = [doc for doc in yaml.safe_load_all(output) if doc]
    assert objects == kustomize(project, OVERLAY)

    # Its table names every object the overlay makes (generated names without their hash).
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        name = obj["metadata"]["name"]
        if obj["kind"] in ("ConfigMap", "Secret"):
            name = re.sub(r"-[a-z0-9]{10}$", "", name)
        assert f"| {obj['kind']} `{name}` |" in kubernetes, (obj["kind"], name)
