"""The production path of the platform's telemetry, checked offline: the ADOT collector's
configuration and manifests, its IAM policy, and the alarms, dashboard and runbooks, each against
the metric catalogue (mvno.common.metric_catalog) that the code creates its instruments from.

Each check is a function returning what is wrong, shown to catch a deliberately broken input.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from mvno.common import metric_catalog as catalog

from .test_manifests import Peer, allows, by_kind, pod_labels

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
RUNBOOKS = ROOT / "docs" / "runbooks"
COLLECTOR = ROOT / "k8s" / "base" / "adot-collector.yaml"
CANARY = importlib.util.find_spec("mvno.canary")
CANARY_PRESENT = CANARY is not None
SOURCES = [
    ROOT / "libs" / "common" / "src",
    *sorted((ROOT / "services").glob("*/src")),
    *(Path(p) for p in ((CANARY and CANARY.submodule_search_locations) or [])),
]

Manifest = dict[str, Any]


# --- the collector's configuration -------------------------------------------------------------


def collector_documents() -> dict[str, Manifest]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(COLLECTOR.read_text()) if doc}


def collector_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        collector_documents()["ConfigMap"]["data"]["collector.yaml"]
    )
    return config


def pipeline_problems(config: dict[str, Any]) -> list[str]:
    """What is wrong with the collector's pipelines: undefined components, missing pipelines."""
    problems = []
    service = config.get("service", {})
    pipelines = service.get("pipelines", {})
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                if component not in (config.get(kind) or {}):
                    problems.append(f"{name} uses {kind[:-1]} {component}, which is not defined")
    for extension in service.get("extensions", []):
        if extension not in (config.get("extensions") or {}):
            problems.append(f"extension {extension} is not defined")
    wanted = {"traces": "awsxray", "metrics": "awsemf"}
    for name, exporter in wanted.items():
        pipeline = pipelines.get(name)
        if pipeline is None:
            problems.append(f"no {name} pipeline")
            continue
        if "otlp" not in pipeline.get("receivers", []):
            problems.append(f"the {name} pipeline does not receive OTLP")
        if exporter not in pipeline.get("exporters", []):
            problems.append(f"the {name} pipeline does not export to {exporter}")
    return problems


def declaration_problems(emf: dict[str, Any]) -> list[str]:
    """Every catalogued metric declared for EMF with exactly its dimension sets, and nothing else."""
    declared: dict[str, set[frozenset[str]]] = {}
    for declaration in emf.get("metric_declarations", []):
        for selector in declaration["metric_name_selectors"]:
            name = re.fullmatch(r"\^(.*)\$", selector)
            key = re.sub(r"\\(.)", r"\1", name.group(1)) if name else selector
            declared[key] = {frozenset(d) for d in declaration["dimensions"]}
    problems = []
    for spec in catalog.CATALOG:
        wanted = {frozenset(d) for d in spec.dimension_sets}
        if spec.name not in declared:
            problems.append(f"{spec.name} is not declared")
        elif declared[spec.name] != wanted:
            problems.append(f"{spec.name} is declared with other dimensions")
    problems += [f"{name} is not in the catalogue" for name in declared.keys() - catalog.by_name()]
    return problems


def test_collector_pipelines_receive_otlp_and_export_to_xray_and_cloudwatch() -> None:
    config = collector_config()
    assert pipeline_problems(config) == []
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_pipeline_check_catches_an_undefined_exporter_and_a_missing_pipeline() -> None:
    config = copy.deepcopy(collector_config())
    del config["exporters"]["awsxray"]
    del config["service"]["pipelines"]["metrics"]
    assert pipeline_problems(config) == [
        "traces uses exporter awsxray, which is not defined",
        "no metrics pipeline",
    ]


def test_emf_export_declares_exactly_the_catalogued_metrics_and_dimensions() -> None:
    emf = collector_config()["exporters"]["awsemf"]
    assert declaration_problems(emf) == []
    assert emf["namespace"] == catalog.NAMESPACE
    assert emf["dimension_rollup_option"] == "NoDimensionRollup"
    # service.name is a resource attribute: it is a dimension only once converted.
    assert emf["resource_to_telemetry_conversion"] == {"enabled": True}
    assert emf["log_group_name"] == terraform_locals()["metric_log_group"]


def test_declaration_check_catches_a_renamed_metric_and_changed_dimensions() -> None:
    emf = copy.deepcopy(collector_config()["exporters"]["awsemf"])
    emf["metric_declarations"][0]["metric_name_selectors"] = ["^http\\.server\\.duration$"]
    emf["metric_declarations"][1]["dimensions"] = [["service.name", "url.path"]]
    assert declaration_problems(emf) == [
        "http.server.request.duration is not declared",
        "http.server.active_requests is declared with other dimensions",
        "http.server.duration is not in the catalogue",
    ]


# --- the collector in Kubernetes ---------------------------------------------------------------


def test_services_send_otlp_to_the_collector_service() -> None:
    docs = collector_documents()
    (platform,) = [
        d for d in by_kind("ConfigMap").values() if d["metadata"]["name"] == "mvno-platform"
    ]
    assert platform["data"]["MVNO_OTEL_EXPORTER"] == "otlp"
    endpoint = platform["data"]["MVNO_OTEL_EXPORTER_OTLP_ENDPOINT"]
    service = docs["Service"]
    (port,) = service["spec"]["ports"]
    assert endpoint == f"http://{service['metadata']['name']}:{port['port']}"
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[port["targetPort"]] == port["port"] == 4318
    # The configuration it runs is the ConfigMap's.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in docs["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    assert volumes[config_volume]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert container["args"] == [f"--config={mounts[config_volume]}/collector.yaml"]
    # Probes on the health_check extension's port.
    health = collector_config()["extensions"]["health_check"]["endpoint"]
    assert named[container["livenessProbe"]["httpGet"]["port"]] == int(health.rsplit(":", 1)[1])
    assert named[container["readinessProbe"]["httpGet"]["port"]] == int(health.rsplit(":", 1)[1])


def test_collector_runs_under_its_own_irsa_role() -> None:
    docs = collector_documents()
    account = docs["ServiceAccount"]
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"] == "adot-collector"
    arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    role = resources("aws_iam_role")["collector"]
    assert arn.endswith(f":role/{role['name']}")
    trust = data_sources("aws_iam_policy_document")["assume_from_collector"]
    (statement,) = trust["statement"]
    subjects = [c for c in statement["condition"] if c["variable"].endswith(":sub")]
    assert subjects[0]["values"] == [
        "system:serviceaccount:${var.kubernetes_namespace}:" + account["metadata"]["name"]
    ]


SENDERS = [
    "portal-api",
    "catalog",
    "orders",
    "billing-sync",
    "orders-provision",
    "billing-sync-work",
]


@pytest.mark.parametrize("sender", SENDERS)
def test_every_service_and_worker_reaches_the_collector_and_nothing_else_does(sender: str) -> None:
    collector = pod_labels("adot-collector")
    assert allows("Egress", pod_labels(sender), Peer(collector), 4318)
    assert allows("Ingress", collector, Peer(pod_labels(sender)), 4318)
    stranger = Peer(labels={"app.kubernetes.io/name": "x"}, namespace="default")
    assert not allows("Ingress", collector, stranger, 4318)
    assert not allows("Ingress", collector, Peer(pod_labels(sender)), 13133)


def test_the_collector_reaches_only_dns_and_https() -> None:
    collector = pod_labels("adot-collector")
    assert allows("Egress", collector, Peer(ip="52.94.0.1"), 443), "X-Ray, CloudWatch Logs, STS"
    assert not allows("Egress", collector, Peer(ip="52.94.0.1"), 80)
    assert not allows("Egress", collector, Peer(ip="10.0.32.10"), 5432)
    for service in ("catalog", "orders"):
        assert not allows("Egress", collector, Peer(pod_labels(service)), 8001)


# --- Terraform, read as data -------------------------------------------------------------------

_HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


@functools.cache
def terraform() -> dict[str, Any]:
    """Every hand-written .tf file, parsed, blocks of each kind merged."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}}
    for path in sorted(TERRAFORM.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(), serialization_options=_HCL)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    merged[kind].setdefault(type_, {}).update(named)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
    return merged


def resources(kind: str) -> dict[str, Any]:
    found: dict[str, Any] = terraform()["resource"].get(kind, {})
    return found


def data_sources(kind: str) -> dict[str, Any]:
    found: dict[str, Any] = terraform()["data"].get(kind, {})
    return found


def terraform_locals() -> dict[str, Any]:
    found: dict[str, Any] = terraform()["locals"]
    return found


def collector_grants() -> set[tuple[str, str]]:
    policy = data_sources("aws_iam_policy_document")["collector"]
    grants = set()
    for statement in policy["statement"]:
        assert statement.get("effect", "Allow") == "Allow"
        assert "not_actions" not in statement
        assert "not_resources" not in statement
        grants |= {(a, r) for a in statement["actions"] for r in statement["resources"]}
    return grants


LOG_GROUP = "${aws_cloudwatch_log_group.metrics.arn}"
COLLECTOR_NEEDS = {
    # awsxray: segments, its telemetry, and the X-Ray sampling client; none takes a resource.
    ("xray:PutTraceSegments", "*"),
    ("xray:PutTelemetryRecords", "*"),
    ("xray:GetSamplingRules", "*"),
    ("xray:GetSamplingTargets", "*"),
    ("xray:GetSamplingStatisticSummaries", "*"),
    # awsemf: its log streams in the one log group Terraform creates for it.
    ("logs:CreateLogStream", LOG_GROUP),
    ("logs:DescribeLogStreams", LOG_GROUP),
    ("logs:PutLogEvents", LOG_GROUP),
    ("logs:CreateLogStream", LOG_GROUP + ":log-stream:*"),
    ("logs:DescribeLogStreams", LOG_GROUP + ":log-stream:*"),
    ("logs:PutLogEvents", LOG_GROUP + ":log-stream:*"),
}


def collector_violations(grants: set[tuple[str, str]]) -> list[str]:
    violations = [f"{a} on {r} is not needed" for a, r in sorted(grants - COLLECTOR_NEEDS)]
    violations += [f"{a} on {r} is missing" for a, r in sorted(COLLECTOR_NEEDS - grants)]
    violations += [
        f"wildcard {a} on {r}"
        for a, r in sorted(grants)
        if "*" in a or (r == "*" and not a.startswith("xray:"))
    ]
    return violations


def test_collector_policy_grants_exactly_xray_writes_and_its_log_group() -> None:
    assert collector_violations(collector_grants()) == []
    policy = resources("aws_iam_role_policy")["collector"]
    assert policy["role"] == "${aws_iam_role.collector.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.collector.json}"
    group = resources("aws_cloudwatch_log_group")["metrics"]
    assert group["name"] == "${local.metric_log_group}"
    assert group["kms_key_id"] == "${aws_kms_key.telemetry.arn}"
    assert group["retention_in_days"] >= 365


def test_collector_policy_check_catches_logs_everywhere_and_a_missing_grant() -> None:
    grants = collector_grants() - {("xray:PutTraceSegments", "*")}
    grants |= {("logs:PutLogEvents", "*"), ("logs:*", LOG_GROUP)}
    assert collector_violations(grants) == [
        "logs:* on ${aws_cloudwatch_log_group.metrics.arn} is not needed",
        "logs:PutLogEvents on * is not needed",
        "xray:PutTraceSegments on * is missing",
        "wildcard logs:* on ${aws_cloudwatch_log_group.metrics.arn}",
        "wildcard logs:PutLogEvents on *",
    ]


# --- alarms: their metrics are the code's, each has its runbook --------------------------------


def alarms() -> dict[str, dict[str, Any]]:
    return resources("aws_cloudwatch_metric_alarm")


def namespace_of(value: str) -> str:
    return catalog.NAMESPACE if value == "${local.metric_namespace}" else value


_INSIGHTS = re.compile(r'SELECT \w+\("([^"]+)"\) FROM SCHEMA\("([^"]+)"((?:, *[\w."]+)*)\)')


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(namespace, metric name, dimension names) of every metric the alarm reads."""
    if "metric_name" in alarm:
        yield (
            namespace_of(alarm["namespace"]),
            alarm["metric_name"],
            frozenset(alarm.get("dimensions", {})),
        )
    for query in alarm.get("metric_query", []):
        if "metric" in query:
            (metric,) = query["metric"]  # a nested block: a list of one
            yield (
                namespace_of(metric["namespace"]),
                metric["metric_name"],
                frozenset(metric.get("dimensions", {})),
            )
        elif query.get("expression", "").startswith("SELECT"):
            match = _INSIGHTS.search(query["expression"])
            assert match, query["expression"]
            dimensions = [d.strip().strip('"') for d in match.group(3).split(",") if d.strip()]
            yield match.group(2), match.group(1), frozenset(dimensions)


def metric_problems(namespace: str, name: str, dimensions: frozenset[str]) -> list[str]:
    if namespace.startswith("AWS/"):
        return []  # AWS's own metrics (SQS, load balancers)
    if namespace != catalog.NAMESPACE:
        return [f"{name}: namespace {namespace} is neither AWS's nor the platform's"]
    spec = catalog.by_name().get(name)
    if spec is None:
        return [f"{name} is not a catalogued metric"]
    if dimensions not in {frozenset(d) for d in spec.dimension_sets}:
        return [f"{name} is not exported with dimensions {sorted(dimensions)}"]
    return []


@functools.cache
def source_texts() -> dict[Path, str]:
    return {
        path: path.read_text()
        for folder in SOURCES
        for path in folder.rglob("*.py")
        if path.name != "metric_catalog.py"
    }


def spec_constant(spec: catalog.MetricSpec) -> str:
    (name,) = [n for n, v in vars(catalog).items() if v is spec]
    return name


def instruments_created_for(spec: catalog.MetricSpec) -> list[Path]:
    """The source files that create an instrument for ``spec``: a call given
    ``catalog.<ITS CONSTANT>`` (or its ``.name``), its name written out, or a module constant
    holding its name."""
    constant = spec_constant(spec)
    found = []
    for path, text in source_texts().items():
        tree = ast.parse(text)
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and node.value.value == spec.name
            for target in node.targets
            if isinstance(target, ast.Name)
        }  # fmt: skip
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for argument in node.args:
                # catalog.SPEC (a helper given the spec) or catalog.SPEC.name
                by_constant = isinstance(argument, ast.Attribute) and (
                    argument.attr == constant
                    or (
                        argument.attr == "name"
                        and isinstance(argument.value, ast.Attribute)
                        and argument.value.attr == constant
                    )
                )
                by_literal = isinstance(argument, ast.Constant) and argument.value == spec.name
                by_literal |= isinstance(argument, ast.Name) and argument.id in names
                if by_constant or by_literal:
                    found.append(path)
    return found


def alarm_ids() -> list[str]:
    return sorted(alarms())


def test_alarms_notify_the_alarm_topic() -> None:
    assert alarm_ids(), "no alarms read"
    for name, alarm in alarms().items():
        assert alarm["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"], name
        assert alarm["ok_actions"] == ["${aws_sns_topic.alarms.arn}"], name


@pytest.mark.parametrize("name", alarm_ids())
def test_alarm_reads_metrics_the_platform_emits_with_their_dimensions(name: str) -> None:
    metrics = list(alarm_metrics(alarms()[name]))
    assert metrics, f"{name} reads no metric"
    for namespace, metric, dimensions in metrics:
        assert metric_problems(namespace, metric, dimensions) == []


def platform_metrics_of_alarms() -> list[str]:
    return sorted(
        {
            metric
            for alarm in alarms().values()
            for namespace, metric, _ in alarm_metrics(alarm)
            if namespace == catalog.NAMESPACE
        }
    )


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param(
            m,
            marks=pytest.mark.xfail(
                m.startswith("mvno.canary.") and not CANARY_PRESENT,
                reason="the canary's code (mvno.canary, branch wip-canary) is not in this tree",
                strict=True,
            ),
        )
        for m in platform_metrics_of_alarms()
    ],
)
def test_each_alarmed_platform_metric_is_created_by_the_code(metric: str) -> None:
    spec = catalog.by_name()[metric]
    assert instruments_created_for(spec), f"nothing in the code creates {metric}"


def test_every_alarm_family_is_there() -> None:
    metrics = platform_metrics_of_alarms()
    for wanted in (
        catalog.SAGA_FINISHED,
        catalog.PROVISIONING_DURATION,
        catalog.OUTBOX_OLDEST_AGE,
        catalog.CANARY_PROBES,
    ):
        assert wanted.name in metrics
    aws = {m for a in alarms().values() for ns, m, _ in alarm_metrics(a) if ns.startswith("AWS/")}
    assert {"ApproximateNumberOfMessagesVisible", "HTTPCode_Target_5XX_Count"} <= aws
    provisioning = alarms()["provisioning_time_p99"]
    assert provisioning["extended_statistic"] == "p99"
    assert provisioning["dimensions"] == {"state": "completed"}
    # One outbox alarm per service whose outbox a relay publishes.
    from mvno.common.bus.access import platform_services

    publishing = {s.service for s in platform_services() if s.publishes}
    assert set(re.findall(r'"([\w-]+)"', terraform_locals()["outbox_services"])) == publishing


def test_metric_check_catches_a_misspelt_metric_and_wrong_dimensions() -> None:
    assert metric_problems("MVNO", "mvno.orders.saga.finish", frozenset({"state"})) == [
        "mvno.orders.saga.finish is not a catalogued metric"
    ]
    assert metric_problems("MVNO", "mvno.bus.outbox.oldest_age", frozenset({"consumer"})) == [
        "mvno.bus.outbox.oldest_age is not exported with dimensions ['consumer']"
    ]
    assert metric_problems("Custom", "x", frozenset()) == [
        "x: namespace Custom is neither AWS's nor the platform's"
    ]


def test_creation_check_finds_no_instrument_for_a_metric_nobody_creates() -> None:
    ghost = catalog.MetricSpec("mvno.ghost", "counter", "1", "", (), ((),), "nobody")
    catalog.GHOST = ghost  # type: ignore[attr-defined]
    try:
        assert instruments_created_for(ghost) == []
    finally:
        del catalog.GHOST  # type: ignore[attr-defined]
    assert instruments_created_for(catalog.SAGA_FINISHED), "the saga's counter is found"


_RUNBOOK = re.compile(r"Runbook: docs/runbooks/([a-z0-9-]+)\.md")


def runbook_problems(alarms: dict[str, dict[str, Any]], runbooks: set[str]) -> list[str]:
    problems = []
    named = set()
    for resource, alarm in sorted(alarms.items()):
        match = _RUNBOOK.search(alarm.get("alarm_description", ""))
        if match is None:
            problems.append(f"{resource} names no runbook")
            continue
        slug = match.group(1)
        named.add(slug)
        if not alarm["alarm_name"].endswith(f"-{slug}"):
            problems.append(f"{resource}'s runbook {slug} is not its name's last part")
        if slug not in runbooks:
            problems.append(f"{resource}'s runbook docs/runbooks/{slug}.md does not exist")
    problems += [f"runbook {slug} has no alarm" for slug in sorted(runbooks - named)]
    return problems


def runbook_files() -> set[str]:
    return {p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}


def test_every_alarm_has_its_runbook_and_every_runbook_an_alarm() -> None:
    assert runbook_problems(alarms(), runbook_files()) == []


@pytest.mark.parametrize("slug", sorted(runbook_files()))
def test_runbook_says_what_it_means_how_to_confirm_and_what_to_do(slug: str) -> None:
    text = (RUNBOOKS / f"{slug}.md").read_text()
    for heading in ("## What it means", "## Confirm", "## What to do"):
        assert heading in text, heading
    assert "mvno-<env>-" in text, "names the alarm as CloudWatch shows it"


def test_runbooks_give_the_redrive_command_the_partners_and_how_to_pause_intake() -> None:
    shared = (RUNBOOKS / "README.md").read_text()
    assert "python -m mvno.common.bus.dlq list --consumer" in shared.replace("\n  ", " ")
    assert "redrive --consumer" in shared
    assert "MVNO_INTAKE_PAUSED" in shared
    for partner in ("network operator", "payments", "billing platform"):
        assert partner in shared
    # The setting the runbooks use is the orders service's own.
    from mvno.orders.settings import OrdersSettings

    assert "intake_paused" in OrdersSettings.model_fields


def test_runbook_check_catches_a_missing_and_an_orphan_runbook() -> None:
    broken = copy.deepcopy(alarms())
    broken["saga_failure_rate"]["alarm_description"] = "no runbook named"
    assert runbook_problems(broken, runbook_files() | {"forgotten"}) == [
        "saga_failure_rate names no runbook",
        "runbook forgotten has no alarm",
        "runbook saga-failure-rate has no alarm",
    ]


# --- the dashboard -----------------------------------------------------------------------------

_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*MetricName=\"([^\"]+)\"")


def dashboard() -> dict[str, Any]:
    template = (TERRAFORM / "dashboard.json.tftpl").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", template)) == {"region"}
    body: dict[str, Any] = json.loads(template.replace("${region}", "eu-west-1"))
    return body


def dashboard_metrics(body: dict[str, Any]) -> Iterator[tuple[str, str, frozenset[str]]]:
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0]["expression"]
                search = _SEARCH.search(expression)
                if search:
                    namespace, *dimensions = [
                        d.strip().strip('"') for d in search.group(1).split(",")
                    ]
                    yield namespace, search.group(2), frozenset(dimensions)
                continue
            values = [v for v in row if not isinstance(v, dict)]
            namespace, name, *pairs = values
            yield namespace, name, frozenset(pairs[0::2])


def test_dashboard_shows_catalogued_metrics_and_every_alarmed_figure() -> None:
    body = dashboard()
    shown = list(dashboard_metrics(body))
    for namespace, name, dimensions in shown:
        assert metric_problems(namespace, name, dimensions) == []
    shown_names = {name for _, name, _ in shown}
    alarmed = {m for a in alarms().values() for _, m, _ in alarm_metrics(a)}
    assert alarmed - {"ApproximateAgeOfOldestMessage", "RequestCount"} <= shown_names
    # And the saga, partner and billing figures the issue lists.
    for spec in (
        catalog.ORDERS_BY_STATE,
        catalog.SAGA_STEP_FAILURES,
        catalog.SAGA_RETRIES,
        catalog.SAGA_COMPENSATIONS,
        catalog.CIRCUIT_STATE,
        catalog.USAGE_INGESTED,
        catalog.USAGE_QUARANTINED,
        catalog.RECONCILIATION_DRIFT,
        catalog.DLQ_DEPTH,
    ):
        assert spec.name in shown_names, spec.name
    rendered = resources("aws_cloudwatch_dashboard")["platform"]["dashboard_body"]
    assert "dashboard.json.tftpl" in rendered
    assert "region = var.region" in rendered
